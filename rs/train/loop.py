"""`train_fn_per_worker`: the thin orchestrator every Ray Train worker runs. Registries supply the model,
the family's loss and prediction, the optimizer and schedule; this file only sequences them."""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import torch

from rs import tracking
from rs.config.serialize import from_dict
from rs.data.source import iterate
from rs.errors import RsError
from rs.io.hot import HotWriter
from rs.models.build import build_ema, build_model, set_delta_scale
from rs.models.losses import rel_l2
from rs.train import checkpoint as ckpt
from rs.train.device import place, worker_device
from rs.train.families import FAMILIES
from rs.train.optim import build_optimizer, build_schedule
from rs.train.pipeline import EarlyEpoch, open_epoch

CPU = torch.device("cpu")


def _maybe_fail(spec: str | None, run_dir: Path, epoch: int, step: int, rank: int) -> None:
    """Fault injection for tests: RS_INJECT_FAILURE="epoch:step:rank" (driver env) kills that worker once."""
    marker = run_dir / ".injected_failure"
    if spec and [int(v) for v in spec.split(":")] == [epoch, step, rank] and not marker.exists():
        marker.write_text(f"{epoch}:{step}:{rank}")
        os._exit(1)


@dataclass
class Worker:
    """What one worker trains with: built from the registries, restored from a checkpoint if any."""

    cfg: Any
    rank: int
    world: int
    family: Any
    model: torch.nn.Module
    step_model: Any
    ema: Any
    opt: torch.optim.Optimizer
    sched: Any
    progress: ckpt.Progress
    tctx: tracking.TrackingContext
    device: torch.device
    first_step_s: float | None = None  # from process start to this process's first optimizer step


def _build(config: dict[str, Any], cfg: Any, ray_epoch: int) -> Worker:
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    t = cfg.train
    # Only rank 0 logs; its context continues the pipeline's runs named in tracking.json, connecting in a
    # thread while the model is built and the first steps run (MLflow's import and store take seconds).
    tctx = (tracking.attach(config.get("tracking"), cfg, background=True) if rank == 0
            else tracking.TrackingContext(None))
    torch.manual_seed(t.seed + rank)
    family = FAMILIES[t.model_family](cfg)
    device = worker_device(t.use_gpu)
    model = place(build_model(cfg), device, t.channels_last)
    set_delta_scale(model, config["delta_std"])  # before the EMA copy; a resumed checkpoint restores the same
    ema = build_ema(model, cfg.diffusion.ema_decay, cfg.diffusion.ema_warmup_power)
    opt = build_optimizer(t, model)
    sched = build_schedule(t, opt, config["steps_per_epoch"] * t.epochs)
    progress = ckpt.Progress()
    # Ray hands back the last report its controller recorded; the run directory may hold a newer one (in-process
    # runs, where Ray keeps no state, or a process killed before the controller recorded its last report).
    # The newer wins: never retrain what was saved.
    restored = ray.train.get_checkpoint()
    from_run = _resume_from_run_dir(Path(config["run_dir"]), model, ema, opt, sched, newer_than=ray_epoch)
    if from_run is not None:
        progress = from_run
    elif restored is not None:
        with restored.as_directory() as d:
            progress = ckpt.restore(Path(d), model, ema, opt, sched)
        print(f"[rs] resumed from epoch {progress.epoch}, step {progress.step}", flush=True)
    if not config["in_process"]:  # where each rank runs: placement is worth seeing on a cluster
        print(f"[rs] rank {rank} of {world} on {socket.gethostname()} (node "
              f"{ray.get_runtime_context().get_node_id()[:12]}) from epoch {progress.epoch}", flush=True)
    if world > 1:
        model = ray.train.torch.prepare_model(model)
    return Worker(cfg, rank, world, family, model, torch.compile(model) if t.compile else model, ema, opt, sched,
                  progress, tctx, device)


