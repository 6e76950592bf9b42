"""Checkpoints: weights as safetensors, optimizer/scheduler/RNG state loaded with weights_only=True,
the resolved config and provenance beside them. Written to a temporary directory, reported only whole."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from rs.config import ExperimentConfig
from rs.config.serialize import load_resolved, provenance, save
from rs.errors import RsError

MODEL, EMA, STATE, META = "model.safetensors", "ema.safetensors", "train_state.pt", "meta.json"
CONFIG, PROVENANCE = "config.resolved.yaml", "provenance.json"


@dataclass
class Progress:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    inner = getattr(module, "module", module)  # unwrap DDP
    return {k: v.detach().contiguous().cpu() for k, v in inner.state_dict().items()}


def write(directory: Path, cfg: ExperimentConfig, model: torch.nn.Module, ema: torch.nn.Module | None,
          opt: torch.optim.Optimizer, sched: Any, progress: Progress, metrics: dict[str, float]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(_weights(model), str(directory / MODEL))
    if ema is not None:
        save_file(_weights(ema), str(directory / EMA))
    # NumPy/Python RNGs are reseeded from (train.seed, epoch, rank) every epoch; only torch's is stateful.
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state()}
    if isinstance(getattr(ema, "n_averaged", None), torch.Tensor):  # the EMA warmup goes on where it was
        state["ema_updates"] = int(ema.n_averaged)  # type: ignore[union-attr,arg-type]
    torch.save(state, directory / STATE)
    (directory / META).write_text(json.dumps({"epoch": progress.epoch, "step": progress.step, "metrics": metrics,
                                              "family": cfg.train.model_family, "format": "rs-checkpoint-1"}))
    save(cfg, directory / CONFIG)
    (directory / PROVENANCE).write_text(json.dumps(provenance(cfg), indent=1, default=str))
    return directory


def temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rs-ckpt-"))


def read_meta(directory: Path) -> dict[str, Any]:
    path = Path(directory) / META
    if not path.is_file() or not (Path(directory) / MODEL).is_file():
        raise RsError(f"{directory}: not an rs checkpoint (needs {META} and {MODEL}); pass a checkpoint_* directory")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RsError(f"{path}: truncated or corrupt checkpoint metadata ({err.msg})") from None
    if meta.get("format") != "rs-checkpoint-1":
        raise RsError(f"{directory}: unknown checkpoint format {meta.get('format')!r}")
    return meta


def load_config(directory: Path) -> ExperimentConfig:
    return load_resolved(Path(directory) / CONFIG)


def restore(directory: Path, model: torch.nn.Module, ema: torch.nn.Module | None = None,
            opt: torch.optim.Optimizer | None = None, sched: Any = None) -> Progress:
    """Load into the given objects (weights only where opt/sched are None); returns where training was."""
    meta = read_meta(directory)
    directory = Path(directory)
    try:
        getattr(model, "module", model).load_state_dict(load_file(str(directory / MODEL)))
        if ema is not None and (directory / EMA).is_file():
            getattr(ema, "module", ema).load_state_dict(load_file(str(directory / EMA)))
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise RsError(f"{directory}: cannot load weights ({str(err).splitlines()[0]}); the checkpoint is "
                      "truncated or from another model") from None
    if opt is not None:
        state = torch.load(directory / STATE, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if "ema_updates" in state and isinstance(getattr(ema, "n_averaged", None), torch.Tensor):
            ema.n_averaged.fill_(int(state["ema_updates"]))  # type: ignore[union-attr]
    return Progress(epoch=int(meta["epoch"]), step=int(meta["step"]))


def in_run(run_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The run's complete checkpoints (with their metadata), oldest epoch first."""
    found = []
    for d in Path(run_dir).glob("checkpoint_*"):
        try:
            found.append((d, read_meta(d)))
        except RsError:
            continue  # a directory being written (temp names never match) or foreign: not resumable
    return sorted(found, key=lambda x: int(x[1]["epoch"]))


def persist_in_process(staged: Path, run_dir: Path, epoch: int, keep: int) -> Path:
    """Ray's in-process mode (`train.num_workers: 0`) reports checkpoints without persisting them: copy the
    staged directory into the run (temp name, then rename) and keep the `keep` best by `val_rel_l2` plus
    the latest, as Ray's CheckpointConfig does for worker runs."""
    run_dir = Path(run_dir)
    dest = run_dir / f"checkpoint_epoch{epoch:06d}"
    tmp = run_dir / f".{dest.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(staged, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    kept = in_run(run_dir)
    score = lambda m: float(m.get("metrics", {}).get("val_rel_l2", math.inf))  # noqa: E731
    best = {d for d, _ in sorted(kept, key=lambda x: score(x[1]))[: max(keep, 1)]}
    for d, _ in kept[:-1]:
        if d not in best:
            shutil.rmtree(d, ignore_errors=True)
    return dest
