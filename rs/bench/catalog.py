"""`rs bench catalog`: build a catalog of N synthetic run records, then time the grouped-best query."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

GROUPED_BEST = ("SELECT backbone, noise_schedule, min(best_val_rel_l2) AS best, count(*) AS runs "
                "FROM runs GROUP BY backbone, noise_schedule ORDER BY best")


def synthetic_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    fams, bbs = ["surrogate", "diffusion"], ["unet", "fno", "sinenet"]
    scheds, samplers = ["linear", "cosine", "sigmoid"], ["uniform", "logsnr"]
    sel = ["none", "interface_band", "quadtree"]
    out = []
    for i in range(n):
        best = float(rng.lognormal(-2.5, 0.5))
        cfg = {"train.lr": float(10 ** rng.uniform(-5, -2)), "train.epochs": int(rng.integers(2, 50))}
        out.append({
            "run_key": f"synthetic-{seed}-{i:07d}", "run_dir": f"/synthetic/run_{i:07d}", "run_name": f"run_{i:07d}",
            "model_family": fams[i % 2], "backbone": bbs[int(rng.integers(3))],
            "noise_schedule": scheds[int(rng.integers(3))], "timestep_sampler": samplers[int(rng.integers(2))],
            "wavelet_weight": float(rng.choice([0.0, 0.1])), "region_selector": sel[int(rng.integers(3))],
            "adaptive_resolution": bool(rng.integers(2)), "config": json.dumps(cfg), "epochs": cfg["train.epochs"],
            "val_rel_l2": best * 1.1, "best_val_rel_l2": best, "train_loss": best / 2, "val_loss": best / 3,
            "eval": "{}", "checkpoints": [f"/synthetic/run_{i:07d}/checkpoint_0"], "plots": [],
            "recorded_at": time.time(),
        })
    return out


def run(n: int = 10_000, work: Path = Path("/tmp/rs-bench-catalog")) -> dict[str, Any]:
    from rs.bench.common import machine
    from rs.io.catalog import query, write_records

    shutil.rmtree(work, ignore_errors=True)
    records = synthetic_records(n)
    t0 = time.perf_counter()
    added = write_records(records, work)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = write_records(records, work)  # idempotent: nothing added twice
    rebuild_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = query(work, GROUPED_BEST)
    query_s = time.perf_counter() - t0
    return {"machine": machine(), "runs": n, "added": added, "added_again": again, "build_s": build_s,
            "rebuild_s": rebuild_s, "query_s": query_s, "groups": table.num_rows, "query": GROUPED_BEST,
            "best": table.to_pylist()[0]}


def table(r: dict[str, Any]) -> str:
    return "\n".join([
        f"catalog bench: {r['runs']} synthetic runs; {r['machine']}",
        f"build (write partitioned Parquet)   {r['build_s']:.2f} s ({r['added']} rows)",
        f"rebuild (idempotent, adds nothing)  {r['rebuild_s']:.2f} s ({r['added_again']} rows)",
        f"grouped-best query (DuckDB)         {r['query_s']:.3f} s ({r['groups']} groups)",
        f"  {r['query']}",
    ])
