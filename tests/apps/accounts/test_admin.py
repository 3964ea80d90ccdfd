"""The Django admin: every registered model's list, search, add and change pages open for a
superuser; secrets never appear; the periodic tasks are editable rows of django-celery-beat."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.trading.models import TradingAccount

pytestmark = pytest.mark.django_db

API_KEY, API_SECRET = "plain-api-key-7f3a9c", "plain-api-secret-91bd24"


@pytest.fixture
def account_with_credentials(monkeypatch):
    from apps.trading.services import account_set_credentials

    monkeypatch.setenv("GOGO_SECRETS_KEY", Fernet.generate_key().decode())
    owner = get_user_model().objects.create_user("owner", password="x")
    account = TradingAccount.objects.create(owner=owner, name="live-1", mode="live")
    return account_set_credentials(account=account, api_key=API_KEY, api_secret=API_SECRET)


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_registered_model_lists_searches_adds_and_changes(admin_client, account_with_credentials):
    from apps.accounts.services import audit_record

    audit_record(user=account_with_credentials.owner, action="order.submit", target=account_with_credentials)
    checked = []
    for model, model_admin in admin.site._registry.items():
        changelist = admin_client.get(_url(model, "changelist"))
        assert changelist.status_code == 200, model
        if model_admin.search_fields:
            assert admin_client.get(_url(model, "changelist"), {"q": "a"}).status_code == 200, model
        request = changelist.wsgi_request
        if model_admin.has_add_permission(request):
            assert admin_client.get(_url(model, "add")).status_code == 200, model
        row = model.objects.first()
        if row is not None:
            assert admin_client.get(_url(model, "change", row.pk)).status_code == 200, model
        checked.append(model._meta.label)
    for label in ("market.Instrument", "market.RetentionPolicy", "predictions.ModelCheckpoint", "predictions.ModelSetting",
                  "trading.OrchestratorConfig", "trading.TradingAccount", "trading.Order", "trading.Fill",
                  "risk.RiskLimit", "risk.RiskState", "annotations.Annotation", "backtest.BacktestRun",
                  "accounts.AuditLog", "django_celery_beat.PeriodicTask", "auth.User"):
        assert label in checked


def test_the_inspect_only_models_have_list_filters_and_search():
    for label in ("accounts.AuditLog", "annotations.Annotation", "trading.Order", "trading.Fill", "risk.RiskEvent",
                  "predictions.Prediction", "predictions.ModelCheckpoint", "backtest.BacktestRun", "market.DataGap"):
        model_admin = next(a for m, a in admin.site._registry.items() if m._meta.label == label)
        assert model_admin.list_filter and model_admin.search_fields, label


def test_credentials_are_write_only_in_the_admin(admin_client, account_with_credentials):
    account = account_with_credentials
    assert account.api_key_encrypted and API_KEY not in account.api_key_encrypted
    pages = [admin_client.get(_url(TradingAccount, "changelist")), admin_client.get(_url(TradingAccount, "change", account.pk)),
             admin_client.get(_url(TradingAccount, "changelist"), {"q": "live"})]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        for secret in (API_KEY, API_SECRET, account.api_key_encrypted, account.api_secret_encrypted):
            assert secret not in html
    change = pages[1].content.decode()
    assert 'name="api_key"' in change and 'type="password"' in change  # the write-only form field
    assert "api_key_encrypted" not in change


def test_the_audit_log_is_read_only_even_for_a_superuser(admin_client, account_with_credentials):
    from apps.accounts.models import AuditLog
    from apps.accounts.services import audit_record

    entry = audit_record(user=account_with_credentials.owner, action="kill_switch.on", payload={"api_key": API_KEY})
    assert API_KEY not in admin_client.get(_url(AuditLog, "change", entry.pk)).content.decode()
    assert admin_client.get(_url(AuditLog, "add")).status_code == 403
    assert admin_client.post(_url(AuditLog, "delete", entry.pk), {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=entry.pk).exists()


def test_the_user_list_shows_roles(admin_client):
    from apps.accounts.roles import role_ensure_defaults

    trader = get_user_model().objects.create_user("tina")
    trader.groups.add(role_ensure_defaults()[1])
    html = admin_client.get("/admin/auth/user/", {"q": "tina"}).content.decode()
    assert "tina" in html and ">trader<" in html


def test_the_periodic_tasks_are_rows_the_admin_edits(admin_client):
    """Every schedule gogo uses is created by the bootstrap (``registry_defaults_ensure``,
    ``learning_schedule_ensure``, ``stream_defaults_ensure``) as a django-celery-beat row; beat runs
    with its DatabaseScheduler, so an edit here is what beat does."""
    from django.conf import settings
    from django_celery_beat.models import PeriodicTask

    from workers import tasks  # noqa: F401  (registers every task)

    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    assert not getattr(settings, "CELERY_BEAT_SCHEDULE", None)  # no code-only schedule
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {"inference history retention", "COB frame retention", "outcome scoring sweep", "model alert check",
            "market stream watchdog", "fine-tune cnn"} <= names
    task = PeriodicTask.objects.get(name="outcome scoring sweep")
    html = admin_client.get(_url(PeriodicTask, "changelist"), {"q": "retention"}).content.decode()
    assert "COB frame retention" in html and "outcome scoring sweep" not in html
    page = admin_client.get(_url(PeriodicTask, "change", task.pk))
    assert page.status_code == 200 and "workers.scoring.score_outcomes_sweep" in page.content.decode()
