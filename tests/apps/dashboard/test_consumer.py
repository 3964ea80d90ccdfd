"""``/ws/dashboard/`` through the whole ASGI stack (origin check, session auth, routing)."""
from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.pipeline.runner import GROUP
from gogo.asgi import application
from tests.apps.dashboard.conftest import TradingAccountFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layer_prefix")]

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def _tick(ts: int, accounts: dict[str, dict], decisions: list[dict] | None = None) -> dict:
    """An update in the shape ``apps.pipeline.stages.dashboard.Dashboard.tick`` builds (trimmed)."""
    return {
        "type": "tick", "ts": ts, "symbol": "ETHUSDT",
        "instruments": {
            "ETHUSDT": {"candle": {"t": ts, "o": 2680.0, "h": 2681.5, "l": 2679.9, "c": 2681.2, "v": 3.5},
                        "frame": None, "gaps": 0},
            "BTCUSDT": {"candle": None, "frame": None, "gaps": 1},
        },
        "prediction": {"status": "skipped", "action": "", "confidence": None, "reason": "completeness 0.50 < 0.80",
                       "probs": {"BUY": None, "SELL": None, "HOLD": None}},
        "completeness": {"primary_1s": 0.5, "overall": 0.5},
        "decisions": decisions or [],
        "accounts": accounts,
    }


def _account_state(pnl: float) -> dict:
    return {"position": "0.1", "average_price": "2680.00", "realized_pnl": pnl, "unrealized_pnl": 0.0,
            "pnl": pnl, "orders": 1, "fills": 1}


@database_sync_to_async
def _signed_in_cookie(user) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return b"cookie", f"{name}={client.cookies[name].value}".encode()


@pytest.fixture
async def connect():
    """Opens ``/ws/dashboard/`` connections; each is closed after the test, even a failed one."""
    opened: list[WebsocketCommunicator] = []

    async def _connect(cookie: tuple[bytes, bytes] | None = None, origin=ORIGIN) -> tuple[WebsocketCommunicator, bool, int]:
        communicator = WebsocketCommunicator(application, "/ws/dashboard/", headers=[h for h in (origin, cookie) if h])
        opened.append(communicator)
        connected, code = await communicator.connect(timeout=5)
        return communicator, connected, code

    yield _connect
    for communicator in opened:
        await communicator.disconnect()


async def test_it_refuses_an_anonymous_connection(connect):
    _, connected, code = await connect()

    assert not connected
    assert code == 4401


async def test_it_refuses_a_foreign_origin_even_when_signed_in(connect):
    user = await database_sync_to_async(UserFactory)()
    cookie = await _signed_in_cookie(user)

    _, connected, _ = await connect(cookie, origin=(b"origin", b"http://evil.example"))

    assert not connected


async def test_a_signed_in_user_receives_a_published_tick(connect):
    user = await database_sync_to_async(UserFactory)()
    communicator, connected, _ = await connect(await _signed_in_cookie(user))
    assert connected

    await get_channel_layer().group_send(GROUP, {"type": "tick", "payload": _tick(1723161600000, {})})
    message = await communicator.receive_json_from(timeout=5)

    assert message["type"] == "tick"
    assert message["ts"] == 1723161600000
    assert message["instruments"]["ETHUSDT"]["candle"]["c"] == 2681.2
    assert message["instruments"]["BTCUSDT"]["gaps"] == 1


async def test_a_user_sees_only_their_own_accounts(connect):
    alice_account = await database_sync_to_async(TradingAccountFactory)(owner__username="alice")
    bob_account = await database_sync_to_async(TradingAccountFactory)(owner__username="bob")
    alice, _, _ = await connect(await _signed_in_cookie(alice_account.owner))
    bob, _, _ = await connect(await _signed_in_cookie(bob_account.owner))
    accounts = {str(alice_account.pk): _account_state(12.5), str(bob_account.pk): _account_state(-3.0)}

    await get_channel_layer().group_send(GROUP, {"type": "tick", "payload": _tick(1723161601000, accounts)})
    to_alice = await alice.receive_json_from(timeout=5)
    to_bob = await bob.receive_json_from(timeout=5)

    assert to_alice["accounts"] == {str(alice_account.pk): _account_state(12.5)}
    assert to_bob["accounts"] == {str(bob_account.pk): _account_state(-3.0)}


