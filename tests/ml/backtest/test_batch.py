"""Batch inference of the backtest's fast path against the per-input predict of each model, in
the cascade (each model reads the same-second outputs of the ones before)."""
import dataclasses

import numpy as np
import pytest

from ml.backtest.batch import BATCH, FrozenBook, predict_many
from ml.features.base_input import COMPONENT_SHAPES, BaseDataInput, IncompleteInputError
from ml.market.orderbook import OrderBook
from ml.models import live
from ml.models.specs import spec_for

T0 = 1_723_161_600_000


def inputs(n: int, seed: int = 0) -> list[BaseDataInput]:
    """``n`` consecutive seconds of random-walk candles and random books, every row present."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        comps = {}
        for name, shape in COMPONENT_SHAPES.items():
            if name == "cob":
                comps[name] = np.abs(rng.normal(0, 5e4, shape)).astype(np.float32)
                comps[name][:, -5:] = rng.uniform(-1, 1, (shape[0], 5))
            else:
                walk = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, (shape[0], 1)), axis=0))
                rows = np.concatenate([walk, walk * 1.001, walk * 0.999, walk, rng.uniform(1, 5, (shape[0], 1))], 1)
                comps[name] = rows.astype(np.float32)
        present = {name: np.ones(300, dtype=bool) for name in comps}
        out.append(BaseDataInput("ETHUSDT", "BTCUSDT", T0 + 1000 * k, comps, present))
    return out


@pytest.fixture(scope="module")
def models():
    return {name: live.untrained(name, seed=i) for i, name in enumerate(live.CASCADE)}


def _per_second(models, xs):
    """The inference loop: every model on each second in cascade order, outputs recorded."""
    out = {name: [] for name in models}
    for x in xs:
        x = dataclasses.replace(x, last_outputs={}, indicators={}, pivots={})
        for name in live.CASCADE:
            try:
                o = spec_for(name).predict(models[name], x)
            except IncompleteInputError as exc:
                out[name].append(exc)
                continue
            live.record_output(x, o)
            out[name].append(o)
    return out


def test_the_cascade_in_batches_agrees_with_the_per_second_path_to_1e6(models):
    xs = inputs(BATCH + 5)
    for name in ("primary_1s", "reference_1s", "primary_1m", "primary_1h", "primary_1d", "cob"):
        xs[5].present[name][:] = False  # no group present: the same error as predict
    one = _per_second(models, xs)
    batch = {name: predict_many(name, models[name], xs) for name in live.CASCADE}  # cascade order
    for name in live.CASCADE:
        assert isinstance(batch[name][5], IncompleteInputError)
        for k, (a, b) in enumerate(zip(batch[name], one[name], strict=True)):
            if k == 5:
                continue
            assert a.action == b.action and a.metadata["upstream"] == b.metadata["upstream"]
            assert a.metadata["upstream"] == list(live.CASCADE[:live.CASCADE.index(name)])
            np.testing.assert_allclose([a.probs[x] for x in b.probs], list(b.probs.values()), atol=1e-6, rtol=0)
            assert a.metadata["edge_bps"] == pytest.approx(b.metadata["edge_bps"], abs=1e-3)
            assert a.metadata["ts"] == xs[k].ts


def test_a_second_never_depends_on_its_batch(models):
    xs = inputs(BATCH + 3, seed=2)
    full = predict_many("cnn", models["cnn"], xs)
    cut = predict_many("cnn", models["cnn"], [dataclasses.replace(x, last_outputs={}) for x in xs[:7]])
    for a, b in zip(full[:7], cut, strict=True):
        assert a.probs == b.probs and np.array_equal(a.hidden, b.hidden)


def test_a_frozen_book_answers_what_the_book_answered():
    book = OrderBook()
    book.apply_levels([(100.0, 1.0), (99.5, 2.0), (99.0, 3.0)], [(100.5, 1.5), (101.0, 2.5)])
    frozen = FrozenBook(book, depth=2)
    book.apply_levels([(100.0, 0.0)], [])  # the live book moves on
    assert frozen.levels("bid", 2) == [(100.0, 1.0), (99.5, 2.0)] and frozen.levels("ask", 1) == [(100.5, 1.5)]
    assert (frozen.mid(), frozen.best_bid(), frozen.best_ask(), frozen.spread()) == (100.25, 100.0, 100.5, 0.5)
    with pytest.raises(ValueError, match="keeps 2 levels"):
        frozen.levels("bid", 3)
