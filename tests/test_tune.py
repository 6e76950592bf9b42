"""Sweeps on a real local Ray and a real MLflow server: interrupted, restored, tracked as parent + children."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, kill_tree

from rs.config import ConfigError, load_config
from rs.tune.run import concurrency
from rs.tune.space import to_tune

TINY = ["model.width=8", "model.channel_mults=[1, 2]", "model.norm_groups=4", "train.batch_size=4",
        "train.warmup_steps=2", "train.cpus_per_worker=0.5"]


def test_space_maps_to_tune_domains_and_concurrency_fits_the_cluster():
    from ray.tune.search.sample import Categorical, Float, Integer

    cfg = load_config(REPO / "configs/tune/debug.yaml", env={})
    space = to_tune({**cfg.tune.space, "train.epochs": {"randint": [1, 3]}})
    assert isinstance(space["train.lr"], Float) and isinstance(space["model.backbone"], Categorical)
    assert isinstance(space["train.epochs"], Integer) and space["train.epochs"].upper == 4  # inclusive in YAML
    assert concurrency(cfg, 2.0) == 1  # 0.5 worker CPU + 1 read CPU per trial
    assert concurrency(cfg, 8.0) == 5
    assert concurrency(load_config(REPO / "configs/tune/debug.yaml", ["tune.max_concurrent_trials=2"], env={}),
                       8.0) == 2


@pytest.mark.parametrize("entry, message", [
    ("tune.space={train.nope: {choice: [1]}}", "train.nope"),
    ("tune.space={train.lr: {lognormal: [1, 2]}}", "lognormal"),
    ("tune.space={train.lr: {loguniform: [0, 1]}}", "low > 0"),
])
def test_bad_space_is_one_clear_error(entry, message):
    with pytest.raises(ConfigError, match=message):
        load_config(REPO / "configs/tune/debug.yaml", [entry], env={})


def _tune_cmd(data_root: Path, storage: Path, temp: Path) -> list[str]:
    sets = [f"data.root={data_root}", f"train.storage_path={storage}", f"cluster.temp_dir={temp}", *TINY]
    return [sys.executable, "-m", "rs", "tune", "configs/tune/debug.yaml", *[a for s in sets for a in ("--set", s)]]


def _finished_trials(sweep_dir: Path) -> int:
    """Trials whose Train run wrote its last epoch's checkpoint (2 epochs)."""
    done = 0
    for run in (sweep_dir / "trials").glob("trial_*"):
        metas = [json.loads(p.read_text()) for p in run.glob("checkpoint_*/meta.json")]
        done += any(m["epoch"] >= 2 for m in metas)
    return done


def test_sweep_restores_after_interruption_and_ends_tracked(data_root, tmp_path, mlflow_server, ray_session):
    import ray

    # Both drivers join the session's Ray, as `ray job submit` drivers join a cluster. (Two Ray instances
    # on one machine break Train V2's placement-group cleaner: its State API client cannot tell which
    # cluster is its own, so a finished trial's CPUs are never freed and the next trial waits forever.)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    sweep_dir = tmp_path / "debug-tune"
    temp = Path(f"/tmp/rst{os.getpid()}")
    first = subprocess.Popen(_tune_cmd(data_root, tmp_path, temp), cwd=REPO, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 400
        while time.time() < deadline and _finished_trials(sweep_dir) < 1 and first.poll() is None:
            time.sleep(1)
        assert _finished_trials(sweep_dir) >= 1, "no trial finished in time"
    finally:
        kill_tree(first, temp)  # the driver and its local Ray, mid-sweep

    log = tmp_path / "second.log"
    with open(log, "w") as out:
        second = subprocess.Popen(_tune_cmd(data_root, tmp_path, temp), cwd=REPO, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        try:
            second.wait(timeout=900)
        finally:
            kill_tree(second, temp)
    text = log.read_text()
    assert second.returncode == 0, text[-3000:]
    assert "resuming sweep" in text
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    assert len(board) == 4 and len({r["trial"] for r in board}) == 4
    assert all(r["status"] == "TERMINATED" and r["epochs"] >= 1 for r in board), board
    assert board[0]["best_val_rel_l2"] == min(r["best_val_rel_l2"] for r in board)
    assert len(list((sweep_dir / "trials").glob("trial_*"))) == 4  # no trial run twice under a new id
    assert "best config:" in text and (sweep_dir / "optuna-journal.log").stat().st_size > 0

    best = load_config(sweep_dir / "best.yaml", [f"data.root={data_root}", f"train.storage_path={tmp_path / 'b'}",
                                                 "train.epochs=1", "train.num_workers=0"], env={})
    assert best.model.backbone == board[0]["model.backbone"]
    assert best.train.lr == pytest.approx(board[0]["train.lr"])
    import rs.train

    trained = rs.train(best)  # in-process (num_workers: 0): trains end to end
    assert trained.metrics["epoch"] == 0 and trained.metrics["val_rel_l2"] > 0

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    exp = client.get_experiment_by_name("rs")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`rs.kind` = 'tune'")
    parent = next(r for r in runs if r.info.run_name == "debug-tune")
    children = client.search_runs([exp.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 4
    assert all(c.data.tags["model.backbone"] == c.data.params["model.backbone"] for c in children)
    assert {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "tables")} == {"leaderboard.json"}
    assert parent.data.metrics["best_val_rel_l2"] == pytest.approx(board[0]["best_val_rel_l2"])


def test_failing_trial_is_recorded_with_its_reason_and_the_sweep_goes_on(data_root, tmp_path, ray_session):
    from rs.tune.run import sweep

    missing = tmp_path / "no-such-data"
    # TPE seeded 0 samples both values in its first two (random start-up) trials: one fails, one trains.
    result = sweep(REPO / "configs/tune/debug.yaml", [
        f"train.storage_path={tmp_path}", "tune.num_samples=2", "tune.seed=0", "train.epochs=1",
        "train.max_steps_per_epoch=2", "tune.optuna_storage=null", "tune.max_retries=0",
        f"tune.space={{data.root: {{choice: ['{missing}', '{data_root}']}}}}", *TINY])
    rows = {str(r["data.root"]): r for r in result.leaderboard}
    assert set(rows) == {str(missing), str(data_root)}, result.leaderboard
    failed, ok = rows[str(missing)], rows[str(data_root)]
    assert failed["status"] == "ERROR" and str(missing) in failed["error"], failed
    assert failed["best_val_rel_l2"] is None
    assert ok["status"] == "TERMINATED" and ok["best_val_rel_l2"] is not None
    assert result.leaderboard[0] is ok  # ranked first; the failure is listed, not dropped
    assert result.best_config is not None and str(data_root) in result.best_config.read_text()
