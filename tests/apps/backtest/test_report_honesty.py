"""The replay report is honest about short windows: no annualised ratio from minutes of 1 s
returns, drawdown in % and bps, prices to the tick and sizes to the lot on the page."""
import math
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from apps.backtest.models import BacktestRun
from apps.market.models import Instrument
from apps.trading.models import Order, TradingAccount
from ml.backtest.report import backtest_report

SESSION_START_MS = 1_723_161_600_000  # 2024-08-09 00:00 UTC


def _walk(seconds: int, seed: int = 7) -> tuple[list[int], list[float], list[float]]:
    rng = np.random.default_rng(seed)
    mid = 2_700 * np.exp(np.cumsum(rng.normal(0, 2e-5, seconds)))
    equity = 10_000 + np.cumsum(rng.normal(0.01, 0.5, seconds))
    return [SESSION_START_MS + 1000 * i for i in range(seconds)], mid.tolist(), equity.tolist()


def test_an_eleven_minute_window_reports_no_annualised_ratio():
    ts, mid, equity = _walk(660)
    report = backtest_report(ts=ts, mid=mid, equity=equity, position=[0.0] * 660, fills=[], fee_rate=0.001)
    for column in ("strategy", "buy_and_hold"):
        for kind in ("sharpe", "sortino", "calmar"):
            ratio = report[column][kind]
            assert ratio["annualised"] is False and "30 days" in ratio["reason"], (column, kind, ratio)
    r = np.diff(equity) / np.asarray(equity[:-1])
    assert report["strategy"]["sharpe"]["value"] == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-6)  # per second
    assert report["span_seconds"] == 659.0
    dd = report["strategy"]["max_drawdown"]
    assert report["strategy"]["max_drawdown_bps"] == pytest.approx(dd * 10_000, abs=1e-4)


def test_a_window_of_31_days_is_annualised_with_the_seconds_in_a_year():
    seconds = 31 * 86_400
    ts, mid, equity = _walk(seconds)
    report = backtest_report(ts=ts, mid=mid, equity=equity, position=[0.0] * seconds, fills=[], fee_rate=0.0)
    sharpe = report["strategy"]["sharpe"]
    r = np.diff(equity) / np.asarray(equity[:-1])
    assert sharpe["annualised"] is True
    assert sharpe["value"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(31_536_000), rel=1e-6)


@pytest.mark.django_db
def test_the_page_of_an_eleven_minute_run_shows_per_second_ratios_drawdown_in_percent_and_bps_and_ticks(client):
    ts, mid, equity = _walk(660)
    position = [0.0] * 660
    summary = backtest_report(ts=ts, mid=mid, equity=equity, position=position, fills=[], fee_rate=0.001)
    owner = get_user_model().objects.create_user(username="gogo-backtest-test", is_active=False)
    account = TradingAccount.objects.create(owner=owner, name="backtest-x", auto_trade=False)
    run = BacktestRun.objects.create(source="orderbook", status="finished", progress=1.0, account=account,
                                     summary=summary, series={"ts": ts, "mid": mid, "equity": equity, "position": position})
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    Order.objects.create(account=account, instrument=eth, client_order_id="bt-1", side="BUY", quantity=Decimal("0.37"),
                         filled_quantity=Decimal("0.37"), average_price=Decimal("2701.35"), status="FILLED",
                         ts_event=datetime(2024, 8, 9, 0, 1, tzinfo=UTC))
    client.force_login(get_user_model().objects.create_user(username="viewer", password="pw-12345678"))
    body = client.get(f"/backtests/{run.pk}/").content.decode()

    assert "(annualised)" not in body and "per period" in body and "window 0.01 days &lt; 30 days" in body
    dd = summary["strategy"]["max_drawdown"]
    assert f"{dd * 100:,.2f} % ({dd * 10_000:,.1f} bps)" in body
    assert "2,701.35" in body and "0.3700" in body and "2701.35000000" not in body
    assert "Legend of the decision markers" in body and "BUY filled" in body and "SELL filled" in body
    assert f"{summary['starting_equity']:,.2f}" in body  # thousands separators
