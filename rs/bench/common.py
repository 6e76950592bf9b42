"""Shared helpers of the benchmarks: machine description and timing."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable


def machine() -> str:
    import torch

    return (f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), python {platform.python_version()}")


def timed(fn: Callable[[], None], repeat: int = 1) -> float:
    """Best wall time of `repeat` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
