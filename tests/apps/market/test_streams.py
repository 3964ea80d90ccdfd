"""Stream control: the cluster-wide lease in Redis, what users ask for, and who may ask."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from apps.market.models import Instrument, MarketStream
from apps.market.streams import StreamLease, lease_key, stream_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def eth(pipeline_ready):
    return Instrument.objects.get(venue=Instrument.Venue.BINANCE, symbol="ETHUSDT")


@pytest.fixture
def fresh_lease_key(eth):
    from apps.market.streams import _redis

    _redis().delete(lease_key(eth))
    yield lease_key(eth)
    _redis().delete(lease_key(eth))


def test_only_one_holder_gets_an_instruments_lease(eth, fresh_lease_key):
    first, second = StreamLease(eth), StreamLease(eth)
    assert first.acquire()
    assert not second.acquire()
    assert second.held_elsewhere() and not first.held_elsewhere()
    assert first.renew()
    first.release()
    assert second.acquire()
    second.release()


def test_a_lease_nobody_renews_expires_and_its_old_holder_learns_it_lost_it(eth, fresh_lease_key):
    dead, heir = StreamLease(eth, ttl_s=0.3), StreamLease(eth)
    assert dead.acquire()
    time.sleep(0.5)
    assert heir.acquire()
    assert not dead.renew()
    dead.release()  # must not release the heir's lease
    assert heir.held_elsewhere() is False and StreamLease(eth).held_elsewhere()
    heir.release()


def test_asking_to_stop_records_the_wish_and_starts_nothing(eth, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [stream] = stream_request(instruments=[eth], desired=MarketStream.Desired.STOPPED)
    assert stream.desired == "stopped" and callbacks == []


def test_asking_to_run_enqueues_one_session_per_venue_after_commit(eth, django_capture_on_commit_callbacks):
    btc = Instrument.objects.get(venue=Instrument.Venue.BINANCE, symbol="BTCUSDT")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stream_request(instruments=[eth, btc], desired=MarketStream.Desired.RUNNING)
    assert len(callbacks) == 1
    assert set(MarketStream.objects.filter(instrument__in=[eth, btc]).values_list("desired", flat=True)) == {"running"}


def test_a_disabled_instrument_cannot_be_asked_to_run(eth):
    eth.enabled = False
    eth.save()
    with pytest.raises(ValueError, match="disabled"):
        stream_request(instruments=[eth], desired=MarketStream.Desired.RUNNING)


def test_an_unknown_wish_is_refused(eth):
    with pytest.raises(ValueError, match="desired must be one of"):
        stream_request(instruments=[eth], desired="paused")


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_user("ops", is_staff=True))
    return client


def test_the_dashboard_stops_a_stream_for_staff(eth, staff_client):
    response = staff_client.post("/dashboard/streams/", {"instrument": eth.pk, "action": "stop"},
                                 content_type="application/json")
    assert response.status_code == 200
    row = next(s for s in response.json()["streams"] if s["symbol"] == "ETHUSDT")
    assert row["desired"] == "stopped"


def test_the_dashboard_refuses_stream_control_to_viewers(eth, client):
    client.force_login(get_user_model().objects.create_user("viewer"))
    response = client.post("/dashboard/streams/", {"instrument": eth.pk, "action": "stop"}, content_type="application/json")
    assert response.status_code == 403


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"instrument": "x", "action": "stop"}, 400, "instrument"),
    ({"action": "stop"}, 400, "instrument"),
    ({"instrument": 1, "action": "pause"}, 400, "action"),
    ({"instrument": 999999, "action": "stop"}, 404, "instrument"),
])
def test_the_dashboard_names_the_bad_field_of_a_stream_request(eth, staff_client, body, status, field):
    response = staff_client.post("/dashboard/streams/", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"].startswith(field)


def test_the_admin_action_stops_the_selected_streams(eth, admin_client):
    MarketStream.objects.filter(instrument=eth).update(desired="running")
    response = admin_client.post("/admin/market/marketstream/", {
        "action": "stop_streams", "_selected_action": [eth.stream.pk]}, follow=True)
    assert response.status_code == 200
    eth.stream.refresh_from_db()
    assert eth.stream.desired == "stopped"
    assert "stopped: ETHUSDT@binance" in [m.message for m in response.context["messages"]]


def test_a_live_stream_whose_worker_stopped_reporting_is_shown_stale(eth):
    from datetime import timedelta

    from django.utils import timezone

    from apps.market.streams import streams_payload

    MarketStream.objects.filter(instrument=eth).update(status="live", updated_at=timezone.now() - timedelta(minutes=5))
    assert next(s for s in streams_payload() if s["instrument"] == eth.pk)["status"] == "stale"
    MarketStream.objects.filter(instrument=eth).update(status="live", updated_at=timezone.now())
    assert next(s for s in streams_payload() if s["instrument"] == eth.pk)["status"] == "live"
