"""Torch on one intra-op thread, for small models on a few shared cores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread for the duration. A small model's forward (the GE2E
    LSTM on a few 1.6 s partials, DistillMOS on a 5 s sentence) is too small to split: extra
    threads spin and wait at barriers. Measured on 2 shared cores under load: GE2E 0.07
    CPU-s per 4.5 s utterance on one thread against 0.3-1.7 on two (wall 0.18 vs 0.5 s);
    DistillMOS 0.33-0.34 s wall per 4.5 s sentence against 1.06-1.56 s, the same score.
    The count is the calling thread's own (OpenMP's), so callers on other threads are
    neither slowed nor changed."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
