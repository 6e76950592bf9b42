"""`rs data generate`: files of layout A, split by simulation, train-only statistics, reproducible,
atomic; the debug dataset develops cells above the instability threshold and stays planar below."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from rs.config import ConfigError, load_config
from rs.data import layouts
from rs.data.generate import write as write_mod
from rs.data.validate import validate

REPO = Path(__file__).resolve().parents[1]
SMALL = ["data.generate.grid=[32, 32]", "data.generate.frames=5", "data.generate.simulations=[3, 1, 1]"]


def run_generate(out: Path, *sets: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "rs", "data", "generate", "--config", "configs/data/debug.yaml", "--out", str(out)]
    for s in sets:
        argv += ["--set", s]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=os.environ)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    proc = run_generate(out, *SMALL)
    assert proc.returncode == 0, proc.stderr
    assert "5 simulations, 25 frames" in proc.stdout and "cell-updates/s" in proc.stdout
    return out


def test_writes_three_valid_split_files_and_manifest(small: Path):
    assert sorted(p.name for p in small.iterdir()) == ["manifest.json", "test.h5", "train.h5", "val.h5"]
    for split in ("train", "val", "test"):
        assert validate(small / f"{split}.h5") == []
    names = {s: {m.key for m in layouts.open_split(small, s)} for s in ("train", "val", "test")}
    assert [len(v) for v in names.values()] == [3, 1, 1]
    assert not (names["train"] & names["val"]) and not (names["train"] & names["test"])
    manifest = json.loads((small / "manifest.json").read_text())
    assert len(manifest["simulations"]) == 5 and {"seed", "pulling_speed", "split"} <= set(manifest["simulations"][0])


def test_layout_a_attrs_and_train_only_statistics(small: Path):
    with h5py.File(small / "train.h5") as f:
        train = np.concatenate([f[k]["images"][()] for k in f if k.startswith("sim_")])
        mean, std = f.attrs["channel_mean"], f.attrs["channel_std"]
        g = f["sim_0001"]
        assert g["images"].dtype == np.float32 and g["images"].chunks == (1, 2, 32, 32)
        assert g["images"].compression == "lzf"
        assert g.attrs["norm_type_images"] == "none"
        for key in ("effective_dt", "dx", "W0", "pulling_speed", "thermal_gradient_raw", "tau0", "x0_dx",
                    "partition_coefficient", "liquidus_slope", "gibbs_thomson", "diffusivity", "dt", "seed"):
            assert key in g.attrs, key
        assert list(f.attrs["fields"]) == ["phi", "c"]
        assert np.all(np.diff(g["time_phys"][()]) > 0)
    np.testing.assert_allclose(mean, train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(std, train.std(axis=(0, 2, 3)), rtol=1e-4)
    with h5py.File(small / "test.h5") as f:
        np.testing.assert_array_equal(f.attrs["channel_mean"], mean)  # test carries train stats
    phi = train[:, 0]
    assert phi.min() >= -1.01 and phi.max() <= 1.01
    c = train[:, 1]
    k = 0.15
    assert c.min() > 0.9 * k * 1.0 and c.max() < 1.0 / k * 1.5  # between k·c∞ and ~c∞/k (wt%)


def test_bit_for_bit_reproducible(small: Path, tmp_path: Path):
    proc = run_generate(tmp_path, *SMALL)
    assert proc.returncode == 0, proc.stderr
    for name in ("train.h5", "val.h5", "test.h5", "manifest.json"):
        assert sha(tmp_path / name) == sha(small / name), name
    other = tmp_path / "other"
    assert run_generate(other, *SMALL, "data.generate.seed=1").returncode == 0
    assert sha(other / "train.h5") != sha(small / "train.h5")


def test_interrupted_write_leaves_no_half_file(tmp_path: Path, monkeypatch):
    gen = load_config(REPO / "configs/data/debug.yaml", SMALL, env={}).data.generate
    real = write_mod._group

    def failing(gen_, r, *a):
        if r.spec.split == "val":
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C while val.h5 was being written
        return real(gen_, r, *a)

    monkeypatch.setattr(write_mod, "_group", failing)
    with pytest.raises(KeyboardInterrupt):
        write_mod.generate(gen, tmp_path, ["phi", "c"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.h5"]  # complete, and nothing else
    assert validate(tmp_path / "train.h5") == []


def test_debug_dataset_has_cells_above_and_planar_fronts_below_threshold(tmp_path: Path):
    proc = run_generate(tmp_path)
    assert proc.returncode == 0, proc.stderr
    sims = [m for s in ("train", "val", "test") for m in layouts.open_split(tmp_path, s)]
    assert len(sims) == 12
    amplitude = {}
    for m in sims:
        phi = layouts.read_frames(m, m.n_frames - 1, m.n_frames)[0, 0]
        front = ((phi + 1) / 2).sum(axis=1)  # solid cells per row
        amplitude[m.params["velocity_over_critical"]] = front.max() - front.min()
    ratios = sorted(amplitude)
    assert ratios[0] < 0.8 and ratios[-1] > 2.5, ratios  # the set crosses the threshold
    assert all(amplitude[r] < 2.0 for r in ratios if r < 0.8), amplitude
    assert all(amplitude[r] > 8.0 for r in ratios if r > 2.5), amplitude


def test_process_grid_covers_every_point_once_and_holds_out_val_and_test():
    from rs.data.generate.run import sample_specs

    cfg = load_config(REPO / "configs/data/bench.yaml", env={})
    specs = sample_specs(cfg.data.generate)
    points = {(round(s.velocity, 12), round(s.gradient, 12)) for s in specs}
    assert len(specs) == len(points) == 32  # 8 V × 4 G, each once
    assert len({round(s.velocity, 12) for s in specs}) == 8 and len({round(s.gradient, 12) for s in specs}) == 4
    by_split = {sp: {(s.velocity, s.gradient) for s in specs if s.split == sp} for sp in ("train", "val", "test")}
    assert [len(by_split[sp]) for sp in ("train", "val", "test")] == [24, 4, 4]
    assert not by_split["test"] & by_split["train"] and not by_split["val"] & by_split["train"]
    assert sample_specs(cfg.data.generate) == specs  # seeded: the same order every time
    with pytest.raises(ConfigError, match=r"process_grid \[8, 4\] has 32 points but simulations"):
        load_config(REPO / "configs/data/bench.yaml", ["data.generate.simulations=[20, 4, 4]"], env={})
