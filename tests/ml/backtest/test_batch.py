"""Batch inference of the backtest's fast path against the per-input predict of each model."""
import numpy as np
import pytest
import torch

from ml.backtest.batch import FrozenBook, predict_many
from ml.features.base_input import COMPONENT_SHAPES, BaseDataInput, IncompleteInputError
from ml.market.orderbook import OrderBook
from ml.models.cnn import CnnConfig, MultiTimeframeCNN
from ml.models.dqn import DqnConfig, QNetwork
from ml.models.specs import spec_for
from ml.models.transformer import FrameTransformer, TransformerConfig

T0 = 1_723_161_600_000


def inputs(n: int, seed: int = 0) -> list[BaseDataInput]:
    """``n`` consecutive seconds; the 1m/1h/1d windows change every 4th second (a new "minute")."""
    rng = np.random.default_rng(seed)
    out, slow = [], {}
    for k in range(n):
        comps = {}
        for name, shape in COMPONENT_SHAPES.items():
            if name in ("primary_1m", "primary_1h", "primary_1d"):
                if k % 4 == 0 or name not in slow:
                    slow[name] = (100 * np.exp(np.cumsum(rng.normal(0, 1e-3, shape), axis=0))).astype(np.float32)
                comps[name] = slow[name].copy()
            else:
                comps[name] = np.abs(100 + rng.normal(0, 1, shape)).astype(np.float32)
        present = {name: np.ones(300, dtype=bool) for name in comps}
        out.append(BaseDataInput("ETHUSDT", "BTCUSDT", T0 + 1000 * k, comps, present))
    return out


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {"cnn": MultiTimeframeCNN(CnnConfig()).eval(), "dqn": QNetwork(DqnConfig()).eval(),
            "transformer": FrameTransformer(TransformerConfig()).eval()}


@pytest.mark.parametrize("name", ["cnn", "dqn"])
def test_candle_models_give_the_per_input_outputs_bit_for_bit(models, name):
    xs = inputs(10)
    batch = predict_many(name, models[name], xs)
    for x, out in zip(xs, batch, strict=True):
        one = spec_for(name).predict(models[name], x)
        assert out.probs == one.probs and out.action == one.action and np.array_equal(out.hidden, one.hidden)
        assert out.metadata["ts"] == x.ts and out.predicted_returns == one.predicted_returns


def test_the_transformer_agrees_to_1e6_and_a_second_never_depends_on_its_batch(models):
    xs = inputs(12)
    xs[5].present["cob"][-30:] = False  # too incomplete for the transformer: the same error as predict
    batch = predict_many("transformer", models["transformer"], xs)
    assert isinstance(batch[5], IncompleteInputError)
    for x, out in zip(xs, batch, strict=True):
        if x is xs[5]:
            continue
        one = spec_for("transformer").predict(models["transformer"], x)
        assert out.action == one.action
        assert np.allclose([out.probs[a] for a in one.probs], list(one.probs.values()), atol=1e-6, rtol=0)
    # A truncated run batches fewer seconds: the earlier ones must come out exactly the same.
    shorter = predict_many("transformer", models["transformer"], xs[:7])
    for full, cut in zip(batch[:7], shorter, strict=True):
        if not isinstance(full, Exception):
            assert full.probs == cut.probs


def test_cob_windows_that_are_views_of_one_timeline_give_the_outputs_of_copies(models):
    """The fast path's COB windows are views of one timeline, normalized once per frame
    (``_NormalizedCob``): the same outputs, bit for bit, as windows handed over as copies."""
    xs = inputs(40, seed=3)
    rng = np.random.default_rng(4)
    timeline = np.abs(rng.normal(0, 5e4, (300 + len(xs), COMPONENT_SHAPES["cob"][1]))).astype(np.float32)
    timeline[::7] = 0.0  # empty frames: normalized to zeros
    timeline[:, -5:] = rng.uniform(-1.5, 1.5, (len(timeline), 5))  # imbalances, clipped
    for k, x in enumerate(xs):
        x.components["cob"] = timeline[k + 1:k + 301]  # a view: window of the second k
    copies = [BaseDataInput(x.symbol, x.reference_symbol, x.ts,
                            {**x.components, "cob": x.components["cob"].copy()}, x.present) for x in xs]
    assert xs[3].components["cob"].base is timeline and copies[3].components["cob"].base is None
    views, copied = predict_many("transformer", models["transformer"], xs), \
        predict_many("transformer", models["transformer"], copies)
    for a, b in zip(views, copied, strict=True):
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
