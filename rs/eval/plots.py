"""Plots (matplotlib, Agg): truth / prediction / error montages, error-vs-step curves, training curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def montage(truth_SCHW: np.ndarray, pred_SCHW: np.ndarray, steps: list[int], fields: list[str], path: Path,
            title: str) -> Path:
    """Rows: each field's truth, prediction and |error|; columns: the chosen rollout steps (1-based)."""
    steps = [s for s in steps if 1 <= s <= truth_SCHW.shape[0]] or [truth_SCHW.shape[0]]
    rows = 3 * len(fields)
    fig, axes = plt.subplots(rows, len(steps), figsize=(2.2 * len(steps), 2.0 * rows), squeeze=False)
    for f, name in enumerate(fields):
        lo, hi = truth_SCHW[:, f].min(), truth_SCHW[:, f].max()
        for j, s in enumerate(steps):
            t, p = truth_SCHW[s - 1, f], pred_SCHW[s - 1, f]
            for r, (img, label, kw) in enumerate([(t, "truth", {"vmin": lo, "vmax": hi}),
                                                  (p, "prediction", {"vmin": lo, "vmax": hi}),
                                                  (np.abs(p - t), "|error|", {"cmap": "magma"})]):
                ax = axes[3 * f + r, j]
                ax.imshow(img, origin="lower", **kw)
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(f"{name} {label}", fontsize=8)
                if r == 0 and f == 0:
                    ax.set_title(f"step {s}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def error_curves(curves: dict[str, dict[str, np.ndarray]], metric: str, path: Path, title: str) -> Path:
    """`curves[field][method]` = per-step values; one panel per field, model vs persistence."""
    fields = list(curves)
    fig, axes = plt.subplots(1, len(fields), figsize=(4.0 * len(fields), 3.0), squeeze=False)
    for ax, name in zip(axes[0], fields, strict=True):
        for method, values in curves[name].items():
            ax.plot(np.arange(1, len(values) + 1), values, label=method, lw=1.5,
                    ls="--" if method == "persistence" else "-")
        ax.set_xlabel("rollout step")
        ax.set_ylabel(metric)
        ax.set_title(name)
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def training_curves(run_dir: Path) -> Path | None:
    """Loss and objective per epoch from the run's hot scalars (the last report of each epoch wins:
    an epoch repeated after a failure is counted once); None before the first epoch."""
    rows: dict[int, dict] = {}
    for path in sorted(run_dir.glob("hot/train/scalars-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                rows[int(r["epoch"])] = r
    if not rows:
        return None
    epochs = sorted(rows)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key in ("train_loss", "val_loss", "val_rel_l2"):
        ax.plot(epochs, [rows[e].get(key, math.nan) for e in epochs], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.legend()
    return _save(fig, run_dir / "plots" / "curves.png")