def _resume_from_run_dir(run_dir: Path, model, ema, opt, sched, newer_than: int) -> ckpt.Progress | None:  # type: ignore[no-untyped-def]
    """The newest checkpoint in the run past epoch `newer_than` that loads (one cut short by a kill is
    skipped, with a warning); None when there is none."""
    for d, meta in reversed(ckpt.in_run(run_dir)):
        if int(meta["epoch"]) <= newer_than:
            return None
        try:
            progress = ckpt.restore(d, model, ema, opt, sched)
        except (RsError, RuntimeError, OSError) as err:
            print(f"[rs] warning: skipping {d.name}: {err}", flush=True)
            continue
        print(f"[rs] resumed from epoch {progress.epoch}, step {progress.step} ({d.name} in the run directory)",
              flush=True)
        return progress
    return None


def _ray_checkpoint_epoch() -> int:
    """Epochs completed by the checkpoint Ray hands back (-1 without one)."""
    restored = ray.train.get_checkpoint()
    if restored is None:
        return -1
    with restored.as_directory() as d:
        return int(ckpt.read_meta(Path(d))["epoch"])


def _planned_epoch(run_dir: Path, ray_epoch: int) -> int:
    """The epoch `_build` will resume at, from checkpoint metadata alone (it loads the weights later)."""
    return max([0, ray_epoch, *(int(meta["epoch"]) for _, meta in ckpt.in_run(run_dir))])


def train_fn_per_worker(config: dict[str, Any]) -> None:
    cfg = from_dict(config["experiment"])
    rank, ray_epoch = ray.train.get_context().get_world_rank(), _ray_checkpoint_epoch()
    start = _planned_epoch(Path(config["run_dir"]), ray_epoch)
    train_keys = sorted(k for k in config["dataset_keys"] if k.startswith("train"))
    early = None
    if start < cfg.train.epochs and train_keys:  # the first epoch's data starts while the model is built
        early = EarlyEpoch(config, train_keys[0], start, cfg.train.batch_size, rank)
    try:
        w = _build(config, cfg, ray_epoch)
        try:
            for epoch in range(w.progress.epoch, cfg.train.epochs):
                _epoch(config, w, epoch, early)
        finally:
            w.tctx.close()
    finally:
        if early is not None:
            early.close()


