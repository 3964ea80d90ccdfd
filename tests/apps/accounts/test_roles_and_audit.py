"""Roles (groups) and the audit log."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import RequestFactory

from apps.accounts.models import AuditLog
from apps.accounts.roles import role_at_least, role_ensure_defaults, user_role
from apps.accounts.services import audit_record
from apps.market.models import Instrument

pytestmark = pytest.mark.django_db


def test_role_groups_are_created_once():
    role_ensure_defaults()
    role_ensure_defaults()
    assert sorted(Group.objects.filter(name__in=["viewer", "trader", "admin"]).values_list("name", flat=True)) == [
        "admin", "trader", "viewer"]


def test_a_users_role_comes_from_staff_status_or_groups():
    from django.contrib.auth.models import AnonymousUser

    role_ensure_defaults()
    User = get_user_model()
    plain, trader, admin_group = (User.objects.create_user(n) for n in ("plain", "trader1", "admin1"))
    trader.groups.add(Group.objects.get(name="trader"))
    admin_group.groups.add(Group.objects.get(name="admin"))
    staff = User.objects.create_user("staff", is_staff=True)
    assert [user_role(u) for u in (plain, trader, admin_group, staff)] == ["viewer", "trader", "admin", "admin"]
    assert user_role(AnonymousUser()) is None and not role_at_least(AnonymousUser(), "viewer")
    assert role_at_least(trader, "viewer") and not role_at_least(trader, "admin")


def test_the_audit_log_keeps_who_did_what_to_which_row_from_where_without_secrets():
    user = get_user_model().objects.create_user("carol")
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    request = RequestFactory().post("/x", REMOTE_ADDR="10.0.0.7")
    entry = audit_record(user=user, action="stream.start", target=eth, request=request,
                         payload={"speed": "10", "api_secret": "s3cr3t", "password": "p"})
    entry.refresh_from_db()
    assert (entry.username, entry.action, entry.target_type, entry.target_id, entry.ip) == (
        "carol", "stream.start", "market.instrument", str(eth.pk), "10.0.0.7")
    assert entry.payload == {"speed": "10", "api_secret": "***", "password": "***"}
    assert "s3cr3t" not in json.dumps(list(AuditLog.objects.values()), default=str)


def test_the_admin_shows_the_audit_log_read_only(client):
    admin = get_user_model().objects.create_superuser("root", password="a-long-test-password")
    entry = audit_record(user=admin, action="session.stop", target=("session", "replay"))
    client.force_login(admin)
    listing = client.get("/admin/accounts/auditlog/", {"q": "session"})
    assert listing.status_code == 200 and b"session.stop" in listing.content
    assert client.get("/admin/accounts/auditlog/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/accounts/auditlog/{entry.pk}/change/", {"action": "edited"}).status_code == 403
    assert AuditLog.objects.get(pk=entry.pk).action == "session.stop"


def test_dashboard_stream_control_is_audited(client, settings):
    staff = get_user_model().objects.create_user("ops", is_staff=True)
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    client.force_login(staff)
    response = client.post("/dashboard/streams/", {"instrument": eth.pk, "action": "stop"}, content_type="application/json")
    assert response.status_code == 200
    assert AuditLog.objects.filter(user=staff, action="stream.stop", target_id=str(eth.pk)).count() == 1
