"""The annotation page's JSON endpoints: chart data, create, change, delete; roles, owners, bad input."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from apps.annotations.models import Annotation
from tests.apps.annotations.conftest import UserFactory, trader

pytestmark = pytest.mark.django_db
ENTRY = datetime(2024, 8, 8, 23, 0, 30, tzinfo=UTC)  # the stored 1m/1h/1d history is complete here
ITEMS = "/annotations/items/"


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _body(eth, **over) -> dict:
    body = {"instrument": eth.pk, "side": "long", "entry_time": _ms(ENTRY), "entry_price": "2600.50",
            "exit_time": _ms(ENTRY + timedelta(minutes=20)), "exit_price": 2620, "notes": "breakout"}
    return body | over


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(client: Client, body) -> object:
    return client.post(ITEMS, json.dumps(body), content_type="application/json")


def _patch(client: Client, pk: int, body) -> object:
    return client.patch(f"{ITEMS}{pk}/", json.dumps(body), content_type="application/json")


def test_the_page_opens_for_a_signed_in_user_and_sends_others_to_login(eth):
    response = Client().get("/annotations/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=/annotations/")

    page = _client(UserFactory(username="look")).get("/annotations/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="chart-annotate"' in html and "ETHUSDT" in html
    assert 'id="tool-position"' not in html  # a viewer gets no position tool
    assert 'id="tool-position"' in _client(trader("maker")).get("/annotations/").content.decode()


def test_the_data_default_to_the_stored_session_with_candles_and_the_heatmap(stored_session, eth):
    response = _client(UserFactory(username="look")).get("/annotations/data/", {"instrument": eth.pk})
    assert response.status_code == 200
    body = response.json()
    assert body["timeframe"] == "1s" and body["instrument"]["symbol"] == "ETHUSDT"
    times = [c["t"] for c in body["candles"]]
    assert times == sorted(times) and len(times) >= 30
    assert body["start"] == times[0] and body["end"] == times[-1] + 1000  # the session's own range
    heat = body["heatmap"]
    assert heat is not None and len(heat["ts"]) == len(heat["imbalance"]) == len(heat["mid"])
    assert heat["ts"][-1] == stored_session.last_ts
    assert all(len(row) == len(heat["price"]) for row in heat["imbalance"])
    mids = [m for m in heat["mid"] if m is not None]
    assert heat["price"][0] <= min(mids) and max(mids) < heat["price"][-1] + heat["bucket_width"]
    values = [v for row in heat["imbalance"] for v in row if v is not None]
    assert values and all(-1 <= v <= 1 for v in values)


def test_the_data_of_an_explicit_range_and_timeframe(eth):
    start, end = ENTRY - timedelta(hours=1), ENTRY + timedelta(hours=1)
    body = _client(UserFactory(username="look")).get(
        "/annotations/data/", {"instrument": eth.pk, "timeframe": "1m", "start": _ms(start), "end": end.isoformat()}).json()
    assert body["timeframe"] == "1m" and len(body["candles"]) == 120
    assert body["candles"][0]["t"] == _ms(start + timedelta(seconds=30))  # the first whole minute
    assert body["heatmap"] is None and "No order-book frames" in body["heatmap_note"]


@pytest.mark.parametrize("params, field", [
    ({"timeframe": "5m"}, "timeframe"),
    ({"instrument": "999999"}, "instrument"),
    ({"start": "yesterday"}, "start"),
    ({"start": "2024-08-08T23:00:00"}, "start"),  # no offset
    ({"start": _ms(ENTRY), "end": _ms(ENTRY)}, "end"),
    ({"timeframe": "1m", "start": _ms(ENTRY - timedelta(days=5)), "end": _ms(ENTRY)}, "timeframe"),  # 7200 candles
])
def test_bad_chart_parameters_are_400_naming_the_field(eth, params, field):
    response = _client(UserFactory(username="look")).get("/annotations/data/", {"instrument": eth.pk} | params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ")


def test_a_trader_creates_reads_changes_and_deletes_their_annotation(eth):
    client = _client(trader("ann"))
    response = _post(client, _body(eth))
    assert response.status_code == 201
    a = response.json()["annotation"]
    assert a["owner_name"] == "ann" and a["side"] == "long" and a["entry_price"] == 2600.5
    assert a["return_pct"] == pytest.approx((2620 / 2600.5 - 1) * 100, abs=1e-4)  # percent, 4 decimals
    stored = Annotation.objects.get(pk=a["id"])
    assert stored.entry_time == ENTRY and stored.exit_price == Decimal("2620")

    listed = client.get(ITEMS, {"instrument": eth.pk, "start": _ms(ENTRY), "end": _ms(ENTRY + timedelta(hours=1))})
    assert [x["id"] for x in listed.json()["annotations"]] == [a["id"]]

    changed = _patch(client, a["id"], {"side": "short", "exit_price": "2590.25", "notes": "faded"})
    assert changed.status_code == 200
    stored.refresh_from_db()
    assert (stored.side, stored.exit_price, stored.notes) == ("short", Decimal("2590.25"), "faded")
    assert stored.entry_price == Decimal("2600.5")  # untouched fields kept

    assert client.delete(f"{ITEMS}{a['id']}/").status_code == 204
    assert not Annotation.objects.exists()
    assert client.get(f"{ITEMS}{a['id']}/").status_code == 404


@pytest.mark.parametrize("over, field", [
    ({"side": "sideways"}, "side"),
    ({"entry_price": "0"}, "entry_price"),
    ({"exit_price": "-3"}, "exit_price"),
    ({"exit_price": "1.123456789"}, "exit_price"),  # more decimals than stored
    ({"entry_time": "soon"}, "entry_time"),
    ({"exit_time": _ms(ENTRY)}, "exit_time"),  # not after the entry
    ({"instrument": 999999}, "instrument"),
    ({"owner": 1}, "owner"),
    ({"notes": "x" * 2001}, "notes"),
])
def test_bad_input_is_400_naming_the_field_and_nothing_is_stored(eth, over, field):
    response = _post(_client(trader("ann")), _body(eth, **over))
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ")
    assert field in response.json()["errors"]
    assert not Annotation.objects.exists()


def test_a_body_that_is_not_a_json_object_is_400(eth):
    client = _client(trader("ann"))
    for raw in ("[1, 2]", "{not json"):
        response = client.post(ITEMS, raw, content_type="application/json")
        assert response.status_code == 400 and response.json()["error"].startswith("body: ")


def test_a_viewer_may_look_but_not_create(eth):
    client = _client(UserFactory(username="vic"))
    response = _post(client, _body(eth))
    assert response.status_code == 403 and "trader or admin" in response.json()["error"]
    assert not Annotation.objects.exists()
    assert client.get(ITEMS, {"instrument": eth.pk}).status_code == 200


def test_others_see_an_annotation_but_may_not_change_or_delete_it(eth):
    owner, other = _client(trader("ann")), _client(trader("bob"))
    pk = _post(owner, _body(eth)).json()["annotation"]["id"]

    assert other.get(f"{ITEMS}{pk}/").json()["annotation"]["owner_name"] == "ann"
    assert _patch(other, pk, {"notes": "mine"}).status_code == 403
    assert _patch(other, pk, {"side": "bad"}).status_code == 403  # ownership is checked before the input
    assert other.delete(f"{ITEMS}{pk}/").status_code == 403
    assert Annotation.objects.get(pk=pk).notes == "breakout"
    assert _patch(other, 999999, {"notes": "x"}).status_code == 404

    staff = _client(UserFactory(username="mod", is_staff=True))
    assert _patch(staff, pk, {"notes": "checked"}).status_code == 200  # staff moderate


def test_a_bad_change_is_400_and_leaves_the_row_as_it_was(eth):
    client = _client(trader("ann"))
    pk = _post(client, _body(eth)).json()["annotation"]["id"]
    response = _patch(client, pk, {"exit_time": _ms(ENTRY - timedelta(minutes=1))})
    assert response.status_code == 400 and response.json()["error"].startswith("exit_time: ")
    assert Annotation.objects.get(pk=pk).exit_time == ENTRY + timedelta(minutes=20)


def test_writes_need_the_csrf_token_and_a_signed_in_user(eth):
    user = trader("ann")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert _post(client, _body(eth)).status_code == 403  # no token
    client.get("/annotations/")  # the page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(ITEMS, json.dumps(_body(eth)), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201

    anonymous = Client()
    assert anonymous.get(ITEMS).status_code == 401
    assert anonymous.get("/annotations/data/").status_code == 401


def test_an_annotation_made_on_the_page_becomes_a_training_case(eth):
    from apps.market.models import Instrument
    from apps.predictions.cases import training_cases_collect
    from apps.predictions.services import model_load_live

    response = _post(_client(trader("ann")), _body(eth, side="short", exit_price="2590"))
    assert response.status_code == 201
    model, _ = model_load_live(model_name="cnn")
    start = _ms(ENTRY) - 60_000
    cases = training_cases_collect(model_name="cnn", model=model, instrument=eth,
                                   reference=Instrument.objects.get(venue="binance", symbol="BTCUSDT"),
                                   start_ms=start, end_ms=start + 3_600_000)
    assert cases.counts()["annotation"] == 1
    assert cases.target.tolist() == [1]  # short -> SELL
    assert cases.times.tolist() == [_ms(ENTRY) - 1000]  # the second closed at the entry
