"""Evaluation, hot/warm/cold run storage and the catalog, on real checkpoints trained on a local Ray."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from rs.config import load_config
from rs.errors import RsError
from rs.eval import metrics as M
from rs.io import catalog
from rs.io.hot import HotWriter

TINY = ["model.width=8", "model.channel_mults=[1, 2]", "model.norm_groups=4", "train.batch_size=4",
        "train.warmup_steps=2", "train.cpus_per_worker=0.5", "train.num_workers=2", "train.epochs=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root, ray_session, mlflow_server) -> dict[str, Path]:
    """A surrogate and a diffusion run (1 epoch each) tracked on a real MLflow server."""
    import os

    import rs.train

    root = tmp_path_factory.mktemp("evalruns")
    runs = {}
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server.uri
    try:
        for family in ("surrogate", "diffusion"):
            cfg = load_config(REPO / "configs/train/debug.yaml",
                              [f"data.root={data_root}", f"train.storage_path={root}", *TINY,
                               f"train.model_family={family}", f"train.run_name={family}",
                               "tracking.mlflow.experiment=eval-tests", "diffusion.sampling_steps=3"], env={})
            runs[family] = rs.train(cfg).checkpoint
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    return runs


def test_metrics_are_zero_for_the_truth_and_grow_with_error():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(3, 8, 8))
    assert np.allclose(M.vrmse(t, t), 0) and np.allclose(M.rel_l2(t, t), 0) and np.allclose(M.mae(t, t), 0)
    assert np.all(M.vrmse(t + 0.5, t) > M.vrmse(t + 0.1, t))
    assert np.allclose(M.vrmse(t.mean(axis=(-2, -1), keepdims=True) + 0 * t, t), 1.0, atol=1e-5)  # mean field
    ens = np.stack([t, t, t])
    assert np.allclose(M.crps(ens, t), 0)
    phi = -np.ones((1, 4, 10))
    phi[0, 1, :7] = 1  # solid reaches column 6 in one row
    assert M.tip_position(phi)[0] == 6 and M.solid_fraction(phi)[0] == pytest.approx(7 / 40)
    calibrated = rng.normal(size=(16, 4, 32, 32))  # truth is one more draw from the ensemble's distribution
    truth = rng.normal(size=(4, 32, 32))
    assert M.spread_skill(calibrated, truth) == pytest.approx(np.ones(4), abs=0.05)
    assert np.all(M.spread_skill(0.3 * calibrated, truth) < 0.5)  # under-dispersed


def test_hot_writer_flushes_on_exit_and_on_exception(tmp_path):
    with HotWriter(tmp_path, "s", tensors_per_file=3) as w:
        for i in range(7):
            w.tensors({f"x{i}": np.full((2, 2), i, np.float32)})
            w.scalars({"i": i})
    with pytest.raises(ValueError), HotWriter(tmp_path, "t") as w:
        w.scalars({"i": 0})
        w.tensors({"y": np.ones(3)})
        raise ValueError("producer failed")
    out = catalog.consolidate(tmp_path)
    assert out == {"s": {"tensors": 7, "rows": 7}, "t": {"tensors": 1, "rows": 1}}
    from safetensors.numpy import load_file

    assert load_file(str(tmp_path / "warm" / "s.safetensors"))["x6"][0, 0] == 6
    assert not list((tmp_path / "hot" / "s").iterdir())  # hot files gone once warm ones exist


def test_hot_writer_flushes_on_sigterm(tmp_path):
    script = textwrap.dedent(f"""
        import time, numpy as np
        from rs.io.hot import HotWriter
        w = HotWriter({str(tmp_path)!r}, "run", tensors_per_file=1000)
        for i in range(50):
            w.scalars({{"i": i}})
            w.tensors({{f"t{{i}}": np.zeros(4)}})
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    lines = next((tmp_path / "hot" / "run").glob("scalars-*.jsonl")).read_text().splitlines()
    assert [json.loads(x)["i"] for x in lines] == list(range(50))
    from safetensors.numpy import load_file

    parts = list((tmp_path / "hot" / "run").glob("part-*.safetensors"))
    assert sum(len(load_file(str(p))) for p in parts) == 50


