"""``/ws/annotations/`` through the whole ASGI stack: refusals, subscription, live events from the services."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.annotations.services import annotation_create, annotation_delete, annotation_update
from apps.market.models import Instrument
from gogo.asgi import application
from tests.apps.annotations.conftest import UserFactory, trader

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer_prefix")]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
ENTRY = datetime(2024, 8, 8, 23, 55, 0, tzinfo=UTC)


@database_sync_to_async
def _signed_in_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return b"cookie", f"{name}={client.cookies[name].value}".encode()


@pytest.fixture
async def connect():
    """Opens ``/ws/annotations/`` connections; each is closed after the test, even a failed one."""
    opened: list[WebsocketCommunicator] = []

    async def _connect(path: str, cookie=None, origin=ORIGIN) -> tuple[WebsocketCommunicator, bool, int]:
        communicator = WebsocketCommunicator(application, path, headers=[h for h in (origin, cookie) if h])
        opened.append(communicator)
        connected, code = await communicator.connect(timeout=5)
        return communicator, connected, code

    yield _connect
    for communicator in opened:
        await communicator.disconnect()


@database_sync_to_async
def _instruments() -> tuple[Instrument, Instrument]:
    from apps.market.services import instrument_ensure_defaults

    instrument_ensure_defaults()  # transactional tests start from empty tables
    return (Instrument.objects.get(venue="binance", symbol="ETHUSDT"),
            Instrument.objects.get(venue="binance", symbol="BTCUSDT"))


async def test_it_refuses_an_anonymous_connection(connect):
    _, connected, code = await connect("/ws/annotations/")
    assert not connected and code == 4401


async def test_it_refuses_a_foreign_origin_even_when_signed_in(connect):
    cookie = await _signed_in_cookie(await database_sync_to_async(UserFactory)())
    _, connected, _ = await connect("/ws/annotations/", cookie, origin=(b"origin", b"http://evil.example"))
    assert not connected


async def test_every_page_of_the_instrument_sees_creates_edits_and_deletes(connect):
    eth, btc = await _instruments()
    ann = await database_sync_to_async(trader)("ann")
    viewer = await database_sync_to_async(UserFactory)(username="vic")
    watcher, ok, _ = await connect(f"/ws/annotations/?instrument={eth.pk}", await _signed_in_cookie(viewer))
    assert ok and await watcher.receive_json_from(timeout=5) == {"type": "subscribed", "instrument": eth.pk}
    elsewhere, ok, _ = await connect(f"/ws/annotations/?instrument={btc.pk}", await _signed_in_cookie(ann))
    assert ok and (await elsewhere.receive_json_from(timeout=5))["instrument"] == btc.pk

    a = await database_sync_to_async(annotation_create)(
        owner=ann, instrument=eth, side="long", entry_time=ENTRY, entry_price=Decimal("2650"),
        exit_time=ENTRY + timedelta(minutes=3), exit_price=Decimal("2661.5"), notes="pop")
    created = await watcher.receive_json_from(timeout=5)
    assert created["event"] == "created" and created["id"] == a.pk
    assert created["annotation"]["owner_name"] == "ann" and created["annotation"]["exit_price"] == 2661.5

    await database_sync_to_async(annotation_update)(annotation=a, user=ann, notes="pop, then fade")
    updated = await watcher.receive_json_from(timeout=5)
    assert updated["event"] == "updated" and updated["annotation"]["notes"] == "pop, then fade"

    await database_sync_to_async(annotation_delete)(annotation=a, user=ann)
    deleted = await watcher.receive_json_from(timeout=5)
    assert deleted == {"type": "annotation", "event": "deleted", "id": a.pk, "instrument": eth.pk, "annotation": None}

    assert await elsewhere.receive_nothing(timeout=0.3)  # another instrument's page heard nothing


async def test_a_page_switches_instrument_and_an_unknown_one_is_an_error(connect):
    eth, btc = await _instruments()
    user = await database_sync_to_async(UserFactory)()
    socket, ok, _ = await connect("/ws/annotations/", await _signed_in_cookie(user))
    assert ok
    await socket.send_json_to({"subscribe": 999999})
    assert (await socket.receive_json_from(timeout=5))["error"].startswith("instrument: ")
    await socket.send_json_to({"subscribe": btc.pk})
    assert await socket.receive_json_from(timeout=5) == {"type": "subscribed", "instrument": btc.pk}

    ann = await database_sync_to_async(trader)("ann")
    await database_sync_to_async(annotation_create)(
        owner=ann, instrument=btc, side="short", entry_time=ENTRY, entry_price=Decimal("61000"),
        exit_time=ENTRY + timedelta(minutes=1), exit_price=Decimal("60900"))
    event = await socket.receive_json_from(timeout=5)
    assert event["event"] == "created" and event["instrument"] == btc.pk
