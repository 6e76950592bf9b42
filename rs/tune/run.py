"""`rs tune` / `rs.tune.sweep`: Ray Tune (OptunaSearch + ASHA) over any config field; each trial is
exactly `rs train` (a Tune driver function running a TorchTrainer with Tune's report callback).

Rerunning the same command resumes the sweep (`Tuner.restore`): finished trials are kept, interrupted
ones continue from their checkpoints (a trial's run name is its trial id), errored ones are retried.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs.config import ExperimentConfig, load_config
from rs.errors import RsError

METRIC, MODE = "val_rel_l2", "min"
TRIAL_DRIVER_CPU = 0.01


@dataclass
class SweepResult:
    sweep_dir: Path
    leaderboard: list[dict[str, Any]]
    best_config: Path | None
    parent_run_id: str | None


def _trial(params: dict[str, Any], *, base: dict[str, Any]) -> None:
    """One trial: the sampled values are the `tune` layer of the config; the rest is `rs train`."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from rs.train.api import fit

    trial_id = tune.get_context().get_trial_id()
    os.chdir(base["cwd"])  # Tune moves trials into their own directory; relative config paths are the user's
    # On a cluster a trial runs in a worker process that never saw the driver's environment.
    os.environ.update(base["tracking_env"])
    overrides = [*base["overrides"], f"train.run_name=trial_{trial_id}", f"train.storage_path={base['trials_dir']}"]
    cfg = load_config(base["config"], overrides, env=base["env"], tune=params)
    if (done := _completed(cfg)) is not None:
        # Training finished before an interruption but Tune never heard: report its last epoch again.
        tune.report(done)
        return
    fit(cfg, callbacks=[TuneReportCallback()], tracking_parent=base["parent_run_id"],
        tracking_group=base["group"])


def _tracking_env() -> dict[str, str]:
    """The driver's tracking switches for the trials; secrets stay out (Tune pickles this to the sweep dir):
    credentials on a cluster come from the nodes' environment or the tools' own login files."""
    secret = ("KEY", "TOKEN", "PASSWORD", "SECRET")
    return {k: v for k, v in os.environ.items()
            if k.startswith(("MLFLOW_", "WANDB_")) and not any(s in k for s in secret)}


def _completed(cfg: ExperimentConfig) -> dict[str, Any] | None:
    """The last epoch's metrics when the trial's Train run already trained every epoch."""
    metas = [json.loads(p.read_text()) for p in cfg.run_dir.glob("checkpoint_*/meta.json")]
    last = max(metas, key=lambda m: m["epoch"], default=None)
    return last["metrics"] if last is not None and last["epoch"] >= cfg.train.epochs else None


def concurrency(cfg: ExperimentConfig, cluster_cpus: float) -> int:
    """Trials that fit at once: each holds its workers' CPUs plus one Ray Data read task."""
    t = cfg.train
    need = max(t.num_workers, 1) * t.cpus_per_worker + cfg.data.read_cpus + TRIAL_DRIVER_CPU
    fit_ = max(1, math.floor(cluster_cpus / need + 1e-9))
    return min(fit_, cfg.tune.max_concurrent_trials or fit_)


def _searcher(cfg: ExperimentConfig, sweep_dir: Path) -> Any:
    tn = cfg.tune
    if tn.searcher == "random":
        return None  # Tune's own random sampling
    from ray.tune.search.optuna import OptunaSearch

    storage = None
    if tn.optuna_storage:
        storage = _optuna_storage(tn.optuna_storage, sweep_dir)
    import optuna

    return OptunaSearch(metric=METRIC, mode=MODE, seed=tn.seed, study_name=tn.name, storage=storage,
                        sampler=optuna.samplers.TPESampler(seed=tn.seed))


