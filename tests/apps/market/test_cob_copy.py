"""Bulk COB frame persistence with COPY, and retention set in the admin."""
from datetime import UTC, datetime

import pytest

from apps.market.models import CobFrame, Instrument, RetentionPolicy
from apps.market.selectors import retention_policy_get
from apps.market.services import cob_frame_copy_many, cob_frame_prune, cob_frame_upsert_many
from ml.market.cob_fast import FastCobEngine
from ml.market.recording import default_spot_session, read_raw_depth

pytestmark = pytest.mark.django_db

FIELDS = ("mid", "best_bid", "best_ask", "bucket_width", "first_bucket_price", "bid_usd", "ask_usd", "imbalance",
          "imbalance_5", "ma_1s", "ma_5s", "ma_15s", "ma_60s")


@pytest.fixture(scope="module")
def eth_frames() -> list:
    snap, msgs = read_raw_depth(default_spot_session()["ETHUSDT"])
    engine = FastCobEngine("ETHUSDT", 1.0)
    engine.load_snapshot(snap)
    batch = engine.run(msgs)
    return [batch.frame(k) for k in range(len(batch))]


def _rows(instrument) -> list[tuple]:
    return list(CobFrame.objects.filter(instrument=instrument).order_by("ts").values_list("ts", *FIELDS))


def test_copy_stores_the_same_rows_as_the_orm_upsert(eth_frames):
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")

    assert cob_frame_copy_many(instrument=eth, frames=eth_frames) == 650
    cob_frame_upsert_many(instrument=btc, frames=eth_frames)  # the reference path, other instrument

    copied, upserted = _rows(eth), _rows(btc)
    assert len(copied) == 650 and copied == upserted
    first = CobFrame.objects.filter(instrument=eth).earliest("ts")
    assert first.ts == datetime(2024, 8, 8, 23, 54, 15, tzinfo=UTC)
    assert len(first.bid_usd) == 41 and isinstance(first.bid_usd[0], float)


def test_copy_is_idempotent_and_updates_a_changed_second(eth_frames):
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    cob_frame_copy_many(instrument=eth, frames=eth_frames[:100])
    changed = eth_frames[50]
    changed.imbalance_5 = 0.5

    assert cob_frame_copy_many(instrument=eth, frames=eth_frames[:100]) == 100
    assert CobFrame.objects.filter(instrument=eth).count() == 100
    row = CobFrame.objects.get(instrument=eth, ts=datetime.fromtimestamp(changed.ts / 1000, UTC))
    assert row.imbalance_5 == 0.5


def test_prune_deletes_frames_older_than_the_admin_retention(eth_frames):
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    cob_frame_copy_many(instrument=eth, frames=eth_frames)
    policy = retention_policy_get()
    assert policy.cob_frame_days == 7 and RetentionPolicy.objects.count() == 1
    last_ms = eth_frames[-1].ts

    assert cob_frame_prune(now_ms=last_ms + 7 * 86_400_000) == 649  # all but the newest second
    policy.cob_frame_days = 0
    policy.save()
    assert cob_frame_prune(now_ms=last_ms + 365 * 86_400_000) == 0  # 0 keeps everything
    assert CobFrame.objects.filter(instrument=eth).count() == 1


def test_the_retention_policy_is_edited_in_the_admin(admin_client):
    policy = retention_policy_get()
    response = admin_client.post(f"/admin/market/retentionpolicy/{policy.pk}/change/", {"cob_frame_days": "30"})

    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.cob_frame_days == 30
    assert admin_client.get("/admin/market/retentionpolicy/").status_code == 200
