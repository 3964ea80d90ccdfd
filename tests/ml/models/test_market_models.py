"""The served market families (ml.models.live): every input group reaches the output, live groups
equal the training samples' groups, calibrated outputs with edges, the same-second cascade, and
the checkpoint round trip with the calibration."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ml.data.history import frame_to_candles, load_history
from ml.evaluation.calibration import dqn_logits
from ml.features.base_input import COMPONENT_SHAPES, BaseDataInput, build_base_data_input
from ml.features.groups import INPUT_GROUPS, history_samples, input_groups
from ml.features.rings import CandleRing
from ml.market.recording import default_data_dir
from ml.models import live
from ml.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ml.models.output import ACTIONS
from ml.training.market_data import concat_samples, default_session_files, samples_of_inputs, session_inputs
from ml.training.market_train import predict_raw

MINUTE = 60_000
T_MINUTE = 1_722_470_400_000  # 2024-08-01 00:00 UTC: a 1m candle inside the ETH and BTC 1m history
SMALL = {"embed": 8, "hidden": 16}


@pytest.fixture(scope="module")
def history():
    eth, _ = load_history(default_data_dir(), "ETHUSDT")
    btc, _ = load_history(default_data_dir(), "BTCUSDT", timeframes=("1m",))
    return eth, btc


@pytest.fixture(scope="module")
def session():
    """The USD-M ETHUSDT/BTCUSDT session of 2024-07-18/19 replayed: its inputs and samples."""
    primary, reference, files = default_session_files(default_data_dir())[0]
    inputs, close = session_inputs(files, primary=primary, reference=reference)
    return inputs, samples_of_inputs(inputs, close)


@pytest.fixture(scope="module")
def samples(history, session):
    """Candle samples of two days (1m/1h/1d/BTC 1m present) and the session's (1 s/COB present)."""
    eth, btc = history
    candles = history_samples(eth, btc, start_ms=T_MINUTE - 2 * 86_400_000, end_ms=T_MINUTE, stride_min=15)
    return concat_samples([candles, session[1]])


def _with_extra(model, samples, seed: int = 1):
    rng = np.random.default_rng(seed)
    extra = {name: rng.normal(0, 1, (len(samples), width)).astype(np.float32) for name, width in model.config.extra}
    return samples.with_extra(**extra) if extra else samples


@pytest.mark.parametrize("family", live.CASCADE)
def test_permuting_any_input_group_changes_the_output(family, samples) -> None:
    model = live.untrained(family, **SMALL)
    data = _with_extra(model, samples)
    key = "q" if family == "dqn" else "logits"
    base = predict_raw(model, data)[key]
    rng = np.random.default_rng(0)
    dead = []
    for g in model.names:
        if g in INPUT_GROUPS and not data.mask[g].any():
            continue
        changed = predict_raw(model, data, permute={g: rng.permutation(len(data))})[key]
        if np.abs(changed - base).max() < 1e-6:
            dead.append(g)
    present = [g for g in INPUT_GROUPS if data.mask[g].any()]
    assert len(present) >= 14  # every group but ind/piv 1s of too-short windows is in the test data
    assert dead == []


def test_the_samples_cover_every_modality_with_explicit_masks(samples) -> None:
    cov = samples.coverage()
    for g in ("eth_1s", "btc_1s", "cob_levels", "cob_imbalance", "eth_1m", "eth_1h", "eth_1d", "btc_1m",
              "ind_1m", "piv_1h"):
        assert 0.0 < cov[g] < 1.0, g  # present in one source, masked in the other
    session_rows = np.isnan(samples.returns[60])
    assert not samples.mask["cob_levels"][~session_rows].any()  # candle history has no book
    assert not samples.mask["eth_1m"][session_rows].any()


def _rings_at(frames: dict, ts: int, tf_list=("1m", "1h", "1d"), symbol="ETHUSDT") -> dict[str, CandleRing]:
    rings = {}
    for tf in tf_list:
        df = frames[tf]
        ring = CandleRing(tf, capacity=600)
        ring.extend(frame_to_candles(df[df["open_time"] <= ts].iloc[-600:], symbol=symbol, timeframe=tf))
        rings[tf] = ring
    return rings


