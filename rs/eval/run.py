"""`rs eval` / `rs.evaluate`: rollouts of a checkpoint on a split, metrics beside persistence, plots,
hot outputs in the run directory, and the summary logged into the checkpoint's own tracking run."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rs.errors import RsError

SAFE_PREFIXES = ("eval.", "tracking.")
SAFE_FIELDS = ("data.root", "data.layout", "diffusion.sampling_steps", "diffusion.eta")  # sampling is inference-time


@dataclass
class EvalResult:
    out_dir: Path
    summary: dict[str, Any]  # flat: "<metric>_<step>" (mean over fields and simulations) and per field
    table: list[dict[str, Any]]  # metric, field, step, model, persistence
    plots: list[Path]


def check_overrides(overrides: list[str]) -> None:
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if not (key.startswith(SAFE_PREFIXES) or key in SAFE_FIELDS):
            raise RsError(f"--set {item}: {key} is fixed by the checkpoint; evaluation may override only eval.*, "
                          f"tracking.*, {', '.join(SAFE_FIELDS)}")


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint directory, or a run directory (its best checkpoint by val_rel_l2)."""
    from rs.train.checkpoint import META

    if not path.is_dir():
        raise RsError(f"{path}: no such checkpoint or run directory; pass RUN_DIR or RUN_DIR/checkpoint_*")
    if (path / META).is_file() or not any(path.glob("checkpoint_*")):
        return path
    scored = []
    for d in path.glob("checkpoint_*"):
        try:
            scored.append((float(json.loads((d / META).read_text())["metrics"]["val_rel_l2"]), d))
        except (OSError, KeyError, ValueError):
            continue
    if not scored:
        raise RsError(f"{path}: no readable checkpoint_*/{META}; pass a checkpoint directory")
    return min(scored, key=lambda s: s[0])[1]


