"""Annotations (read all, write own, through apps.annotations.services) and backtests (enqueue,
read, CSV report)."""
from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.annotations.models import Annotation
from apps.backtest.models import BacktestRun
from tests.apps.api.conftest import owned_rows

pytestmark = pytest.mark.django_db

BODY = {"side": "long", "entry_time": "2024-08-08T10:00:00Z", "entry_price": "2600.5", "exit_time": "2024-08-08T10:03:00Z",
        "exit_price": "2612", "notes": "breakout"}


def test_a_trader_creates_changes_and_deletes_their_annotation(as_trader, trader, eth):
    created = as_trader.post("/api/v1/annotations/", {**BODY, "instrument": eth.pk}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["owner"] == trader.username and body["return_fraction"] == pytest.approx(2612 / 2600.5 - 1)
    url = f"/api/v1/annotations/{body['id']}/"
    assert as_trader.patch(url, {"notes": "retest", "side": "short"}, format="json").json()["side"] == "short"
    assert Annotation.objects.get(pk=body["id"]).notes == "retest"
    assert as_trader.delete(url).status_code == 204 and not Annotation.objects.filter(pk=body["id"]).exists()


def test_exit_before_entry_is_a_400_naming_exit_time_and_nothing_is_stored(as_trader, eth):
    response = as_trader.post("/api/v1/annotations/", {**BODY, "instrument": eth.pk, "exit_time": "2024-08-08T09:00:00Z"},
                              format="json")
    assert response.status_code == 400 and "exit_time" in response.json()
    assert not Annotation.objects.exists()


def test_everyone_reads_all_annotations_but_changes_only_their_own(as_viewer, as_trader, trader, admin, eth):
    theirs = owned_rows(admin, eth, name="admins")["annotations"]
    mine = owned_rows(trader, eth)["annotations"]
    listed = {r["id"] for r in as_viewer.get("/api/v1/annotations/").json()["results"]}
    assert {theirs, mine} <= listed
    assert [r["id"] for r in as_viewer.get("/api/v1/annotations/", {"owner": trader.pk}).json()["results"]] == [mine]
    assert [r["id"] for r in as_trader.get("/api/v1/annotations/", {"mine": "true"}).json()["results"]] == [mine]
    assert as_trader.patch(f"/api/v1/annotations/{theirs}/", {"notes": "x"}, format="json").status_code == 404
    assert as_trader.delete(f"/api/v1/annotations/{theirs}/").status_code == 404
    assert Annotation.objects.get(pk=theirs).notes == "mine"
    assert as_viewer.post("/api/v1/annotations/", {**BODY, "instrument": eth.pk}, format="json").status_code == 403


def test_a_trader_starts_a_backtest_which_is_enqueued_after_commit(as_trader, trader, django_capture_on_commit_callbacks,
                                                                   monkeypatch):
    enqueued = []
    monkeypatch.setattr("apps.backtest.services.backtest_enqueue", lambda run: enqueued.append(run.pk))
    with django_capture_on_commit_callbacks(execute=True):
        response = as_trader.post("/api/v1/backtests/", {"source": "candles", "name": "api run",
                                                         "start": "2024-08-08T23:00:00Z", "end": "2024-08-09T01:00:00Z"},
                                  format="json")
    assert response.status_code == 201, response.content
    run = BacktestRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.source, run.created_by) == ("pending", "candles", trader) and enqueued == [run.pk]
    assert AuditLog.objects.get(action="backtest.start").target_id == str(run.pk)
    assert as_trader.get(f"/api/v1/backtests/{run.pk}/").json()["created_by"] == trader.username


def test_a_backtest_span_ending_before_it_starts_is_a_400_naming_end(as_trader):
    response = as_trader.post("/api/v1/backtests/", {"start": "2024-08-09T00:00:00Z", "end": "2024-08-08T00:00:00Z"},
                              format="json")
    assert response.status_code == 400 and "end" in response.json()
    assert not BacktestRun.objects.exists()


def test_a_viewer_reads_backtests_and_their_csv_but_cannot_start_one(as_viewer):
    run = BacktestRun.objects.create(name="done", status="finished",
                                     series={"ts": [1_723_111_200_000, 1_723_111_201_000], "mid": [2600.0, 2601.0],
                                             "equity": [10000.0, 10001.0], "position": [0.0, 0.1]})
    assert as_viewer.post("/api/v1/backtests/", {}, format="json").status_code == 403
    assert as_viewer.get("/api/v1/backtests/", {"status": "finished"}).json()["results"][0]["id"] == run.pk
    report = as_viewer.get(f"/api/v1/backtests/{run.pk}/report/", HTTP_ACCEPT="text/csv")
    lines = report.content.decode().splitlines()
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    assert lines[0].startswith("ts_ms,mid,equity,position") and len(lines) == 3