def test_live_groups_equal_the_history_samples_at_the_same_instant(history) -> None:
    eth, btc = history
    ts = T_MINUTE + 59_000  # the second at whose end the 1m candle T_MINUTE closes
    x = build_base_data_input(ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT", rings=_rings_at(eth, ts),
                              reference_ring=None, frame_ring=None,
                              reference_1m_ring=_rings_at(btc, ts, ("1m",), "BTCUSDT")["1m"])
    values, mask = input_groups(x)
    s = history_samples(eth, btc, start_ms=T_MINUTE, end_ms=T_MINUTE + MINUTE)
    assert s.times.tolist() == [ts]
    compared = 0
    for g in INPUT_GROUPS:
        assert mask[g] == bool(s.mask[g][0]), g
        if mask[g]:
            np.testing.assert_allclose(values[g], s.values[g][s.index[g][0]], atol=2e-5, err_msg=g)
            compared += 1
    assert compared == 10  # eth 1m/1h/1d, btc 1m, indicators and pivots of 1m/1h/1d


def _served_cascade():
    return {name: live.untrained(name, **SMALL, cnn_hidden=SMALL["hidden"]) for name in live.CASCADE}


def test_predict_gives_calibrated_probabilities_and_edges(session) -> None:
    x = session[0][-1]
    model = live.untrained("cnn", **SMALL)
    cal = model.serving.calibration
    cal.temperature, cal.prior_weight = 2.0, 0.25
    out = live.predict(model, dataclasses.replace(x, last_outputs={}))
    values, mask = live.model_groups(model, x)
    raw = live.forward_groups(model, {n: v[None] for n, v in values.items()}, {n: np.array([m]) for n, m in mask.items()})
    probs = cal.probs(raw["logits"][:, model.config.trade_index])[0]
    np.testing.assert_allclose([out.probs[a] for a in ACTIONS], probs, atol=1e-9)
    assert min(out.probs.values()) > 0.25 / 3 - 1e-9  # the prior weight shows
    edge = cal.edge_bps(probs[None])[0]
    assert out.metadata["edge_bps"] == pytest.approx({"BUY": edge[0], "SELL": edge[1]})
    assert out.predicted_returns == pytest.approx({"60m": (edge[0] - edge[1]) / 2 / 1e4})
    assert out.metadata["horizon_min"] == 60 and out.metadata["cost_bps"] == model.config.cost_bps
    assert {"eth_1s", "btc_1s", "cob_levels", "cob_imbalance"} <= set(out.metadata["groups_present"])
    assert "eth_1h" not in out.metadata["groups_present"]  # the session has no hourly candles: masked
    assert out.hidden.shape == (SMALL["hidden"],)


def test_the_dqn_edge_is_its_scaled_q_values(session) -> None:
    models = _served_cascade()
    x = dataclasses.replace(session[0][-1], last_outputs={})
    for name in live.CASCADE:
        out = live.predict(models[name], x)
        live.record_output(x, out)
    q = np.array([out.metadata["q_values"][s] for s in ("BUY", "SELL")])
    cal = models["dqn"].serving.calibration
    cal_probs = cal.probs(dqn_logits(q[None]))[0]
    np.testing.assert_allclose([out.probs[a] for a in ACTIONS], cal_probs, atol=1e-9)
    assert out.metadata["edge_bps"] == pytest.approx({"BUY": q[0], "SELL": q[1]})