def _pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise RsError("eval.device=cuda but no CUDA device is visible; use eval.device=cpu or auto")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def evaluate(checkpoint: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
             split: str | None = None) -> EvalResult:
    from rs.config.load import apply_overrides
    from rs.data import layouts
    from rs.data.normalize import compute_stats, value_range
    from rs.eval import plots
    from rs.eval.continuation import continuation_vrmse
    from rs.eval.rollout import Simulation, rollout, truth_and_persistence
    from rs.io.hot import HotWriter
    from rs.models.build import build_ema, build_model
    from rs.train import checkpoint as ckpt
    from rs.train.families import FAMILIES

    ckpt_dir = resolve_checkpoint(Path(checkpoint))
    meta = ckpt.read_meta(ckpt_dir)
    overrides = [*overrides, *([f"eval.split={split}"] if split else [])]
    check_overrides(overrides)
    cfg = apply_overrides(ckpt.load_config(ckpt_dir), overrides)
    e, d = cfg.eval, cfg.data
    family = FAMILIES[cfg.train.model_family](cfg)
    model = build_model(cfg)
    ema = build_ema(model, cfg.diffusion.ema_decay, cfg.diffusion.ema_warmup_power)
    ckpt.restore(ckpt_dir, model, ema)
    device = _pick_device(e.device)
    model.to(device).eval()
    ema.to(device).eval()
    ema_net = getattr(ema, "module", ema)
    train = layouts.open_split(d.root, "train", d.layout)
    stats = compute_stats(train, list(d.fields), list(d.cond_params))
    bounds = value_range(train, stats) if e.clip_to_train_range else None
    metas = layouts.open_split(d.root, e.split, d.layout)[: e.max_simulations]
    if not metas:
        raise RsError(f"{d.root}: split {e.split!r} has no simulations to evaluate")
    members = e.ensemble if cfg.train.model_family == "diffusion" else 1
    run_dir = ckpt_dir.parent
    name = e.split if e.tag is None else f"{e.split}-{e.tag}"  # a tag keeps earlier evaluations
    out_dir = run_dir / "eval" / name
    fields = list(d.fields)
    per_step: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)  # (metric, field) -> per-sim arrays
    plot_paths: list[Path] = []
    gen = torch.Generator().manual_seed(cfg.train.seed)
    t0 = time.time()
    with HotWriter(run_dir, f"eval-{name}") as hot:
        for i, m in enumerate(metas):
            sim = Simulation.load(m, cfg, stats)
            n = sim.steps(d.history, d.stride, e.horizon)
            if n == 0:
                print(f"[rs] eval: {m.name} has too few frames for one step; skipped", flush=True)
                continue
            ens = rollout(family, model, ema_net, sim, d.history, d.stride, n, members, gen, device, bounds)
            truth, pers = truth_and_persistence(sim, d.history, d.stride, n)
            ens, truth, pers = (stats.denormalize(a, axis=-3) for a in (ens, truth, np.ascontiguousarray(pers)))
            point = ens.mean(axis=0)
            hot.tensors({f"{m.key}/prediction": ens.astype(np.float32), f"{m.key}/truth": truth.astype(np.float32)})
            for (metric, field), values in _sim_metrics(point, ens, truth, pers, fields).items():
                per_step[(metric, field)].append(values)
                for k, row in enumerate(values):
                    hot.scalars({"sim": m.name, "step": k + 1, "metric": metric, "field": field,
                                 "model": float(row[0]), "persistence": float(row[1])})
            if e.solver_continuation:
                cont = continuation_vrmse(m, point, truth, d.history, d.stride, fields)
                if cont is None:
                    print(f"[rs] eval: {m.name} was not written by rs's generator (or lacks φ/c): no solver "
                          "continuation", flush=True)
                for key, value in (cont or {}).items():
                    per_step[key].append(value)
            if e.one_step_all:
                for key, value in _one_step(family, model, ema_net, sim, d.history, d.stride, gen, device, stats,
                                            fields).items():
                    per_step[key].append(value)
            if i < 2:
                plot_paths.append(plots.montage(truth, point, list(e.plot_steps), fields,
                                                out_dir / "plots" / f"montage_{m.key}.png",
                                                f"{cfg.name} {m.name} ({e.split})"))
    table, summary = _aggregate(per_step, e.plot_steps)
    if not table:
        raise RsError(f"split {e.split!r}: no simulation had enough frames for one rollout step")
    for metric in ("vrmse", "rel_l2"):
        curves = {f: {"model": _mean_curve(per_step[(metric, f)], 0), "persistence":
                      _mean_curve(per_step[(metric, f)], 1)} for f in fields if per_step.get((metric, f))}
        plot_paths.append(plots.error_curves(curves, metric, out_dir / "plots" / f"{metric}_vs_step.png",
                                             f"{cfg.name}: {metric} vs rollout step ({e.split})"))
    summary.update({"split": e.split, "checkpoint": str(ckpt_dir), "epoch": meta["epoch"], "horizon": e.horizon,
                    "ensemble": members, "simulations": len(metas), "seconds": round(time.time() - t0, 2)})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ".summary.json.tmp").write_text(json.dumps({"summary": summary, "table": table}, indent=1))
    (out_dir / ".summary.json.tmp").replace(out_dir / "summary.json")
    _track(ckpt_dir, run_dir, cfg, name, summary, table, plot_paths, out_dir / "summary.json")
    return EvalResult(out_dir, summary, table, plot_paths)


def _sim_metrics(point, ens, truth, pers, fields) -> dict[tuple[str, str], np.ndarray]:  # type: ignore[no-untyped-def]
    """{(metric, field): (steps, 2) [model, persistence]} for one simulation."""
    from rs.eval import metrics as M

    out: dict[tuple[str, str], np.ndarray] = {}
    for f, name in enumerate(fields):
        p, t, q = point[:, f], truth[:, f], pers[:, f]
        for metric, fn in (("rel_l2", M.rel_l2), ("vrmse", M.vrmse), ("mae", M.mae)):
            out[(metric, name)] = np.stack([fn(p, t), fn(q, t)], axis=1)
        if ens.shape[0] > 1:
            ens_f = ens[:, :, f]
            out[("spread_skill", name)] = np.stack([M.spread_skill(ens_f, t), np.full(len(t), np.nan)], axis=1)
            out[("crps", name)] = np.stack([M.crps(ens_f, t), M.mae(q, t)], axis=1)  # CRPS of a point = MAE
        if name == "phi":
            sf = M.solid_fraction(t)
            out[("solid_fraction_error", name)] = np.stack([np.abs(M.solid_fraction(p) - sf),
                                                            np.abs(M.solid_fraction(q) - sf)], axis=1)
            tip = M.tip_position(t)
            out[("tip_error_cells", name)] = np.stack([np.abs(M.tip_position(p) - tip),
                                                       np.abs(M.tip_position(q) - tip)], axis=1)
        if name == "c":
            out[("solute_drift", name)] = np.stack([M.solute_drift(p, t), M.solute_drift(q, t)], axis=1)
    return out