def _epoch(config: dict[str, Any], w: Worker, epoch: int, early: EarlyEpoch | None = None) -> None:
    t, rank = w.cfg.train, w.rank
    run_dir = Path(config["run_dir"])
    keys = config["dataset_keys"]
    autocast = torch.autocast(w.device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([t.seed, epoch, rank]).generate_state(1)[0]))
    w.model.train()
    t0, seen, losses, steps_this_epoch = time.perf_counter(), 0, [], 0
    t_first: float | None = None
    seen_first = 0
    samples: dict[str, Any] = {}
    for i, key in enumerate(sorted(k for k in keys if k.startswith("train"))):
        batches = early.take(key, epoch) if early is not None else None
        if batches is None:
            batches = open_epoch(config, key, epoch, t.batch_size, rank, first_key=i == 0)
        for batch in batches:
            if t.max_steps_per_epoch and steps_this_epoch >= t.max_steps_per_epoch:
                break
            _maybe_fail(config.get("inject_failure"), run_dir, epoch, w.progress.step, rank)
            batch = batch.to(w.device, t.channels_last)
            with autocast:
                loss, _ = w.family.loss(w.step_model, batch, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"non-finite training loss ({float(loss)}) at epoch {epoch}, step {w.progress.step} on rank "
                    f"{rank}; lower train.lr, raise train.grad_clip or check the data with `rs data validate`")
            w.opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(w.model.parameters(), t.grad_clip)
            w.opt.step()
            w.sched.step()
            w.ema.update_parameters(getattr(w.model, "module", w.model))
            w.progress.step += 1
            steps_this_epoch += 1
            seen += len(batch)
            if t_first is None:  # what came before is the epoch's pipeline start-up, not steady state
                t_first, seen_first = time.perf_counter(), seen
            losses.append(float(loss.detach()))
            if w.progress.step % w.cfg.tracking.log_every_steps == 0:
                w.tctx.log_metrics({"train_loss_step": losses[-1], "lr_step": w.sched.get_last_lr()[0]},
                                   w.progress.step)
            if w.first_step_s is None:
                w.first_step_s = time.time() - config["start_time"]
                if rank == 0:
                    print(f"[rs] first optimizer step {w.first_step_s:.1f} s after start", flush=True)
        if hasattr(batches, "close"):  # Ray's iterator ends its epoch now, not whenever it is collected
            batches.close()
    train_time = time.perf_counter() - t0
    metrics = {"epoch": epoch, "step": w.progress.step,
               "train_loss": float(np.mean(losses)) if losses else math.nan,
               "samples_per_s": seen * w.world / max(train_time, 1e-9), "lr": w.sched.get_last_lr()[0],
               **_steady(t0, t_first, t0 + train_time, seen - seen_first, w.world),
               **_validate(w.family, w.model, w.ema, sorted(k for k in keys if k.startswith("val")), t.batch_size,
                           epoch, samples, w.device, t.channels_last)}
    if w.first_step_s is not None:
        metrics["first_step_s"] = w.first_step_s  # the same every epoch: any kept checkpoint carries it
    w.progress.epoch = epoch + 1
    if rank != 0:
        ray.train.report(metrics)
        return
    print("[rs] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()),
          flush=True)
    with HotWriter(run_dir, "train") as hot:  # the epoch's curve point and sampled predictions, kept locally
        hot.scalars(metrics)
        hot.tensors({f"epoch{epoch:04d}/{k}": v for k, v in samples.items()})
    d = ckpt.write(ckpt.temp_dir(), w.cfg, w.model, w.ema, w.opt, w.sched, w.progress, metrics)
    try:
        if (run_dir / "tracking.json").is_file():  # the runs a checkpoint belongs to travel with it
            shutil.copy2(run_dir / "tracking.json", d / "tracking.json")
        if config.get("in_process"):
            d_run = ckpt.persist_in_process(d, run_dir, epoch, w.cfg.train.num_to_keep)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(d_run)))
        else:  # report() persists the directory into the run's storage before it returns (sync upload)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(d)))
        # Tracked only once the epoch is committed: report() is a barrier, and a rank lost inside it (a node
        # crash) makes the run redo this epoch from the last checkpoint, which logged before would duplicate.
        w.tctx.log_metrics(metrics, step=epoch)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _steady(t0: float, t_first: float | None, t_end: float, after_first: int, world: int) -> dict[str, float]:
    """Time to this epoch's first optimizer step, and samples/s after it (the steady state: no data
    pipeline start-up, no first-step allocations)."""
    if t_first is None:
        return {}
    return {"first_batch_s": t_first - t0,
            "steady_samples_per_s": after_first * world / max(t_end - t_first, 1e-9)}


@torch.no_grad()
def _validate(family, model, ema, keys: list[str], batch_size: int, epoch: int,  # type: ignore[no-untyped-def]
              samples: dict[str, Any] | None = None, device: torch.device = CPU,
              channels_last: bool = False) -> dict[str, float]:
    """val_loss (the family's loss) and val_rel_l2 of the one-step prediction, on the whole val split;
    `samples` receives the first batch's first predictions and targets (kept as hot tensors)."""
    model.eval()
    gen = torch.Generator().manual_seed(1234 + epoch)  # the same noise for every rank and every run
    net = getattr(model, "module", model)
    ema_net = getattr(ema, "module", ema)
    loss_sum = rel_sum = 0.0
    count = 0
    for key in keys:
        for batch in iterate(ray.train.get_dataset_shard(key), batch_size):
            batch = batch.to(device, channels_last)
            loss, _ = family.loss(net, batch, gen)
            target = batch.target if batch.target.dim() == 4 else batch.target[:, 0]
            pred = family.predict(net, ema_net, batch, gen)
            if samples is not None and not samples:
                samples.update({"prediction": pred[:2].float(), "target": target[:2].float()})
            loss_sum += float(loss) * len(batch)
            rel_sum += float(rel_l2(pred, target)) * len(batch)
            count += len(batch)
    if count == 0:
        return {"val_loss": math.nan, "val_rel_l2": math.nan}
    return {"val_loss": loss_sum / count, "val_rel_l2": rel_sum / count}
