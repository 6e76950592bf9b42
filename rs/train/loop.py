"""`train_fn_per_worker`: the thin orchestrator every Ray Train worker runs. Registries supply the model,
the family's loss and prediction, the optimizer and schedule; this file only sequences them."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import torch

from rs.config.serialize import from_dict
from rs.data.source import iterate
from rs.models.build import build_model
from rs.models.losses import rel_l2
from rs.train import checkpoint as ckpt
from rs.train.families import FAMILIES
from rs.train.optim import build_optimizer, build_schedule


def _ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _maybe_fail(spec: str | None, run_dir: Path, epoch: int, step: int, rank: int) -> None:
    """Fault injection for tests: RS_INJECT_FAILURE="epoch:step:rank" (driver env) kills that worker once."""
    marker = run_dir / ".injected_failure"
    if spec and [int(v) for v in spec.split(":")] == [epoch, step, rank] and not marker.exists():
        marker.write_text(f"{epoch}:{step}:{rank}")
        os._exit(1)


def train_fn_per_worker(config: dict[str, Any]) -> None:
    cfg = from_dict(config["experiment"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    t = cfg.train
    torch.manual_seed(t.seed + rank)
    family = FAMILIES[t.model_family](cfg)
    model = build_model(cfg)
    ema = _ema(model, cfg.diffusion.ema_decay)
    opt = build_optimizer(t, model)
    steps_per_epoch = config["steps_per_epoch"]
    sched = build_schedule(t, opt, steps_per_epoch * t.epochs)
    progress = ckpt.Progress()
    if (restored := ray.train.get_checkpoint()) is not None:
        with restored.as_directory() as d:
            progress = ckpt.restore(Path(d), model, ema, opt, sched)
        print(f"[rs] resumed from epoch {progress.epoch}, step {progress.step}", flush=True)
    if world > 1:
        model = ray.train.torch.prepare_model(model)
    device = ray.train.torch.get_device() if t.use_gpu else torch.device("cpu")
    run_dir = Path(config["run_dir"])
    train_keys = sorted(k for k in config["dataset_keys"] if k.startswith("train"))
    val_keys = sorted(k for k in config["dataset_keys"] if k.startswith("val"))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16")
    step_model = torch.compile(model) if t.compile else model
    first_step_s: float | None = None

    for epoch in range(progress.epoch, t.epochs):
        if rank == 0 and config.get("clock") is not None:
            ray.get(config["clock"].set.remote(epoch))  # before the split's epoch barrier
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([t.seed, epoch, rank]).generate_state(1)[0]))
        model.train()
        t0, seen, losses, steps_this_epoch = time.perf_counter(), 0, [], 0
        for key in train_keys:
            for batch in iterate(ray.train.get_dataset_shard(key), t.batch_size, drop_last=False):
                if t.max_steps_per_epoch and steps_this_epoch >= t.max_steps_per_epoch:
                    break
                _maybe_fail(config.get("inject_failure"), run_dir, epoch, progress.step, rank)
                with autocast:
                    loss, _ = family.loss(step_model, batch, gen)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"non-finite training loss ({float(loss)}) at epoch {epoch}, step {progress.step} on rank "
                        f"{rank}; lower train.lr, raise train.grad_clip or check the data with `rs data validate`")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if t.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                opt.step()
                sched.step()
                ema.update_parameters(getattr(model, "module", model))
                progress.step += 1
                steps_this_epoch += 1
                seen += len(batch)
                losses.append(float(loss.detach()))
                if first_step_s is None:
                    first_step_s = time.time() - config["start_time"]
                    if rank == 0:
                        print(f"[rs] first optimizer step {first_step_s:.1f} s after start", flush=True)
        train_time = time.perf_counter() - t0
        metrics = {"epoch": epoch, "step": progress.step, "train_loss": float(np.mean(losses)) if losses else math.nan,
                   "samples_per_s": seen * world / max(train_time, 1e-9), "lr": sched.get_last_lr()[0],
                   **_validate(family, model, ema, val_keys, t.batch_size, epoch)}
        if first_step_s is not None and epoch == progress.epoch:
            metrics["first_step_s"] = first_step_s  # in the epoch this process took its first step
        progress.epoch = epoch + 1
        if rank == 0:
            print("[rs] " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in metrics.items()), flush=True)
            d = ckpt.write(ckpt.temp_dir(), cfg, model, ema, opt, sched, progress, metrics)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(d)))
        else:
            ray.train.report(metrics)


@torch.no_grad()
def _validate(family, model, ema, keys: list[str], batch_size: int, epoch: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """val_loss (the family's loss) and val_rel_l2 of the one-step prediction, on the whole val split."""
    model.eval()
    gen = torch.Generator().manual_seed(1234 + epoch)  # the same noise for every rank and every run
    net = getattr(model, "module", model)
    ema_net = getattr(ema, "module", ema)
    loss_sum = rel_sum = 0.0
    count = 0
    for key in keys:
        for batch in iterate(ray.train.get_dataset_shard(key), batch_size):
            loss, _ = family.loss(net, batch, gen)
            target = batch.target if batch.target.dim() == 4 else batch.target[:, 0]
            pred = family.predict(net, ema_net, batch, gen)
            loss_sum += float(loss) * len(batch)
            rel_sum += float(rel_l2(pred, target)) * len(batch)
            count += len(batch)
    if count == 0:
        return {"val_loss": math.nan, "val_rel_l2": math.nan}
    return {"val_loss": loss_sum / count, "val_rel_l2": rel_sum / count}
