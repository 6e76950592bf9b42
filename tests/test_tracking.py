"""Tracking against real components: an `mlflow server` (sqlite, loopback) and W&B in offline mode."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, MlflowServer

from rs import tracking
from rs.config import DESCRIPTORS, load_config, provenance
from rs.tracking.buffer import Buffer
from rs.tracking.wandb_offline import read_run

TINY = ["model.width=8", "model.channel_mults=[1, 2]", "model.norm_groups=4", "train.batch_size=4",
        "train.warmup_steps=2", "train.cpus_per_worker=0.5", "train.num_workers=2"]


def _cfg(tmp_path: Path, *more: str, data_root: Path | None = None):
    extra = [f"data.root={data_root}", *TINY] if data_root else []
    return load_config(REPO / "configs/train/debug.yaml", [f"train.storage_path={tmp_path}", *extra, *more], env={})


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _runs(uri: str, experiment: str) -> list:
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_context_logs_every_data_type(tmp_path, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = _cfg(tmp_path, "tracking.mlflow.experiment=ctx-types")
    ctx = tracking.open_run(cfg, cfg.run_dir)
    ctx.log_config(cfg)
    ctx.close()
    time.sleep(1.1)  # W&B names offline segments by the second
    worker = tracking.attach(None, cfg)  # the path travels in RS_TRACKING_CONTEXT
    for epoch in range(3):
        worker.log_metrics({"val_rel_l2": 1.0 / (epoch + 1), "epoch": epoch}, step=epoch)
    worker.close()
    time.sleep(1.1)
    ctx.log_summary({"best_val_rel_l2": 1 / 3})
    ctx.log_table("leaderboard", [{"trial": 0, "val_rel_l2": 0.5}, {"trial": 1, "val_rel_l2": 0.25}])
    png = tmp_path / "curve.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([0, 1], [1, 0])
    plt.savefig(png)
    plt.close()
    ctx.log_image(png)
    ctx.log_file(cfg.run_dir / "tracking.json")
    ctx.close("FINISHED")

    runs = _runs(mlflow_server.uri, "ctx-types")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    flat = {k: v["value"] for k, v in provenance(cfg).items()}
    assert set(run.data.params) == set(flat)
    assert run.data.params["train.lr"] == json.dumps(flat["train.lr"])
    for key in DESCRIPTORS:
        assert run.data.tags[key] == str(cfg.descriptors()[key])
    assert {"rs.git_commit", "rs.version", "rs.data_fingerprint"} <= set(run.data.tags)
    hist = _client(mlflow_server.uri).get_metric_history(run.info.run_id, "val_rel_l2")
    assert [(m.step, round(m.value, 6)) for m in hist] == [(0, 1.0), (1, 0.5), (2, 0.333333)]
    assert run.data.metrics["best_val_rel_l2"] == pytest.approx(1 / 3)
    arts = {a.path for a in _client(mlflow_server.uri).list_artifacts(run.info.run_id)}
    assert {"plots", "tables", "tracking.json"} <= arts

    wb = read_run(cfg.run_dir, ctx.record.wandb.id)
    assert wb["segments"] == 3  # driver, worker, driver: one run id
    assert wb["config"]["train.lr"] == flat["train.lr"]
    assert [r["val_rel_l2"] for r in wb["history"] if "val_rel_l2" in r] == pytest.approx([1.0, 0.5, 1 / 3])
    assert wb["summary"]["best_val_rel_l2"] == pytest.approx(1 / 3)
    assert "model.backbone=unet" in wb["tags"]


def test_off_by_default_is_a_noop(tmp_path):
    cfg = _cfg(tmp_path)
    ctx = tracking.open_run(cfg, cfg.run_dir)
    assert not ctx.enabled
    ctx.log_metrics({"a": 1.0}, 0)
    ctx.close("FINISHED")
    assert not (cfg.run_dir / "tracking.json").exists()
    assert not (cfg.run_dir / "tracking").exists()


def test_server_down_at_start_buffers_then_sync_creates_the_run(tmp_path, monkeypatch, capsys):
    server = MlflowServer(tmp_path / "srv")  # port reserved, nothing listening yet
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    cfg = _cfg(tmp_path / "runs", "tracking.mlflow.experiment=late")
    t0 = time.time()
    ctx = tracking.open_run(cfg, cfg.run_dir)
    ctx.log_config(cfg)
    for epoch in range(2):
        ctx.log_metrics({"val_rel_l2": 0.5 - 0.1 * epoch}, step=epoch)
    ctx.log_summary({"best_val_rel_l2": 0.4})
    ctx.close("FINISHED")
    assert time.time() - t0 < 30, "an unreachable server must not stall training"
    assert capsys.readouterr().out.count("warning: tracking backend mlflow unreachable") == 1
    record = tracking.Record.load(cfg.run_dir)
    assert record.mlflow.run_id is None
    ops = [e["op"] for e in Buffer(cfg.run_dir, "mlflow").events()]
    assert ops.count("log_metrics") == 2 and "log_params" in ops and "log_summary" in ops

    server.start()
    try:
        out = subprocess.run([sys.executable, "-m", "rs", "tracking", "sync", str(cfg.run_dir)], cwd=REPO,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        again = subprocess.run([sys.executable, "-m", "rs", "tracking", "sync", str(cfg.run_dir)], cwd=REPO,
                               capture_output=True, text=True)
        assert "nothing buffered" in again.stdout
        runs = _runs(server.uri, "late")
        assert len(runs) == 1 and runs[0].info.status == "FINISHED"
        assert tracking.Record.load(cfg.run_dir).mlflow.run_id == runs[0].info.run_id
        hist = _client(server.uri).get_metric_history(runs[0].info.run_id, "val_rel_l2")
        assert [m.step for m in hist] == [0, 1]
        assert runs[0].data.metrics["best_val_rel_l2"] == pytest.approx(0.4)
    finally:
        server.stop()


def test_sync_skips_points_already_delivered(tmp_path, mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    cfg = _cfg(tmp_path, "tracking.mlflow.experiment=dedupe")
    ctx = tracking.open_run(cfg, cfg.run_dir)
    ctx.log_metrics({"val_rel_l2": 0.5}, step=0)
    buffer = Buffer(cfg.run_dir, "mlflow")
    buffer.append("log_metrics", {"metrics": {"val_rel_l2": 0.5}, "step": 0})  # delivered, and also buffered
    buffer.append("log_metrics", {"metrics": {"val_rel_l2": 0.4}, "step": 1})
    tracking.sync(cfg.run_dir)
    tracking.sync(cfg.run_dir)
    hist = _client(mlflow_server.uri).get_metric_history(ctx.record.mlflow.run_id, "val_rel_l2")
    assert sorted((m.step, m.value) for m in hist) == [(0, 0.5), (1, 0.4)]


def test_training_is_one_run_across_workers_and_resume(tmp_path, data_root, mlflow_server, monkeypatch, ray_session):
    import rs.train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ("tracking.mlflow.experiment=train-one", "train.run_name=tracked")
    result = rs.train(_cfg(tmp_path, *args, "train.epochs=2", data_root=data_root))
    runs = _runs(mlflow_server.uri, "train-one")
    assert len(runs) == 1
    run_id = runs[0].info.run_id
    client = _client(mlflow_server.uri)
    assert [m.step for m in client.get_metric_history(run_id, "val_rel_l2")] == [0, 1]
    assert runs[0].data.metrics["best_val_rel_l2"] == pytest.approx(result.best_metrics["val_rel_l2"])
    assert runs[0].data.tags["model.backbone"] == "unet"
    arts = {a.path for a in client.list_artifacts(run_id)}
    assert {"checkpoint", "config.resolved.yaml", "provenance.json", "plots"} <= arts
    assert {Path(a.path).name for a in client.list_artifacts(run_id, "plots")} == {"curves.png"}
    assert list((result.run_dir / "hot" / "train").glob("part-*.safetensors"))  # sampled val predictions
    ckpt_files = {Path(a.path).name for a in client.list_artifacts(run_id, "checkpoint")}
    assert {"model.safetensors", "meta.json", "tracking.json"} <= ckpt_files
    assert json.loads((result.checkpoint / "tracking.json").read_text())["mlflow"]["run_id"] == run_id

    rs.train(_cfg(tmp_path, *args, "train.epochs=3", data_root=data_root))  # the same command, one more epoch
    runs = _runs(mlflow_server.uri, "train-one")
    assert len(runs) == 1 and runs[0].info.run_id == run_id and runs[0].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_rel_l2")] == [0, 1, 2]
    record = tracking.Record.load(result.run_dir)
    wb = read_run(result.run_dir, record.wandb.id)
    assert [r["epoch"] for r in wb["history"] if "val_rel_l2" in r] == [0, 1, 2]
    assert "best_val_rel_l2" in wb["summary"] and wb["config"]["train.run_name"] == "tracked"


def test_server_dies_mid_run_training_finishes_and_sync_sends_the_rest(tmp_path, data_root, monkeypatch, ray_session):
    import rs.train

    server = MlflowServer(tmp_path / "srv").start()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    cfg = _cfg(tmp_path / "runs", "tracking.mlflow.experiment=outage", "train.epochs=3", data_root=data_root)

    def kill_after_first_epoch() -> None:
        client = _client(server.uri)
        deadline = time.time() + 300
        while time.time() < deadline:
            exp = client.get_experiment_by_name("outage")
            runs = client.search_runs([exp.experiment_id]) if exp else []
            if runs and client.get_metric_history(runs[0].info.run_id, "val_rel_l2"):
                server.stop()
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_after_first_epoch, daemon=True)
    killer.start()
    try:
        result = rs.train(cfg)
        killer.join(timeout=10)
        assert server.proc is None, "the server was not killed during training"
        assert result.best_metrics is not None  # training finished
        events = Buffer(result.run_dir, "mlflow").events()
        buffered_epochs = {e["args"]["step"] for e in events if e["op"] == "log_metrics"
                           and "val_rel_l2" in e["args"]["metrics"]}
        assert buffered_epochs and max(buffered_epochs) == 2
        assert any(e["op"] == "log_summary" for e in events)

        server.start()
        assert tracking.sync(result.run_dir)["mlflow"] > 0
        tracking.sync(result.run_dir)
        run = _runs(server.uri, "outage")[0]
        steps = [m.step for m in _client(server.uri).get_metric_history(run.info.run_id, "val_rel_l2")]
        assert steps == [0, 1, 2]
        assert run.info.status == "FINISHED" and "best_val_rel_l2" in run.data.metrics
    finally:
        server.stop()


def test_background_connect_logs_like_a_direct_one_and_raises_its_error_at_first_use(tmp_path, monkeypatch):
    """Rank 0 connects in a thread (MLflow's import and store cost seconds before its first step): events
    then arrive as before, and a backend that cannot be built fails at the first event, not silently."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    cfg = _cfg(tmp_path, "tracking.mlflow.experiment=background")
    driver = tracking.open_run(cfg, cfg.run_dir)
    driver.close()
    worker = tracking.attach(None, cfg, background=True)
    assert worker.enabled  # known from the record, without waiting for the thread
    for step in range(3):
        worker.log_metrics({"train_loss_step": 1.0 / (step + 1)}, step)
    worker.close()
    history = _client(f"sqlite:///{tmp_path}/mlflow.db").get_metric_history(driver.run_ids["mlflow"], "train_loss_step")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 0.5), (2, 1 / 3)]

    from rs.tracking import mlflow_backend

    def broken(self, rec):
        raise RuntimeError("mlflow cannot start here")

    monkeypatch.setattr(mlflow_backend.MlflowBackend, "__init__", broken)
    worker = tracking.attach(None, cfg, background=True)
    with pytest.raises(RuntimeError, match="mlflow cannot start here"):
        worker.log_metrics({"train_loss_step": 0.1}, 3)
