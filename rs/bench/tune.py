"""`rs bench tune`: OptunaSearch (TPE) + ASHA vs random search run to completion, on the same space, data
and trial budget: how many trial-epochs each needs to reach the best val_rel_l2 random search finds.

Every trial reports once per epoch; replaying all reports of a sweep in the order they happened (Tune's
per-trial result.json) gives the trial-epochs spent by the time a target was first met."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

METRIC = "val_rel_l2"
REPO = Path(__file__).resolve().parents[2]


def reports(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every epoch report of every trial of a finished sweep, in the order they were made."""
    rows = []
    for result in sweep_dir.glob("*/result.json"):
        for line in result.read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if METRIC in r:
                rows.append({"trial": r.get("trial_id", result.parent.name), "t": float(r.get("timestamp", 0)),
                             "iteration": int(r.get("training_iteration", 0)), METRIC: float(r[METRIC])})
    rows.sort(key=lambda r: (r["t"], r["iteration"]))
    return rows


def epochs_to_reach(rows: list[dict[str, Any]], target: float) -> int | None:
    """Trial-epochs spent (all trials together) when some trial first reported ≤ target."""
    for spent, r in enumerate(rows, start=1):
        if r[METRIC] <= target * (1 + 1e-9):
            return spent
    return None


def _sweep(config: Path, overrides: list[str]) -> tuple[Path, float]:
    t0 = time.perf_counter()
    sets = [arg for o in overrides for arg in ("--set", o)]
    proc = subprocess.run([sys.executable, "-m", "rs", "tune", str(config), *sets], cwd=REPO, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"rs tune {config} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    sweep_dir = next(line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("sweep directory"))
    return Path(sweep_dir), time.perf_counter() - t0


def run(config: Path, overrides: list[str], samples: int, epochs: int, work: Path) -> dict[str, Any]:
    from rs.bench.common import ensure_data, machine
    from rs.config import load_config

    ensure_data(config, load_config(config, overrides).data.root, overrides)
    common = [*overrides, f"tune.num_samples={samples}", f"train.epochs={epochs}", f"train.storage_path={work}",
              "tune.optuna_storage=null"]
    out: dict[str, Any] = {"machine": machine(), "config": str(config), "samples": samples, "epochs": epochs}
    sides = {"random": ["tune.searcher=random", "tune.scheduler=fifo", "tune.name=bench-random"],
             "asha": ["tune.searcher=optuna", "tune.scheduler=asha", "tune.name=bench-optuna-asha"]}
    rows = {}
    for side, extra in sides.items():
        sweep_dir, wall = _sweep(config, [*common, *extra])
        rows[side] = reports(sweep_dir)
        out[f"{side}_wall_s"] = wall
        out[f"{side}_trial_epochs"] = len(rows[side])
        out[f"{side}_best"] = min(r[METRIC] for r in rows[side])
    target = out["random_best"]
    out["target"] = target
    out["random_epochs_to_target"] = epochs_to_reach(rows["random"], target)
    out["asha_epochs_to_target"] = epochs_to_reach(rows["asha"], target)
    a, r = out["asha_epochs_to_target"], out["random_epochs_to_target"]
    out["asha_over_random_epochs"] = a / r if a and r else None
    # Equal budget: random search's best after as many trial-epochs as ASHA spent in all.
    budget = out["asha_trial_epochs"]
    out["random_best_at_asha_budget"] = min((x[METRIC] for x in rows["random"][:budget]), default=None)
    return out


def table(r: dict[str, Any]) -> str:
    def cell(v: Any) -> str:
        return "not reached" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))

    lines = [f"machine: {r['machine']}", f"{r['config']}: {r['samples']} trials × up to {r['epochs']} epochs each",
             f"{'':28}{'random (no stopping)':>22}{'Optuna TPE + ASHA':>20}"]
    lines.append(f"{'best after ASHA budget':28}{cell(r['random_best_at_asha_budget']):>22}{cell(r['asha_best']):>20}")
    for label, key in [("best val_rel_l2", "best"), ("trial-epochs run", "trial_epochs"),
                       ("trial-epochs to target", "epochs_to_target"), ("wall time (s)", "wall_s")]:
        lines.append(f"{label:28}{cell(r[f'random_{key}']):>22}{cell(r[f'asha_{key}']):>20}")
    lines.append(f"target = random search's best ({r['target']:.4g}); ASHA/random trial-epochs to reach it: "
                 f"{cell(r['asha_over_random_epochs'])}")
    return "\n".join(lines)
