"""Reproducible training runs: seeded, deterministic kernels, a chosen thread count, all restored after."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_training(*, seed: int, num_threads: int, deterministic: bool = True) -> Iterator[None]:
    """Seed torch, set ``num_threads`` intra-op threads and (optionally) deterministic algorithms for
    the block; the previous thread count and determinism setting come back afterwards, even on error."""
    prev_threads, prev_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(num_threads)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        torch.manual_seed(seed)
        yield
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)
