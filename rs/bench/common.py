"""Shared helpers of the benchmarks: machine description, timing, and the data each bench needs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


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


REPO = Path(__file__).resolve().parents[2]
SPLITS = ("train", "val", "test")
RESULT = "[rs-bench-result] "  # marks a bench side's result line among Ray's worker logs


def print_result(result: dict) -> None:
    """A bench side's result, as one marked JSON line on stdout (flushed before Ray's late worker logs)."""
    print(RESULT + json.dumps(result), flush=True)


def read_result(stdout: str) -> dict:
    """The marked result line of a bench side's stdout: worker log lines Ray forwards may come after it."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    raise RuntimeError(f"no result line in the bench side's output: {stdout[-1500:]}")


def default_config(rel: str) -> Path:
    """A bench's default config: from the current directory when it has one, else from this checkout, so a
    bench runs from any directory of a fresh clone."""
    return Path(rel).resolve() if Path(rel).is_file() else REPO / rel


def ensure_data(data_config: Path, root: Path, overrides: list[str]) -> float:
    """Generate the dataset a bench needs from `data_config`'s `data.generate` (with the `data.*` overrides)
    unless every split is already under `root` (generated earlier, or the user's own files); seconds spent."""
    from rs.data import layouts
    from rs.data.meta import DataError

    try:
        for split in SPLITS:
            layouts.split_paths(root, split)
        return 0.0
    except DataError:
        pass
    t0 = time.perf_counter()
    sets = [a for o in overrides if o.startswith("data.") for a in ("--set", o)]
    proc = subprocess.run([sys.executable, "-m", "rs", "data", "generate", "--config", str(data_config), "--out",
                           str(root), *sets], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"generating {root} from {data_config} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0
