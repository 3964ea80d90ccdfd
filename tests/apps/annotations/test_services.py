"""Annotations: create with validation, owner-only changes, the admin, and training cases from them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from apps.accounts.roles import role_ensure_defaults
from apps.annotations.models import Annotation
from apps.annotations.selectors import annotation_list
from apps.annotations.services import annotation_create, annotation_delete, annotation_update
from apps.market.models import Instrument

pytestmark = pytest.mark.django_db
ENTRY = datetime(2024, 8, 8, 23, 0, 30, tzinfo=UTC)  # the stored 1m/1h/1d history is complete here


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


@pytest.fixture
def users():
    """Two traders and a staff user (annotating needs the trader or admin role)."""
    model = get_user_model()
    trader = role_ensure_defaults()[1]
    ann, bob = model.objects.create_user("ann", password="x"), model.objects.create_user("bob", password="x")
    trader.user_set.add(ann, bob)
    return ann, bob, model.objects.create_user("staff", password="x", is_staff=True)


def _make(owner, eth, **over) -> Annotation:
    fields = {"side": "long", "entry_time": ENTRY, "entry_price": Decimal("2600.5"),
              "exit_time": ENTRY + timedelta(minutes=20), "exit_price": Decimal("2620"), "notes": "breakout"}
    return annotation_create(owner=owner, instrument=eth, **(fields | over))


def test_an_annotation_is_created_and_listed(users, eth):
    a = _make(users[0], eth)
    assert a.return_fraction == pytest.approx(2620 / 2600.5 - 1)
    assert list(annotation_list(instrument=eth, owner=users[0])) == [a]
    assert list(annotation_list(start=ENTRY + timedelta(seconds=1))) == []


def test_exit_before_entry_or_a_non_positive_price_is_refused_naming_the_field(users, eth):
    with pytest.raises(ValidationError) as exc:
        _make(users[0], eth, exit_time=ENTRY)
    assert "annotation_exit_after_entry" in str(exc.value)
    assert exc.value.message_dict["exit_time"] == ["must be after entry_time (annotation_exit_after_entry)"]
    with pytest.raises(ValidationError) as exc:
        _make(users[0], eth, entry_time=ENTRY.replace(tzinfo=None))
    assert "entry_time" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        _make(users[0], eth, entry_price=Decimal(0))
    assert "entry_price" in exc.value.message_dict
    assert not Annotation.objects.exists()
    with pytest.raises(ValidationError) as exc:
        _make(users[0], eth, side="sideways")
    assert "side" in exc.value.message_dict
    with transaction.atomic(), pytest.raises(IntegrityError):  # the database enforces it too
        Annotation.objects.create(owner=users[0], instrument=eth, side="long", entry_time=ENTRY, exit_time=ENTRY,
                                  entry_price=Decimal(1), exit_price=Decimal(1))


def test_only_the_owner_or_staff_may_change_or_delete(users, eth):
    ann, bob, staff = users
    a = _make(ann, eth)
    with pytest.raises(PermissionDenied):
        annotation_update(annotation=a, user=bob, notes="mine now")
    with pytest.raises(PermissionDenied):
        annotation_delete(annotation=a, user=bob)
    assert annotation_update(annotation=a, user=ann, side="short", notes="fade").side == "short"
    assert annotation_update(annotation=a, user=staff, notes="checked").notes == "checked"
    with pytest.raises(ValueError, match="cannot be edited"):
        annotation_update(annotation=a, user=ann, owner=bob)
    annotation_delete(annotation=a, user=ann)
    assert not Annotation.objects.exists()


def test_the_admin_lists_filters_and_searches(users, eth, admin_client):
    _make(users[0], eth)
    response = admin_client.get("/admin/annotations/annotation/", {"side": "long", "q": "breakout"})
    assert response.status_code == 200 and "ETHUSDT" in response.content.decode()


def test_an_annotation_becomes_a_training_case_with_the_input_at_its_entry(users, eth):
    from apps.predictions.cases import training_cases_collect
    from apps.predictions.services import model_load_live

    _make(users[0], eth)
    _make(users[0], eth, side="short", entry_time=ENTRY + timedelta(minutes=5), exit_time=ENTRY + timedelta(minutes=9),
          exit_price=Decimal("2590"))
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")
    model, _ = model_load_live(model_name="cnn")
    start = int(ENTRY.timestamp() * 1000) - 60_000
    cases = training_cases_collect(model_name="cnn", model=model, instrument=eth, reference=btc, start_ms=start,
                                   end_ms=start + 3_600_000)
    assert cases.counts() == {"scored": 0, "annotation": 2, "paper": 0}
    assert cases.target.tolist() == [0, 1]  # long -> BUY, short -> SELL
    assert cases.times[0] == int(ENTRY.timestamp()) * 1000 - 1000  # the second closed at the entry
    assert cases.arrays["eth_1m"].shape == (2, 60, 5) and cases.arrays["mask_eth_1h"].all()  # the model's groups
    assert cases.rewards[1, 1] == pytest.approx(1e4 * (1 - 2590 / 2600.5) - 20, rel=1e-4)


def test_a_viewer_may_not_annotate_and_a_demoted_trader_may_not_edit(users, eth):
    model = get_user_model()
    viewer = model.objects.create_user("vic", password="x")
    with pytest.raises(PermissionDenied, match="trader or admin"):
        _make(viewer, eth)
    ann = users[0]
    a = _make(ann, eth)
    ann.groups.clear()  # ann is a viewer now: her row stays, but she cannot act on it
    with pytest.raises(PermissionDenied):
        annotation_update(annotation=a, user=ann, notes="x")
    assert not Annotation.objects.filter(owner=viewer).exists()


def test_writes_are_published_to_the_instrument_group_after_commit(users, eth, settings,
                                                                  django_capture_on_commit_callbacks):
    from uuid import uuid4

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from apps.annotations.events import annotation_group

    layer_cfg = dict(settings.CHANNEL_LAYERS["default"])
    layer_cfg["CONFIG"] = {**layer_cfg.get("CONFIG", {}), "prefix": f"test-{uuid4().hex[:8]}"}
    settings.CHANNEL_LAYERS = {"default": layer_cfg}
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(annotation_group(eth.pk), channel)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        a = _make(users[0], eth)
    assert len(callbacks) == 1  # nothing is sent before the commit
    for callback in callbacks:
        callback()
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "annotation.event"
    assert message["payload"]["event"] == "created" and message["payload"]["id"] == a.pk
    assert message["payload"]["annotation"]["owner_name"] == "ann"
    assert message["payload"]["annotation"]["entry_time"] == int(ENTRY.timestamp() * 1000)

    with django_capture_on_commit_callbacks(execute=True):
        annotation_delete(annotation=a, user=users[0])
    message = async_to_sync(layer.receive)(channel)
    assert message["payload"] == {"type": "annotation", "event": "deleted", "id": a.pk, "instrument": eth.pk,
                                  "annotation": None}


def test_a_moderation_in_the_admin_is_published_too(users, eth, admin_client, settings,
                                                    django_capture_on_commit_callbacks):
    from uuid import uuid4

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from apps.annotations.events import annotation_group

    a = _make(users[0], eth)
    layer_cfg = dict(settings.CHANNEL_LAYERS["default"])
    layer_cfg["CONFIG"] = {**layer_cfg.get("CONFIG", {}), "prefix": f"test-{uuid4().hex[:8]}"}
    settings.CHANNEL_LAYERS = {"default": layer_cfg}
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(annotation_group(eth.pk), channel)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/annotations/annotation/{a.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Annotation.objects.exists()
    message = async_to_sync(layer.receive)(channel)
    assert message["payload"]["event"] == "deleted" and message["payload"]["id"] == a.pk
