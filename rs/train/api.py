"""`rs train` and `rs.train(...)`: a TorchTrainer from the typed config; the same code path on a laptop,
under `ray job submit` and on a Slurm-launched cluster (only RAY_ADDRESS / cluster config differ)."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rs.cluster.env import apply_ray_env
from rs.cluster.storage import check_run_storage
from rs.config import ExperimentConfig, load_config
from rs.config.serialize import provenance, save, to_dict
from rs.errors import RsError
from rs.io.catalog import RUN_MARKER


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]  # of the latest checkpointed epoch
    best_metrics: dict[str, Any] | None
    checkpoint: Path | None  # best by val_rel_l2
    latest_checkpoint: Path | None


PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"
ELASTIC_START_TIMEOUT_S = 20.0


def ensure_ray(cfg: ExperimentConfig) -> None:
    """Join RAY_ADDRESS / cluster.address, keep a Ray the caller started, or start a local one. Token auth
    is on for a Ray started here; a joined cluster's own mode is followed (`rs.cluster.auth`)."""
    from rs.cluster import auth

    apply_ray_env()
    address = os.environ.get("RAY_ADDRESS") or cfg.cluster.address
    import ray

    if ray.is_initialized():
        return
    if address:
        auth.for_joining()
        auth.check_gcs(address)
        ray.init(address=address, log_to_driver=True)
        return
    auth.for_new_cluster(cfg.cluster.auth_mode)
    # The dashboard carries the State API, which Train V2 needs to free the placement groups of finished
    # runs (without it a sweep's next trial waits forever for CPUs); bound to loopback.
    kwargs: dict[str, Any] = {"num_cpus": cfg.cluster.num_cpus or os.cpu_count(), "include_dashboard": True,
                              "dashboard_host": "127.0.0.1"}
    if cfg.cluster.object_store_mb:
        kwargs["object_store_memory"] = cfg.cluster.object_store_mb * 1024 * 1024
    if cfg.cluster.temp_dir:
        kwargs["_temp_dir"] = cfg.cluster.temp_dir
    # Train's PreemptionWatcher (one more actor process at every start, ~0.5 s of time-to-first-step on 2
    # cores) watches for node drains, which a Ray started here never has; the driver's value reaches Train.
    os.environ.setdefault(PREEMPTION_WATCHER_ENV, "0")
    from rs.cluster.startup import hook_env

    for key, value in hook_env(cfg.cluster.fast_worker_start).items():  # the raylet passes it to its workers
        os.environ.setdefault(key, value)
    ray.init(**kwargs)


def _write_run_files(cfg: ExperimentConfig) -> None:
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    save(cfg, run_dir / "config.resolved.yaml")
    for name, content in (("provenance.json", provenance(cfg)),
                          (RUN_MARKER, {"run_name": cfg.train.run_name, "model_family": cfg.train.model_family})):
        tmp = run_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(content, indent=1, default=str))
        tmp.replace(run_dir / name)


