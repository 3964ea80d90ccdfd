"""Training sequences from the recorded USD-M session equal the live ring windows; a tiny run."""
from __future__ import annotations

import numpy as np
import pytest

from ml.models.transformer import TransformerConfig
from ml.training.sequence_data import default_session_files, session_sequences
from ml.training.transformer_train import make_sequence_samples, train_transformer


@pytest.fixture(scope="module")
def sequences():
    return session_sequences(default_session_files(), seq_len=60)


def test_the_session_gives_one_contiguous_window_per_second(sequences) -> None:
    s = len(sequences.ts)
    assert 470 <= s <= 490  # ~8 minutes of recording
    assert (np.diff(sequences.ts) == 1000).all()
    assert sequences.windows["cob"].shape == (s, 60, 87) and sequences.windows["primary_1s"].shape == (s, 60, 5)
    # each window's newest row is that second's own candle, and slides by one row per second
    np.testing.assert_array_equal(sequences.windows["primary_1s"][100, :-1], sequences.windows["primary_1s"][99, 1:])
    assert sequences.present["cob"][-1].all()


def test_samples_have_labels_from_the_future_close_only(sequences) -> None:
    config = TransformerConfig()
    data = make_sequence_samples(sequences, config)
    i = int(np.searchsorted(sequences.ts, data.times[0]))
    expected = (sequences.close[i + 60] / sequences.close[i] - 1) * 1e4
    assert data.returns[0, 0] == pytest.approx(expected, rel=1e-5)
    assert data.tokens.shape[1:] == (60, 97) and len(data.labels) == len(data.times)


def test_a_tiny_training_run_is_seeded_and_reports_metrics(sequences) -> None:
    small = TransformerConfig(d_model=16, n_layers=1)
    runs = [train_transformer(sequences, small, epochs=2, seed=5) for _ in range(2)]
    m = runs[0].metrics
    assert m["n_train"] + m["n_val"] + 60 == m["n_samples"]
    assert 0.0 <= m["val_macro_f1"] <= 1.0 and np.isfinite(m["val_return_mae_bps"])
    assert m["val_loss"] == runs[1].metrics["val_loss"]