def test_evaluate_surrogate_writes_outputs_and_logs_into_its_training_run(trained, mlflow_server):
    import rs

    ckpt = trained["surrogate"]
    result = rs.evaluate(ckpt, ["eval.horizon=4", "eval.plot_steps=[1, 3]"])
    s = result.summary
    for key in ("vrmse_1", "persistence_vrmse_1", "rel_l2_phi_1", "mae_c_4", "solid_fraction_error_phi_1",
                "solute_drift_c_1", "tip_error_cells_phi_4"):
        assert key in s and np.isfinite(s[key]), key
    assert s["vrmse_1"] > 0 and s["horizon"] == 4 and s["ensemble"] == 1
    assert "continuation_vrmse_1" not in s  # the exact-solver continuation is off by default
    # One step from every frame: the same as step 1 where a simulation has only one frame with a successor
    # beyond the history; persistence's the mean over all frames' one-step changes.
    assert np.isfinite(s["one_step_vrmse_1"]) and s["persistence_one_step_vrmse_1"] > 0
    run_dir = ckpt.parent
    assert json.loads((run_dir / "eval/test/summary.json").read_text())["summary"]["vrmse_1"] == s["vrmse_1"]
    assert {p.name for p in result.plots} >= {"vrmse_vs_step.png", "rel_l2_vs_step.png"}
    assert any(p.name.startswith("montage_") for p in result.plots)
    assert all(p.stat().st_size > 1000 for p in result.plots)
    assert list((run_dir / "hot" / "eval-test").glob("part-*.safetensors"))
    rows = [json.loads(x) for p in (run_dir / "hot" / "eval-test").glob("*.jsonl") for x in p.read_text().splitlines()]
    assert {r["metric"] for r in rows} >= {"vrmse", "rel_l2", "mae"} and max(r["step"] for r in rows) == 4

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    run_id = json.loads((ckpt / "tracking.json").read_text())["mlflow"]["run_id"]
    run = client.get_run(run_id)
    assert run.data.metrics["eval_test/vrmse_1"] == pytest.approx(s["vrmse_1"])
    assert "best_val_rel_l2" in run.data.metrics  # the same run training logged into
    plots = {Path(a.path).name for a in client.list_artifacts(run_id, "plots")}
    assert "vrmse_vs_step.png" in plots


def test_evaluate_diffusion_ensemble_reports_crps_and_spread(trained):
    import rs

    result = rs.evaluate(trained["diffusion"], ["eval.horizon=2", "eval.ensemble=2", "eval.max_simulations=1",
                                                "eval.solver_continuation=true"])
    s = result.summary
    assert s["ensemble"] == 2
    assert np.isfinite(s["crps_phi_1"]) and np.isfinite(s["spread_skill_phi_1"])
    # The solver continues from the ensemble mean's first step: step 1 is that forecast's own error.
    assert s["continuation_vrmse_phi_1"] == pytest.approx(s["vrmse_phi_1"])
    assert np.isfinite(s["continuation_vrmse_2"]) and s["continuation_vrmse_2"] != s["vrmse_2"]
    # Sampling is an inference-time choice: the number of DDIM steps may change, the training schedule not.
    # A tag keeps both evaluations side by side.
    tagged = rs.evaluate(trained["diffusion"], ["eval.horizon=1", "eval.ensemble=2", "eval.max_simulations=1",
                                                "diffusion.sampling_steps=1", "eval.tag=ddim1"])
    one = tagged.summary
    assert np.isfinite(one["vrmse_1"]) and one["vrmse_1"] != pytest.approx(s["vrmse_1"], rel=1e-6)
    assert tagged.out_dir == result.out_dir.parent / "test-ddim1"
    assert json.loads((result.out_dir / "summary.json").read_text())["summary"]["vrmse_1"] == s["vrmse_1"]
    assert json.loads((tagged.out_dir / "summary.json").read_text())["summary"]["vrmse_1"] == one["vrmse_1"]
    with pytest.raises(RsError, match=r"eval\.tag"):
        rs.evaluate(trained["diffusion"], ["eval.tag=../elsewhere"])
    with pytest.raises(RsError, match=r"diffusion\.num_steps is fixed by the checkpoint"):
        rs.evaluate(trained["diffusion"], ["diffusion.num_steps=10"])


