"""Every bench generates (or reuses) the data it needs, so each runs from a fresh clone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rs.bench.common import REPO, SPLITS, default_config, ensure_data
from rs.data import synthetic

SMALL = ["data.generate.grid=[32, 32]", "data.generate.frames=9", "data.generate.simulations=[2, 1, 1]"]


@pytest.mark.parametrize("bench, config", [("train", "configs/train/debug.yaml"), ("tune", "configs/tune/debug.yaml"),
                                           ("skill", "configs/data/bench.yaml")])
def test_each_bench_generates_its_data_once(tmp_path: Path, bench: str, config: str):
    root = tmp_path / "data"
    grid = ["data.generate.process_grid=[2, 2]"] if bench == "skill" else []  # its V × G grid fixes the count
    overrides = [f"data.root={root}", *SMALL, *grid, "train.epochs=1"]  # non-data overrides are not the generator's
    assert ensure_data(REPO / config, root, overrides) > 0
    assert all((root / f"{split}.h5").is_file() for split in SPLITS)
    assert ensure_data(REPO / config, root, overrides) == 0.0  # reused, not regenerated


def test_a_users_own_files_are_never_overwritten(tmp_path: Path):
    for split in ("train", "valid", "test"):  # The Well's layout, with its own name for val
        (tmp_path / "data" / split).mkdir(parents=True)
        synthetic.write_layout_b(tmp_path / "data" / split / "part0.hdf5")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.hdf5")}
    assert ensure_data(REPO / "configs/train/debug.yaml", tmp_path, []) == 0.0
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.hdf5")} == before
    assert not list(tmp_path.rglob("*.h5"))


def test_default_configs_resolve_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert default_config("configs/train/debug.yaml") == REPO / "configs/train/debug.yaml"
    (tmp_path / "configs" / "train").mkdir(parents=True)
    shutil.copy(REPO / "configs/train/debug.yaml", tmp_path / "configs/train/debug.yaml")
    assert default_config("configs/train/debug.yaml") == tmp_path / "configs/train/debug.yaml"  # the user's own
