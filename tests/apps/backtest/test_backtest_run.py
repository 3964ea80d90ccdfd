"""Backtests on the recorded session: determinism, isolation, the report, the page and the CSV."""
import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.backtest.models import BacktestRun
from apps.backtest.services import backtest_run
from apps.trading.models import Order, TradingAccount

pytestmark = pytest.mark.django_db


def test_two_runs_on_the_same_data_give_the_same_order_log_and_figures(window):
    start, end = window
    users_account = TradingAccount.objects.create(owner=get_user_model().objects.create(username="alice"), name="paper")
    first = backtest_run(start=start, end=end)
    second = backtest_run(start=start, end=end)

    assert first.status == second.status == BacktestRun.Status.FINISHED and first.progress == 1.0
    assert first.account != second.account and not first.account.auto_trade
    assert Order.objects.filter(account=first.account).count() >= 3  # zero thresholds, 5 s cooldown
    assert not Order.objects.filter(account=users_account).exists()  # users' accounts are never touched
    assert len(first.order_log_sha256) == 64 and first.order_log_sha256 == second.order_log_sha256
    for key in ("strategy", "buy_and_hold", "always_hold", "seconds", "decisions"):
        assert first.summary[key] == second.summary[key]
    assert first.series == second.series
    s = first.summary
    assert 70 <= s["seconds"] <= 80 and s["decisions"] >= s["seconds"]
    assert s["strategy"]["trades"] > 0 and 0 < s["strategy"]["exposure"] <= 1
    assert s["strategy"]["fees"] > 0 and s["strategy"]["pnl"] == pytest.approx(
        first.series["equity"][-1] - first.series["equity"][0], abs=1e-6)
    assert s["always_hold"]["pnl"] == 0 and s["buy_and_hold"]["exposure"] == 1.0


def test_the_command_prints_the_report_and_the_hash_and_writes_the_csv(window, tmp_path):
    _, end = window
    out, path = io.StringIO(), tmp_path / "bt.csv"
    call_command("backtest", "--end", end.isoformat(), "--csv", str(path), stdout=out, stderr=io.StringIO())
    run = BacktestRun.objects.get()
    assert out.getvalue().strip().endswith(f"order_log_sha256: {run.order_log_sha256}")
    assert '"strategy"' in out.getvalue() and '"buy_and_hold"' in out.getvalue()
    rows = list(csv.reader(path.open()))
    assert rows[0][:3] == ["ts_ms", "mid", "equity"] and len(rows) == run.summary["seconds"] + 1


def test_the_page_shows_the_report_and_the_csv_downloads(window, client):
    _, end = window
    run = backtest_run(end=end)
    viewer = get_user_model().objects.create_user(username="viewer", password="pw-12345678")
    client.force_login(viewer)

    listing = client.get("/backtests/")
    assert listing.status_code == 200 and f"/backtests/{run.pk}/" in listing.content.decode()
    page = client.get(f"/backtests/{run.pk}/")
    body = page.content.decode()
    assert page.status_code == 200 and run.order_log_sha256 in body and "Download CSV" in body
    assert "vendor/plotly/plotly.min.js" in body and 'id="chart-equity"' in body and "buy-and-hold" in body
    download = client.get(f"/backtests/{run.pk}/csv")
    assert download.status_code == 200 and download["Content-Type"] == "text/csv"
    lines = download.content.decode().strip().split("\n")
    assert lines[0] == "ts_ms,mid,equity,position,drawdown,buy_and_hold_equity"
    assert len(lines) == run.summary["seconds"] + 1
    assert client.get(f"/backtests/{run.pk}/progress").json()["status"] == "finished"


def test_the_candle_only_source_applies_the_completeness_gate_honestly(pipeline_ready):
    """No order book and no 1 s data: COB and 1 s components are empty, so every second is gated."""
    run = backtest_run(source="candles", start=datetime(2024, 8, 8, 23, 0, tzinfo=UTC),
                       end=datetime(2024, 8, 8, 23, 3, tzinfo=UTC))
    s = run.summary
    # The account opens at the first second and is sampled from the next one on.
    assert run.status == BacktestRun.Status.FINISHED and s["seconds"] == 179
    assert s["skipped_seconds"] == 180 and s["decisions"] == 0 and s["orders"] == 0
    assert s["engine"]["ETHUSDT"]["mean_completeness"] <= 0.5 and s["engine"]["ETHUSDT"]["cob_frames"] == 0
    assert s["strategy"]["pnl"] == 0 and s["strategy"]["trades"] == 0
    assert s["buy_and_hold"]["pnl"] != 0  # marked at the released 1m closes
    assert 2 <= len(set(run.series["mid"])) <= 4  # the mark moves only with each released 1m close