def test_evaluate_refuses_unsafe_overrides_and_bad_checkpoints(trained, tmp_path):
    import rs

    with pytest.raises(RsError, match=r"model\.width is fixed by the checkpoint"):
        rs.evaluate(trained["surrogate"], ["model.width=32"])
    with pytest.raises(RsError, match="no such checkpoint"):
        rs.evaluate(tmp_path / "missing")
    truncated = tmp_path / "truncated"
    shutil.copytree(trained["surrogate"], truncated)
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(RsError, match="truncated"):
        rs.evaluate(truncated)
    foreign = tmp_path / "foreign"
    shutil.copytree(trained["surrogate"], foreign)
    (foreign / "meta.json").write_text(json.dumps({"format": "someone-else"}))
    with pytest.raises(RsError, match="unknown checkpoint format"):
        rs.evaluate(foreign)


def test_eval_cli_then_consolidate_build_and_query_real_runs(trained, tmp_path):
    surrogate_dir = trained["surrogate"].parent
    out = subprocess.run([sys.executable, "-m", "rs", "eval", "--checkpoint", str(surrogate_dir), "--set",
                          "eval.horizon=2"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "persistence" in out.stdout and "vrmse" in out.stdout
    assert subprocess.run([sys.executable, "-m", "rs", "catalog", "consolidate", str(surrogate_dir)], cwd=REPO,
                          capture_output=True).returncode == 0
    assert (surrogate_dir / "warm" / "eval-test.parquet").is_file()
    root = surrogate_dir.parent
    cat = tmp_path / "catalog"
    assert catalog.build(root, cat) == {"runs": 2, "added": 2}
    assert catalog.build(root, cat)["added"] == 0  # idempotent
    table = catalog.query(cat, "SELECT model_family, min(best_val_rel_l2) AS best FROM runs GROUP BY ALL "
                               "ORDER BY model_family").to_pylist()
    assert [r["model_family"] for r in table] == ["diffusion", "surrogate"]
    assert all(r["best"] > 0 for r in table)
    rows = catalog.query(cat, "model_family = 'surrogate'").to_pylist()
    assert len(rows) == 1 and json.loads(rows[0]["eval"])["test"]["summary"]["vrmse_1"] > 0
    with pytest.raises(RsError, match="catalog query failed"):
        catalog.query(cat, "no_such_column > 1")


def test_bench_catalog_prints_build_and_query_times():
    out = subprocess.run([sys.executable, "-m", "rs", "bench", "catalog", "--runs", "500", "--json"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["added"] == 500 and r["added_again"] == 0 and r["groups"] == 9
    assert r["build_s"] > 0 and r["query_s"] > 0


def test_catalog_of_a_tracked_runs_folder_holds_exactly_its_runs(data_root, ray_session, tmp_path, monkeypatch):
    """`make demo`'s tree: the local MLflow store beside the run (runs/mlflow.db, runs/mlartifacts/…) and W&B's
    offline files hold copies of config.resolved.yaml; only what `rs train` wrote is a run."""
    import rs.train

    monkeypatch.setenv("WANDB_MODE", "offline")
    runs = tmp_path / "runs"
    cfg = load_config(REPO / "configs/train/debug.yaml",
                      [f"data.root={data_root}", f"train.storage_path={runs}", *TINY, "train.num_workers=0",
                       "train.run_name=debug", "tracking.mlflow.local=true", "tracking.wandb.mode=offline"], env={})
    rs.train(cfg)
    copies = [p.parent for p in runs.rglob("config.resolved.yaml") if not p.parent.name.startswith("checkpoint_")]
    assert any("mlartifacts" in str(p) for p in copies), copies  # the trackers' copies are there to mislead
    assert catalog.find_runs(runs) == [runs / "debug"]
    assert catalog.build(runs, tmp_path / "catalog") == {"runs": 1, "added": 1}
    # A run directory written before the marker existed still counts by its checkpoints.
    (runs / "debug" / catalog.RUN_MARKER).unlink()
    assert catalog.find_runs(runs) == [runs / "debug"]