def test_later_models_read_this_seconds_outputs_of_the_earlier_ones(session) -> None:
    models = _served_cascade()
    assert live.cascade_order(["dqn", "transformer", "cnn"]) == list(live.CASCADE)
    x = dataclasses.replace(session[0][-1], last_outputs={})
    alone = live.predict(models["transformer"], x)
    assert alone.metadata["upstream"] == []  # no CNN output this second: masked, not zeros read as data
    cnn = live.predict(models["cnn"], x)
    live.record_output(x, cnn)
    fed = live.predict(models["transformer"], x)
    assert fed.metadata["upstream"] == ["cnn"]
    assert fed.probs != alone.probs
    stale = dataclasses.replace(x, last_outputs={"cnn": dataclasses.replace(
        cnn, metadata={**cnn.metadata, "ts": x.ts - 1000})})
    assert live.predict(models["transformer"], stale).probs == alone.probs  # last second's output is not read
    live.record_output(x, fed)
    dqn = live.predict(models["dqn"], x)
    values, mask = live.cascade_groups(models["dqn"], x)
    assert mask == {"upstream": True, "cnn_hidden": True}
    np.testing.assert_array_equal(values["cnn_hidden"], cnn.hidden)
    np.testing.assert_allclose(values["upstream"][:3], [cnn.probs[a] for a in ACTIONS], rtol=1e-6)
    assert dqn.metadata["upstream"] == ["cnn", "transformer"]


def test_a_checkpoint_round_trip_keeps_weights_and_calibration(tmp_path, session) -> None:
    model = live.untrained("transformer", **SMALL)
    model.serving.calibration.temperature = 3.5
    path = tmp_path / "transformer-x.pt"
    save_checkpoint(path, model, model.config, {"validation": {"net_pnl_bps": 1.0}}, (0, 1000))
    loaded, meta = load_checkpoint(path, model_name="transformer")
    assert loaded.serving.calibration == model.serving.calibration
    assert loaded.serving.upstream == ("cnn",)
    assert meta["serving"]["calibration"]["temperature"] == 3.5
    x = dataclasses.replace(session[0][-1], last_outputs={})
    assert live.predict(loaded, x).probs == pytest.approx(live.predict(model, x).probs, abs=1e-12)
    with pytest.raises(CheckpointError, match="holds a 'transformer' model, expected 'cnn'"):
        load_checkpoint(path, model_name="cnn")


def test_an_old_format_checkpoint_is_refused_with_a_clear_error(tmp_path) -> None:
    path = tmp_path / "cnn-old.pt"
    torch.save({"format_version": 1, "model_class": "MultiTimeframeCNN", "config": {}, "state_dict": {},
                "metrics": {}, "data_range": {"start_ms": 0, "end_ms": 1}}, path)
    with pytest.raises(CheckpointError, match="format 1 .*retrain"):
        load_checkpoint(path, model_name="cnn")


def test_a_model_without_calibration_cannot_be_saved(tmp_path) -> None:
    from ml.models.market import MarketConfig, MarketModel

    model = MarketModel(MarketConfig())
    with pytest.raises(ValueError, match="no calibration"):
        save_checkpoint(tmp_path / "cnn.pt", model, model.config, {}, (0, 1))


def _synthetic_input() -> BaseDataInput:
    """A deterministic input: smooth candles and books, every row present."""
    t = np.arange(300, dtype=np.float64)[:, None]
    close = 100 + np.sin(t / 17.0)
    candles = np.concatenate([close, close + 0.1, close - 0.1, close, 1 + (t % 7)], axis=1).astype(np.float32)
    cob = np.tile(np.linspace(1e3, 5e4, 87, dtype=np.float32), (300, 1))
    cob[:, -5:] = np.sin(t / 9.0).astype(np.float32)
    components = {**{n: candles.copy() for n in COMPONENT_SHAPES if n != "cob"}, "cob": cob}
    return BaseDataInput("ETHUSDT", "BTCUSDT", T_MINUTE, components, {n: np.ones(300, bool) for n in components})


def test_a_seeded_untrained_cnn_gives_pinned_probabilities() -> None:
    out = live.predict(live.untrained("cnn", seed=0), _synthetic_input())
    assert out.metadata["groups_present"] == [g for g in INPUT_GROUPS if g != "btc_1m"]  # optional, not given
    np.testing.assert_allclose([out.probs[a] for a in ACTIONS], [0.373919, 0.310725, 0.315356], atol=1e-4)