async def test_a_user_does_not_see_another_users_orders(connect):
    alice_account = await database_sync_to_async(TradingAccountFactory)(owner__username="alice")
    bob_account = await database_sync_to_async(TradingAccountFactory)(owner__username="bob")
    alice, _, _ = await connect(await _signed_in_cookie(alice_account.owner))
    order = {"side": "BUY", "quantity": "0.3731", "status": "FILLED", "price": "2680.01", "reason": ""}
    decisions = [
        {"account": account.pk, "action": "BUY", "confidence": 0.7, "threshold": 0.5, "reason": "", "order": order}
        for account in (alice_account, bob_account)
    ]

    await get_channel_layer().group_send(GROUP, {"type": "tick", "payload": _tick(1723161602000, {}, decisions)})
    to_alice = await alice.receive_json_from(timeout=5)

    assert [d["account"] for d in to_alice["decisions"]] == [alice_account.pk]


async def test_a_control_action_reaches_every_open_panel_as_an_audit_entry(connect):
    from apps.accounts.roles import role_ensure_defaults
    from apps.market.models import Instrument
    from apps.trading.controls import control_trading

    viewer = await database_sync_to_async(UserFactory)()
    trader = await database_sync_to_async(UserFactory)()
    await database_sync_to_async(role_ensure_defaults)()
    await database_sync_to_async(lambda: trader.groups.add(*trader.groups.model.objects.filter(name="trader")))()
    panel, connected, _ = await connect(await _signed_in_cookie(viewer))
    assert connected
    eth, _ = await database_sync_to_async(Instrument.objects.get_or_create)(
        venue="binance", symbol="ETHUSDT", defaults={"base": "ETH", "quote": "USDT", "is_traded": True})

    await database_sync_to_async(control_trading)(user=trader, instrument=eth, on=False)
    message = await panel.receive_json_from(timeout=5)

    assert message["type"] == "audit"
    entry = message["entry"]
    assert (entry["user"], entry["action"], entry["target"], entry["target_id"]) == \
        (trader.username, "trading.stop", "ETHUSDT", str(eth.pk))


async def test_an_action_on_an_account_reaches_only_its_owner_and_admins(connect):
    from apps.accounts.services import audit_record
    from apps.dashboard.events import audit_publish

    alice_account = await database_sync_to_async(TradingAccountFactory)(owner__username="alice")
    bob = await database_sync_to_async(UserFactory)(username="bob")
    admin = await database_sync_to_async(UserFactory)(username="root", is_staff=True)
    alice, _, _ = await connect(await _signed_in_cookie(alice_account.owner))
    other, _, _ = await connect(await _signed_in_cookie(bob))
    staff, _, _ = await connect(await _signed_in_cookie(admin))
    entry = await database_sync_to_async(audit_record)(user=alice_account.owner, action="kill_switch.on",
                                                       target=alice_account, payload={"account": "paper"})

    await database_sync_to_async(audit_publish)(entry)

    assert (await alice.receive_json_from(timeout=5))["entry"]["account"] == alice_account.pk
    assert (await staff.receive_json_from(timeout=5))["entry"]["action"] == "kill_switch.on"
    assert await other.receive_nothing(timeout=0.5)


async def test_the_checkpoint_ranking_follows_the_end_of_a_training_run(connect):
    from apps.predictions.models import ModelCheckpoint

    user = await database_sync_to_async(UserFactory)()
    communicator, connected, _ = await connect(await _signed_in_cookie(user))
    assert connected
    await database_sync_to_async(ModelCheckpoint.objects.create)(
        model_name="zz-test", version="zz-1", path="/nonexistent.pt", validation_metric=0.61, is_active=False)
    layer = get_channel_layer()
    running = {"model": "zz-test", "kind": "fine_tune", "state": "running", "fraction": 0.5}
    await layer.group_send(GROUP, {"type": "training.progress", "training": running})
    assert (await communicator.receive_json_from(timeout=5))["state"] == "running"
    await layer.group_send(GROUP, {"type": "training.progress", "training": {**running, "state": "finished"}})
    assert (await communicator.receive_json_from(timeout=5))["state"] == "finished"
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "checkpoints"
    ranking = {m["model"]: m["rows"] for m in message["checkpoints"]}
    assert ranking["zz-test"][0]["version"] == "zz-1" and ranking["zz-test"][0]["metric"] == 0.61
