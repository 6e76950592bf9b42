"""Training on a real local Ray: both families on two workers, resume, and fault tolerance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import kill_tree

from rs.config import load_config
from rs.errors import RsError
from rs.train import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.width=8", "model.channel_mults=[1, 2]", "model.norm_groups=4", "train.batch_size=4",
        "train.warmup_steps=2", "train.cpus_per_worker=0.5", "train.num_workers=2"]


def cfg_args(data_root: Path, runs: Path, *more: str) -> list[str]:
    return [f"data.root={data_root}", f"train.storage_path={runs}", *TINY, *more]


def history(run_dir: Path) -> list[dict]:
    """Metrics of every checkpoint kept in the run directory, by epoch."""
    out = [json.loads((d / ckpt.META).read_text()) for d in run_dir.glob("checkpoint_*") if (d / ckpt.META).exists()]
    return sorted(out, key=lambda m: m["epoch"])


@pytest.mark.parametrize("family", ["surrogate", "diffusion"])
def test_three_epochs_on_two_workers_loss_decreases(family, data_root, tmp_path, ray_session):
    import rs.train

    cfg = load_config(REPO / "configs/train/debug.yaml",
                      cfg_args(data_root, tmp_path, f"train.model_family={family}", "train.epochs=3",
                               "train.lr=3e-3", "diffusion.num_steps=50", "diffusion.sampling_steps=4",
                               "train.num_to_keep=3"), env={})
    result = rs.train(cfg)
    hist = history(result.run_dir)
    # 2 steps an epoch and random diffusion times make one epoch's mean loss noisy: compare the first with the third
    assert [m["epoch"] for m in hist] == [1, 2, 3]
    first, last = hist[0]["metrics"], hist[2]["metrics"]
    assert last["train_loss"] < first["train_loss"], (first, last)
    for key in ("train_loss", "val_loss", "val_rel_l2", "epoch", "step", "samples_per_s", "lr"):
        assert key in last
    assert last["step"] == 3 * first["step"] > 0
    assert result.checkpoint is not None and result.best_metrics["val_rel_l2"] == min(
        m["metrics"]["val_rel_l2"] for m in hist)
    assert (result.run_dir / "config.resolved.yaml").is_file() and (result.run_dir / "provenance.json").is_file()
    # The checkpoint is whole and loads into a fresh model with its own config.
    from rs.models.build import build_model

    restored_cfg = ckpt.load_config(result.checkpoint)
    assert restored_cfg.train.model_family == family
    assert ckpt.restore(result.checkpoint, build_model(restored_cfg)).epoch in (1, 2, 3)


def test_resume_continues_epochs_and_steps(data_root, tmp_path, ray_session):
    from rs.train.api import fit

    args = cfg_args(data_root, tmp_path, "train.run_name=resume")
    one = fit(REPO / "configs/train/debug.yaml", [*args, "train.epochs=1"])
    steps = one.metrics["step"]
    two = fit(REPO / "configs/train/debug.yaml", [*args, "train.epochs=2"])  # same run name: resumes
    assert [m["epoch"] for m in history(two.run_dir)] == [1, 2]
    assert two.metrics["epoch"] == 1 and two.metrics["step"] == 2 * steps


def test_worker_killed_mid_epoch_restarts_from_checkpoint(data_root, tmp_path, ray_session, monkeypatch):
    from rs.train.api import fit

    monkeypatch.setenv("RS_INJECT_FAILURE", "1:7:1")  # rank 1 dies at epoch 1, global step 7
    args = cfg_args(data_root, tmp_path, "train.run_name=ft", "train.epochs=2", "train.max_failures=2")
    result = fit(REPO / "configs/train/debug.yaml", args)
    assert (result.run_dir / ".injected_failure").read_text() == "1:7:1", "the failure really happened"
    hist = history(result.run_dir)
    assert [m["epoch"] for m in hist] == [1, 2], "no epoch counted twice"
    per_epoch = hist[0]["metrics"]["step"]
    assert hist[1]["metrics"]["step"] == 2 * per_epoch, "steps continue from the checkpoint"
    assert per_epoch < 7 < 2 * per_epoch


def test_nan_loss_stops_with_a_clear_error(data_root, tmp_path, ray_session):
    from rs.train.api import fit

    args = cfg_args(data_root, tmp_path, "train.run_name=nan", "train.lr=10.0", "train.grad_clip=0",
                    "train.warmup_steps=0", "train.max_failures=0", "train.epochs=1")
    with pytest.raises(RsError, match=r"non-finite training loss .* at epoch 0, step \d+ on rank \d"):
        fit(REPO / "configs/train/debug.yaml", args)


def test_in_process_debug_mode(data_root, tmp_path, ray_session):
    from rs.train.api import fit

    args = cfg_args(data_root, tmp_path, "train.run_name=local", "train.num_workers=0", "train.epochs=1",
                    "train.max_steps_per_epoch=3")
    result = fit(REPO / "configs/train/debug.yaml", args)
    assert result.metrics["epoch"] == 0 and result.metrics["step"] == 3
    assert result.metrics["first_batch_s"] > 0 and result.metrics["steady_samples_per_s"] > 0
    # Ray keeps nothing in-process: the checkpoint must be in the run, whole, and the rerun resumes from it.
    assert result.checkpoint is not None and result.checkpoint.parent == tmp_path / "local"
    assert (result.checkpoint / "model.safetensors").is_file() and result.latest_checkpoint == result.checkpoint
    again = fit(REPO / "configs/train/debug.yaml", [*args, "train.epochs=2"])
    assert again.metrics["epoch"] == 1 and again.metrics["step"] == 6
    assert sorted(p.name for p in (tmp_path / "local").glob("checkpoint_*")) == [
        "checkpoint_epoch000000", "checkpoint_epoch000001"]  # train.num_to_keep defaults to 2


def test_driver_killed_then_same_command_resumes(data_root, tmp_path):
    temp = Path(f"/tmp/rsk{os.getpid()}")
    argv = [sys.executable, "-m", "rs", "train", "configs/train/debug.yaml"]
    for a in cfg_args(data_root, tmp_path, "train.run_name=killed", "train.epochs=4", "train.num_to_keep=4",
                      "cluster.num_cpus=2",
                      f"cluster.temp_dir={temp}", "cluster.object_store_mb=256"):
        argv += ["--set", a]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while not history(run_dir) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert history(run_dir), "no checkpoint before the deadline"
    finally:
        kill_tree(proc, temp)
    before = [m["epoch"] for m in history(run_dir)]
    assert before == list(range(1, len(before) + 1)) and before[-1] < 4, f"killed too late: {before}"
    again = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resumed from epoch {before[-1]}" in again.stdout + again.stderr
    assert [m["epoch"] for m in history(run_dir)] == [1, 2, 3, 4]  # nothing retrained, nothing skipped
    assert "best val_rel_l2" in again.stdout


def test_gpu_workers_on_a_cluster_without_gpus_fail_at_once(data_root, tmp_path, ray_session, monkeypatch):
    """...and the tracking run, opened beside Ray's start, is ended as FAILED rather than left running."""
    from mlflow import MlflowClient

    from rs.train.api import fit

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert ray_session.get("GPU", 0) == 0
    with pytest.raises(RsError, match=r"train\.use_gpu is set but the Ray cluster has no GPUs"):
        fit(REPO / "configs/train/debug.yaml", cfg_args(data_root, tmp_path, "train.use_gpu=true"))
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("rs").experiment_id])
    assert run.info.status == "FAILED"
