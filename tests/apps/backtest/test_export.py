"""Exports of every table of a run as streamed CSV and Parquet, read back with pandas."""
import csv
import io

import pandas as pd
import pytest
from django.contrib.auth import get_user_model

from apps.backtest import export, reports_tables
from apps.backtest.models import BacktestRun
from tests.apps.backtest.wf_factory import legacy_walk_forward, walk_forward_result

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    client.force_login(get_user_model().objects.create_user(username="viewer", password="pw-12345678"))
    return client


def _body(response) -> bytes:
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("table", reports_tables.TABLES)
def test_every_walk_forward_table_round_trips_through_parquet_and_csv(signed_in, table):
    wf = walk_forward_result(error_model="transformer")
    run = BacktestRun.objects.create(source="walk_forward", status="finished", summary={"walk_forward": wf})
    expected = list(reports_tables.rows(wf, table))
    assert expected, f"the fixture has {table} rows"

    response = signed_in.get(f"/backtests/{run.pk}/export", {"table": table, "format": "parquet"})
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert f'backtest-{run.pk}-{table}.parquet' in response["Content-Disposition"]
    frame = pd.read_parquet(io.BytesIO(_body(response)))
    assert list(frame.columns) == list(reports_tables.COLUMNS[table]) and len(frame) == len(expected)
    back = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for got, want in zip(back, expected, strict=True):
        assert got == pytest.approx(want) if table == "equity" else got == {k: _typed(k, v) for k, v in want.items()}

    text = _body(signed_in.get(f"/backtests/{run.pk}/export", {"table": table, "format": "csv"})).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(expected) and rows[0]["fold"] == expected[0]["fold"]


def _typed(column: str, value):
    """What a value reads back as from its Parquet column (ints and bools stay, numbers become floats)."""
    if value is None or column in export.STRINGS or column in export.INTEGERS or column in export.BOOLEANS:
        return value
    return float(value)


def test_a_failed_model_is_a_metrics_row_with_its_error(signed_in):
    run = BacktestRun.objects.create(source="walk_forward", status="finished",
                                     summary={"walk_forward": walk_forward_result(error_model="dqn", error_fold=1)})
    frame = pd.read_parquet(io.BytesIO(_body(signed_in.get(f"/backtests/{run.pk}/export",
                                                           {"table": "metrics", "format": "parquet"}))))
    failed = frame[(frame.fold == "1") & (frame.agent == "dqn")].iloc[0]
    assert failed.error == "training diverged (loss nan)" and pd.isna(failed.net_pnl_bps)
    assert set(frame.kind) == {"model", "orchestrator", "baseline"}


def test_a_long_table_is_written_in_several_row_groups(signed_in, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_ROWS", 7)
    wf = walk_forward_result()
    run = BacktestRun.objects.create(source="walk_forward", status="finished", summary={"walk_forward": wf})
    response = signed_in.get(f"/backtests/{run.pk}/export", {"table": "equity", "format": "parquet"})
    pieces = list(response.streaming_content)
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(io.BytesIO(b"".join(pieces)))
    n = len(list(reports_tables.rows(wf, "equity")))
    assert parquet.metadata.num_rows == n and parquet.num_row_groups == -(-n // 7) and len(pieces) > 2


def test_an_older_walk_forward_exports_its_folds_and_a_replay_run_its_series(signed_in):
    old = BacktestRun.objects.create(source="walk_forward", status="finished", summary={"walk_forward": legacy_walk_forward()})
    frame = pd.read_parquet(io.BytesIO(_body(signed_in.get(f"/backtests/{old.pk}/export", {"format": "parquet"}))))
    assert list(frame.pnl_bps) == [-4.0, -4.0] and list(frame.fold) == ["1", "2"]

    series = {"ts": [0, 1000, 2000], "mid": [100.0, 101.0, 99.0], "equity": [1000.0, 1010.0, 990.0],
              "position": [0.0, 1.0, 0.0]}
    replay = BacktestRun.objects.create(source="orderbook", status="finished", series=series)
    frame = pd.read_parquet(io.BytesIO(_body(signed_in.get(f"/backtests/{replay.pk}/export",
                                                           {"table": "equity", "format": "parquet"}))))
    assert list(frame.ts_ms) == [0, 1000, 2000] and frame.drawdown.tolist() == pytest.approx([0, 0, 20 / 1010])
    assert _body(signed_in.get(f"/backtests/{replay.pk}/export", {"table": "trades"})).decode().startswith("ts_ms,side")


def test_bad_tables_and_formats_are_refused_by_name(signed_in):
    run = BacktestRun.objects.create(source="walk_forward", status="finished",
                                     summary={"walk_forward": walk_forward_result()})
    assert signed_in.get(f"/backtests/{run.pk}/export", {"format": "xlsx"}).status_code == 400
    response = signed_in.get(f"/backtests/{run.pk}/export", {"table": "orders"})
    assert response.status_code == 400 and b"table: one of folds, metrics, trades, equity" in response.content
