"""The learning and checkpoints panels in a real browser: an admin promotes a shadow checkpoint and
rolls it back in one click; "Train now" queues a run whose outcome (here: skipped, with the cases
it needs) arrives live over the dashboard websocket."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.predictions import services
from apps.predictions.models import ModelCheckpoint, TrainingRun
from tests.e2e.conftest import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _db(fn):
    """Run ``fn`` on a thread of its own: Django refuses DB calls beside Playwright's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _shadow_with_evidence(tmp_path):
    live = ModelCheckpoint.objects.get(model_name="cnn", is_active=True)
    shadow = services.checkpoint_register(model_name="cnn", version="e2e-shadow", path=tmp_path / "cnn-e2e.pt",
                                          sha256="0" * 64, config={"horizon_min": 5}, metrics={}, data_range=(0, 1000),
                                          validation_metric=None)
    ModelCheckpoint.objects.filter(pk=shadow.pk).update(evidence={
        "decision": "pending", "n": 1800, "mean": 0.8, "lo": -0.4, "hi": 2.0, "why": "needs 3600"})
    return live, shadow, UserFactory(is_staff=True)


def _sign_in(page, base_url: str, user) -> None:
    page.goto(base_url + "/accounts/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    page.wait_for_selector("#conn.conn--live")


def test_an_admin_promotes_a_shadow_rolls_it_back_and_trains_now(pipeline, page, live_server_url, tmp_path):
    live, shadow, admin = _db(lambda: _shadow_with_evidence(tmp_path))
    _sign_in(page, live_server_url, admin)

    row = page.locator(f'#checkpoints tr[data-id="{shadow.pk}"]')
    assert "shadow" in row.inner_text() and "pending: n=1800, +0.80 bps/s [-0.40, +2.00]" in row.inner_text()
    row.locator('[data-checkpoint-action="promote"]').click()
    page.wait_for_function("document.getElementById('checkpoints-message').textContent.startsWith('Promoted')")
    _db(shadow.refresh_from_db)
    assert shadow.state == "live" and shadow.replaced_id == live.pk

    page.reload()
    page.wait_for_selector("#conn.conn--live")
    page.locator(f'#checkpoints tr[data-id="{shadow.pk}"] [data-checkpoint-action="rollback"]').click()
    page.wait_for_function("document.getElementById('checkpoints-message').textContent.startsWith('Rolled back')")
    _db(live.refresh_from_db)
    assert live.is_active and live.pinned

    # no scored dqn case yet: the fine-tune is skipped and says how many cases it needs, live
    page.locator('#learning-training [data-train-now="dqn"]').click()
    page.wait_for_function("""() => {
      const row = document.querySelector('#learning-training tr[data-model="dqn"]');
      return row && row.querySelector('[data-field="state"]').textContent.includes('skipped');
    }""", timeout=60_000)
    message = page.inner_text('#learning-training tr[data-model="dqn"] [data-field="message"]')
    run = _db(lambda: TrainingRun.objects.get(model_name="dqn", requested_by=admin.username))
    assert run.state == "skipped" and run.cases_needed == 80 and message == run.reason and "needs 64" in message
    assert page.problems == []
