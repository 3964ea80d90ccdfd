"""Market endpoints: filters, pagination, shapes and controls."""
from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.market.models import Candle, Instrument, MarketStream

pytestmark = pytest.mark.django_db


def test_candles_are_filtered_by_instrument_timeframe_and_time_and_paged_oldest_first(as_viewer, eth):
    first = Candle.objects.filter(instrument=eth, timeframe="1m").order_by("open_time").first()
    response = as_viewer.get("/api/v1/candles/", {"instrument": eth.pk, "timeframe": "1m",
                                                  "start": first.open_time.isoformat(), "limit": 50})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 50 and rows[0]["open_time"].startswith(first.open_time.strftime("%Y-%m-%dT%H:%M"))
    assert [r["open_time"] for r in rows] == sorted(r["open_time"] for r in rows)
    assert {r["timeframe"] for r in rows} == {"1m"} and {r["instrument"] for r in rows} == {eth.pk}
    following = as_viewer.get(response.json()["next"]).json()["results"]
    assert following[0]["open_time"] > rows[-1]["open_time"]


def test_candles_newest_first_on_request(as_viewer, eth):
    rows = as_viewer.get("/api/v1/candles/", {"symbol": "ethusdt", "venue": "binance", "timeframe": "1h",
                                              "ordering": "-open_time", "limit": 3}).json()["results"]
    newest = Candle.objects.filter(instrument=eth, timeframe="1h").order_by("-open_time").first()
    assert rows[0]["open_time"].startswith(newest.open_time.strftime("%Y-%m-%dT%H")) and rows[0]["close"] == f"{newest.close}"


def test_a_candles_page_is_cached_for_every_user_until_its_ttl_and_equals_the_uncached_page(
        as_viewer, as_trader, eth, settings):
    from apps.api.hotcache import page_cache_clear

    query = {"instrument": eth.pk, "timeframe": "1h", "ordering": "-open_time", "limit": 5}
    settings.GOGO_API_CANDLES_CACHE_S = 0
    uncached = as_viewer.get("/api/v1/candles/", query)
    settings.GOGO_API_CANDLES_CACHE_S = 60
    first = as_viewer.get("/api/v1/candles/", query)
    assert first.status_code == 200 and first["Content-Type"] == "application/json"
    assert first.json() == uncached.json()
    newest = Candle.objects.filter(instrument=eth, timeframe="1h").order_by("-open_time").first()
    Candle.objects.filter(pk=newest.pk).update(close=newest.close + 1)
    assert as_trader.get("/api/v1/candles/", query).content == first.content  # another user, the cached page
    assert as_viewer.get("/api/v1/candles/", {**query, "limit": 4}).json()["results"][0]["close"] == f"{newest.close + 1}"
    page_cache_clear()
    assert as_viewer.get("/api/v1/candles/", query).json()["results"][0]["close"] == f"{newest.close + 1}"


def test_an_anonymous_request_gets_no_cached_page(client, as_viewer, eth, settings):
    settings.GOGO_API_CANDLES_CACHE_S = 60
    query = {"instrument": eth.pk, "timeframe": "1h", "limit": 2}
    assert as_viewer.get("/api/v1/candles/", query).status_code == 200
    assert client.get("/api/v1/candles/", query).status_code == 401


def test_a_bad_filter_is_a_400_naming_it(as_viewer):
    response = as_viewer.get("/api/v1/candles/", {"start": "yesterday", "timeframe": "7m"})
    assert response.status_code == 400 and {"start", "timeframe"} <= set(response.json())


def test_cob_frames_and_the_heatmap_come_from_the_stored_frames(as_viewer, eth, market_rows):
    frames = as_viewer.get("/api/v1/cob-frames/", {"instrument": eth.pk}).json()["results"]
    assert len(frames) == 3 and len(frames[0]["bid_usd"]) == 2 * eth.bucket_count + 1
    heatmap = as_viewer.get("/api/v1/heatmap/", {"symbol": "ETHUSDT", "seconds": 10, "buckets": 5})
    assert heatmap.status_code == 200
    body = heatmap.json()
    assert body["symbol"] == "ETHUSDT" and len(body["price"]) == 2 * 5 + 1 and len(body["imbalance"]) == len(body["ts"])


def test_the_heatmap_names_a_bad_parameter_and_404s_without_frames(as_viewer):
    assert set(as_viewer.get("/api/v1/heatmap/", {"seconds": 0}).json()) == {"seconds"}
    assert as_viewer.get("/api/v1/heatmap/", {"symbol": "DOGEUSDT"}).status_code == 404


def test_data_gaps_are_listed_newest_first_with_their_cause(as_viewer, market_rows):
    body = as_viewer.get("/api/v1/data-gaps/", {"cause": "sequence_gap"}).json()
    assert body["count"] == 1 and body["results"][0]["detail"] == "U/u mismatch"


def test_an_admin_stops_a_stream_and_the_audit_log_keeps_it(as_admin, admin, eth):
    response = as_admin.post(f"/api/v1/streams/{eth.pk}/stop/")
    assert response.status_code == 200 and response.json()["desired"] == "stopped"
    entry = AuditLog.objects.get(action="stream.stop")
    assert (entry.user, entry.target_type, entry.target_id, entry.ip) == (admin, "market.instrument", str(eth.pk), "127.0.0.1")


def test_a_disabled_instruments_stream_does_not_start(as_admin, eth):
    Instrument.objects.filter(pk=eth.pk).update(enabled=False)
    response = as_admin.post(f"/api/v1/streams/{eth.pk}/start/")
    assert response.status_code == 400 and "instrument" in response.json()
    assert MarketStream.objects.get(instrument=eth).desired == "stopped"
    assert not AuditLog.objects.filter(action="stream.start").exists()


def test_an_admin_creates_an_instrument_and_a_trader_may_not(as_admin, as_trader):
    body = {"venue": "bybit", "symbol": "SOLUSDT", "base": "SOL", "quote": "USDT", "bucket_width": "0.1"}
    assert as_trader.post("/api/v1/instruments/", body, format="json").status_code == 403
    response = as_admin.post("/api/v1/instruments/", body, format="json")
    assert response.status_code == 201 and response.json()["bucket_count"] == 20
    assert AuditLog.objects.filter(action="instrument.create", target_id=str(response.json()["id"])).exists()
    assert as_admin.delete(f"/api/v1/instruments/{response.json()['id']}/").status_code == 405


def test_the_page_cache_steps_aside_when_redis_does_not_answer(settings, caplog):
    """The hot cache is optional: an unreachable Redis (a closed loopback port) is a miss and a
    skipped write, logged, never an error for the request."""
    from apps.api.hotcache import page_get, page_key, page_set

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    key = page_key(name="candles", url="http://testserver/api/v1/candles/?limit=50")
    assert page_get(key) is None
    page_set(key, b"{}", ttl_s=1)
    assert "page cache get failed" in caplog.text and "page cache set failed" in caplog.text