def _optuna_storage(spec: str, sweep_dir: Path) -> Any:
    """`journal` / a `.log` path: a journal file; `sqlite:///…`: an RDB storage; relative paths live in the
    sweep directory. Inspect after the sweep with `optuna` tools on the same storage."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if spec.startswith(("sqlite:", "postgresql:", "mysql:")):
        return optuna.storages.RDBStorage(spec)
    path = Path("optuna-journal.log" if spec == "journal" else spec)
    path = path if path.is_absolute() else sweep_dir / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def sweep(config: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepResult:
    from rs.cluster.storage import check_run_storage
    from rs.train.api import ensure_ray

    cfg = load_config(config, list(overrides))
    tn = cfg.tune
    if not tn.space:
        raise RsError(f"{config}: tune.space is empty; declare e.g. "
                      "tune.space: {train.lr: {loguniform: [1.0e-5, 1.0e-2]}}")
    ensure_ray(cfg)
    check_run_storage(cfg.train.storage_path, cfg.cluster.shared_storage)
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from rs import tracking
    from rs.tune.space import to_tune

    sweep_dir = (Path(cfg.train.storage_path) / tn.name).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    tctx = tracking.open_run(cfg, sweep_dir, "tune", name=tn.name, group=tn.name)
    tctx.log_params({f"tune.space.{k}": json.dumps(v) for k, v in tn.space.items()})
    base = {"config": str(Path(config).resolve()), "overrides": list(overrides), "cwd": os.getcwd(),
            "trials_dir": str(sweep_dir / "trials"),
            "env": {k: v for k, v in os.environ.items() if k.startswith("RS_")},
            "tracking_env": _tracking_env(),
            "parent_run_id": tctx.run_ids["mlflow"], "group": tn.name}
    trainable = tune.with_parameters(_trial, base=base)
    # The trial driver only waits on its Train run; Tune refuses an empty request, so a token share.
    trainable = tune.with_resources(trainable, {"CPU": TRIAL_DRIVER_CPU})
    if tune.Tuner.can_restore(str(sweep_dir)):
        print(f"[rs] resuming sweep {tn.name} from {sweep_dir}", flush=True)
        tuner = tune.Tuner.restore(str(sweep_dir), trainable, resume_unfinished=True, resume_errored=True)
    else:
        scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=cfg.train.epochs,
                                   grace_period=tn.grace_period, reduction_factor=tn.reduction_factor)
                     if tn.scheduler == "asha" else FIFOScheduler())
        concurrent = concurrency(cfg, ray.cluster_resources().get("CPU", 1.0))
        print(f"[rs] sweep {tn.name}: {tn.num_samples} trials, {concurrent} at a time -> {sweep_dir}", flush=True)
        tuner = tune.Tuner(
            trainable, param_space=to_tune(tn.space),
            tune_config=tune.TuneConfig(metric=METRIC, mode=MODE, num_samples=tn.num_samples,
                                        search_alg=_searcher(cfg, sweep_dir), scheduler=scheduler,
                                        max_concurrent_trials=concurrent),
            run_config=tune.RunConfig(name=tn.name, storage_path=str(sweep_dir.parent),
                                      failure_config=tune.FailureConfig(max_failures=tn.max_retries),
                                      verbose=1),
        )
    grid = tuner.fit()
    return _finish(cfg, config, overrides, grid, sweep_dir, tctx)


def _finish(cfg, config, overrides, grid, sweep_dir: Path, tctx) -> SweepResult:  # type: ignore[no-untyped-def]
    from rs.config.serialize import experiment_yaml

    rows = []
    for r in grid:
        hist = r.metrics_dataframe
        vals = hist[METRIC].dropna().tolist() if hist is not None and METRIC in hist else []
        err = str(r.error).strip().splitlines()[-1][:300] if r.error else None
        trial = (r.metrics or {}).get("trial_id") or Path(r.path).name.split("_")[2]
        rows.append({"trial": trial, **{k: r.config.get(k) for k in cfg.tune.space},
                     "best_val_rel_l2": min(vals) if vals else None,
                     "epochs": int(hist["epoch"].max()) + 1 if hist is not None and "epoch" in hist else 0,
                     "status": "ERROR" if r.error else "TERMINATED", "error": err})
    rows.sort(key=lambda r: (r["best_val_rel_l2"] is None, r["best_val_rel_l2"] or 0.0))
    (sweep_dir / "leaderboard.json").write_text(json.dumps(rows, indent=1, default=str))
    best_path = None
    if rows and rows[0]["best_val_rel_l2"] is not None:
        best = load_config(config, list(overrides), tune={k: rows[0][k] for k in cfg.tune.space})
        best_path = sweep_dir / "best.yaml"
        tmp = best_path.with_suffix(".tmp")
        tmp.write_text(f"# best trial {rows[0]['trial']} of sweep {cfg.tune.name}: val_rel_l2 "
                       f"{rows[0]['best_val_rel_l2']:.6g}\n" + experiment_yaml(best))
        tmp.replace(best_path)
        tctx.log_summary({"best_val_rel_l2": rows[0]["best_val_rel_l2"]})
        tctx.log_file(best_path)
    tctx.log_table("leaderboard", rows)
    tctx.log_file(sweep_dir / "leaderboard.json")
    tctx.close("FINISHED")
    return SweepResult(sweep_dir, rows, best_path, tctx.run_ids["mlflow"])


def format_leaderboard(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no trials)"
    cols = [c for c in rows[0] if c != "error"]
    lines = ["  ".join(f"{c:>14}" for c in cols)]
    for r in rows:
        lines.append("  ".join(f"{_cell(r[c]):>14}" for c in cols) + (f"  {r['error']}" if r.get("error") else ""))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