def fit(config: ExperimentConfig | str | Path, overrides: list[str] | tuple[str, ...] = (),
        *, start_time: float | None = None, callbacks: list[Any] | None = None,
        tracking_parent: str | None = None, tracking_group: str | None = None) -> TrainResult:
    """Train one experiment; rerunning with the same run name resumes from its latest checkpoint.
    `callbacks` go on the Train RunConfig (a sweep passes Tune's report callback); `tracking_parent` and
    `tracking_group` nest the run under a sweep's MLflow run and W&B group."""
    start = start_time or time.time()
    cfg = config if isinstance(config, ExperimentConfig) else load_config(config, list(overrides))
    if isinstance(config, ExperimentConfig) and overrides:
        raise RsError("overrides apply to a config path; pass a path or apply them with load_config")
    t = cfg.train
    from rs import tracking

    # The tracking runs open beside Ray's start (MLflow's import and store take seconds); a start that fails
    # below ends them as FAILED.
    opening = tracking.OpeningRun(cfg, cfg.run_dir, "train", parent_run_id=tracking_parent, group=tracking_group)
    # Train's controller reads this from the driver's environment (so does the warmed read process's match).
    start_timeout = t.worker_start_timeout_s or (ELASTIC_START_TIMEOUT_S if t.min_workers else None)
    own_timeout = start_timeout is not None and START_TIMEOUT_ENV not in os.environ  # a user's value wins
    if own_timeout:
        os.environ[START_TIMEOUT_ENV] = str(start_timeout)
    try:
        ensure_ray(cfg)  # sets the Ray environment before Ray is imported
        if t.num_workers > 0 and cfg.cluster.fast_worker_start:
            from rs.cluster.startup import warm_data_worker

            warm_data_worker()  # starts while the splits are planned; the first epoch's first read takes it
        import ray
        import ray.train
        from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from rs.data import layouts
        from rs.data.normalize import delta_std
        from rs.data.source import EpochClock, build_split
        from rs.train import checkpoint as ckpt
        from rs.train.distributed import TorchConfig
        from rs.train.loop import train_fn_per_worker

        _check_budget(cfg, ray.cluster_resources())
        check_run_storage(t.storage_path, cfg.cluster.shared_storage)
        _write_run_files(cfg)
        # On the driver's node, as Ray Train keeps its controller and dataset actors: losing a worker node
        # must not lose the run's epoch.
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        clock = EpochClock.options(scheduling_strategy=here).remote()
        train = build_split(cfg, "train", clock=clock)
        val = build_split(cfg, "val", train.stats, shuffle=False)
        delta = delta_std(layouts.open_split(cfg.data.root, "train", cfg.data.layout), train.stats,
                          cfg.data.stride, align=cfg.data.align_window)
    except BaseException:
        opening.fail()
        if own_timeout:
            os.environ.pop(START_TIMEOUT_ENV, None)
        raise
    tctx = opening.result()
    tctx.log_config(cfg)
    tctx.close()  # the driver's part until training ends; rank 0 logs the epochs into the same runs
    world = max(t.num_workers, 1)
    steps = math.ceil(train.samples / world / t.batch_size)
    steps = min(steps, t.max_steps_per_epoch) if t.max_steps_per_epoch else steps
    datasets = {**train.datasets, **val.datasets}
    resources = {"CPU": t.cpus_per_worker, **({"GPU": 1} if t.use_gpu else {})}
    trainer = TorchTrainer(
        train_fn_per_worker,
        torch_config=TorchConfig(),
        train_loop_config={"experiment": to_dict(cfg), "clock": clock, "steps_per_epoch": max(steps, 1),
                           "delta_std": list(delta),
                           "run_dir": str(cfg.run_dir), "dataset_keys": list(datasets), "start_time": start,
                           "in_process": t.num_workers == 0,
                           "inject_failure": os.environ.get("RS_INJECT_FAILURE"),
                           "tracking": str(tctx.record.path) if tctx.enabled and tctx.record else None},
        scaling_config=ScalingConfig(
            num_workers=t.num_workers if t.min_workers is None else (t.min_workers, t.num_workers),
            use_gpu=t.use_gpu, resources_per_worker=resources, placement_strategy=t.placement_strategy,
            elastic_resize_monitor_interval_s=t.resize_interval_s),
        datasets=datasets,
        dataset_config=DataConfig(datasets_to_split=list(train.datasets)),
        run_config=RunConfig(
            name=t.run_name, storage_path=str(t.storage_path),
            failure_config=FailureConfig(max_failures=t.max_failures), callbacks=callbacks or None,
            checkpoint_config=CheckpointConfig(num_to_keep=t.num_to_keep, checkpoint_score_attribute="val_rel_l2",
                                               checkpoint_score_order="min"),
        ),
    )
    print(f"[rs] training {cfg.name}: {train.samples} train / {val.samples} val samples, {t.num_workers} worker(s), "
          f"{t.epochs} epochs -> {cfg.run_dir}; normalization from {train.stats.source}", flush=True)
    try:
        result = trainer.fit()
    except ray.train.TrainingFailedError as err:
        tctx.close("FAILED")
        raise RsError(f"training failed: {_root_cause(err)}") from None
    except BaseException:
        tctx.close("KILLED")
        raise
    finally:
        ray.kill(clock)
        if own_timeout:
            os.environ.pop(START_TIMEOUT_ENV, None)
    kept = [(Path(c.path), m) for c, m in result.best_checkpoints or []]
    if t.num_workers == 0:  # Ray keeps no checkpoint list in-process; the loop kept them in the run
        kept = [(d, meta["metrics"]) for d, meta in ckpt.in_run(cfg.run_dir)]
    scored = [(d, m) for d, m in kept if isinstance(m.get("val_rel_l2"), (int, float))]
    best, best_metrics = min(scored, key=lambda x: x[1]["val_rel_l2"]) if scored else (None, None)
    out = TrainResult(
        run_dir=cfg.run_dir, metrics=dict(result.metrics or {}), best_metrics=best_metrics,
        checkpoint=best,
        latest_checkpoint=Path(result.checkpoint.path) if result.checkpoint else None,
    )
    _log_outcome(tctx, out)
    return out


def _log_outcome(tctx: Any, out: TrainResult) -> None:
    """The pipeline's summary and files: best and final objective, the best checkpoint, config, provenance."""
    summary = {f"final_{k}": v for k, v in out.metrics.items()
               if k in ("val_rel_l2", "val_loss", "train_loss", "epoch", "step") and isinstance(v, (int, float))}
    if out.best_metrics and "val_rel_l2" in out.best_metrics:
        summary["best_val_rel_l2"] = out.best_metrics["val_rel_l2"]
        summary["best_epoch"] = out.best_metrics.get("epoch", -1)
    tctx.log_summary(summary)
    from rs.eval.plots import training_curves

    if (curves := training_curves(out.run_dir)) is not None:
        tctx.log_image(curves, "curves")
    if out.checkpoint is not None:
        tctx.log_file(out.checkpoint, "checkpoint")
    for name in ("config.resolved.yaml", "provenance.json"):
        if (out.run_dir / name).is_file():
            tctx.log_file(out.run_dir / name)
    tctx.close("FINISHED")


def _check_budget(cfg: ExperimentConfig, resources: dict[str, float]) -> None:
    """Training workers that take every CPU leave Ray Data no budget, and GPU workers on a cluster without
    GPUs are never placed: either would wait forever, silently."""
    t = cfg.train
    if t.use_gpu and resources.get("GPU", 0.0) == 0:
        raise RsError("train.use_gpu is set but the Ray cluster has no GPUs; start Ray on GPU nodes (Slurm: "
                      "--gpus-per-node) or set train.use_gpu=false")
    cpus = resources.get("CPU", 0.0)
    workers = max(t.num_workers, 1) * t.cpus_per_worker
    if workers + cfg.data.read_cpus > cpus + 1e-9:
        raise RsError(
            f"train.num_workers × train.cpus_per_worker = {workers:g} CPU plus data.read_cpus = {cfg.data.read_cpus:g} "
            f"exceed the cluster's {cpus:g} CPUs, so Ray Data could never read; lower train.cpus_per_worker "
            f"(e.g. 0.5) or data.read_cpus, or use a bigger cluster")


def _root_cause(err: BaseException) -> str:
    """The innermost worker error as one line (Ray wraps it in several layers)."""
    text = str(err)
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line and ("Error" in line.split(":")[0] or "Exception" in line.split(":")[0]):
            return line
    return text.splitlines()[0] if text else type(err).__name__