def _one_step(family, model, ema, sim, history, stride, gen, device, stats, fields  # type: ignore[no-untyped-def]
              ) -> dict[tuple[str, str], np.ndarray]:
    """{("one_step_vrmse", field): (1, 2) [model, persistence]}: means over every frame of the simulation."""
    from rs.eval import metrics as M
    from rs.eval.one_step import predict_all

    pred, truth = (stats.denormalize(a) for a in predict_all(family, model, ema, sim, history, stride, gen, device))
    raw = stats.denormalize(sim.frames)
    pers, pers_truth = raw[history - 1 : len(raw) - stride], raw[history - 1 + stride :]
    return {("one_step_vrmse", name): np.array([[M.vrmse(pred[:, f], truth[:, f]).mean(),
                                                 M.vrmse(pers[:, f], pers_truth[:, f]).mean()]])
            for f, name in enumerate(fields)}


def _mean_curve(arrays: list[np.ndarray], column: int) -> np.ndarray:
    """Mean over simulations per step (simulations may have different step counts)."""
    n = max(a.shape[0] for a in arrays)
    stacked = np.full((len(arrays), n), np.nan)
    for i, a in enumerate(arrays):
        stacked[i, : a.shape[0]] = a[:, column]
    return _nanmean(stacked, axis=0)


def _nanmean(x: Any, axis: int | None = None) -> Any:
    """Mean ignoring NaN; all-NaN (no persistence value, e.g. spread-skill) stays NaN without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _aggregate(per_step, plot_steps) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # type: ignore[no-untyped-def]
    table, summary = [], {}
    by_metric: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for (metric, field), arrays in sorted(per_step.items()):
        model, pers = _mean_curve(arrays, 0), _mean_curve(arrays, 1)
        n = len(model)
        for step in sorted({1, *[s for s in plot_steps if s <= n], n}):
            row = {"metric": metric, "field": field, "step": step, "model": float(model[step - 1]),
                   "persistence": float(pers[step - 1])}
            table.append(row)
            summary[f"{metric}_{field}_{step}"] = row["model"]
            summary[f"persistence_{metric}_{field}_{step}"] = row["persistence"]
            by_metric[metric][step].append((row["model"], row["persistence"]))
    for metric, steps in by_metric.items():  # averaged over fields: the headline numbers
        for step, pairs in steps.items():
            summary[f"{metric}_{step}"] = float(_nanmean([a for a, _ in pairs]))
            summary[f"persistence_{metric}_{step}"] = float(_nanmean([b for _, b in pairs]))
    return table, summary


def _track(ckpt_dir: Path, run_dir: Path, cfg: Any, name: str, summary: dict[str, Any],
           table: list[dict[str, Any]], plot_paths: list[Path], summary_file: Path) -> None:
    """Into the training run: the checkpoint's own tracking record (or its run directory's)."""
    from rs import tracking

    path = next((p for p in (ckpt_dir / "tracking.json", run_dir / "tracking.json") if p.is_file()), None)
    ctx = tracking.attach(path, None) if path else tracking.TrackingContext(None)
    with ctx:
        ctx.log_summary({f"eval_{name}/{k}": v for k, v in summary.items()
                         if isinstance(v, (int, float)) and np.isfinite(v)})
        ctx.log_table(f"eval_{name}", table)
        for p in plot_paths:
            ctx.log_image(p, f"eval_{name}/{p.stem}")
        ctx.log_file(summary_file, f"eval/{name}")


def format_table(result: EvalResult) -> str:
    lines = [f"{'metric':<22} {'field':<5} {'step':>4} {'model':>11} {'persistence':>11} {'model/pers':>10}"]
    for r in result.table:
        ratio = r["model"] / r["persistence"] if r["persistence"] not in (0.0,) and np.isfinite(r["persistence"]) \
            else float("nan")
        lines.append(f"{r['metric']:<22} {r['field']:<5} {r['step']:>4} {r['model']:>11.4g} {r['persistence']:>11.4g} "
                     f"{ratio:>10.3g}")
    return "\n".join(lines)
