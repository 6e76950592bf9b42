"""The skill benchmark at reduced size (slow): both models must beat persistence on held-out simulations,
so a regression in what the models learn is caught, not only one in whether they run."""

from __future__ import annotations

import pytest
from conftest import REPO

from rs.bench import skill


@pytest.mark.slow
def test_reduced_skill_benchmark_beats_persistence(tmp_path, ray_session):
    overrides = [f"data.root={tmp_path / 'data'}", "data.generate.grid=[32, 32]", "data.generate.frames=40",
                 "data.generate.process_grid=[4, 3]", "data.generate.simulations=[8, 2, 2]",
                 "train.epochs=4", "model.width=16"]
    configs = {m: REPO / f"configs/train/bench_{m}.yaml" for m in skill.MODELS}
    r = skill.run(REPO / "configs/data/bench.yaml", configs, tmp_path / "runs", overrides, horizon=20)
    assert r["generate_s"] > 0 and r["surrogate_epochs"] == 4 == r["diffusion_epochs"]
    assert r["surrogate_vrmse_1"] < 0.5 * r["persistence_vrmse_1"], r
    assert r["surrogate_vrmse_20"] < r["persistence_vrmse_20"], r
    assert r["diffusion_vrmse_1"] < r["persistence_vrmse_1"], r
    assert set(r["targets"]) and "surrogate_vrmse_1 <= 0.02" in skill.table(r).replace("—", "")
