"""A dataset in The Well's own directory layout — `<dataset>/data/{train,valid,test}/*.hdf5` beside
`<dataset>/stats.yaml` — with the_well's own HDF5 conventions (its dummy writer: a time-constant t0 field,
a t1 vector field): found from either folder, normalized with stats.yaml, trained and evaluated by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from rs.data import layouts
from rs.data.meta import DataError
from rs.data.normalize import compute_stats

REPO = Path(__file__).resolve().parents[1]
FIELDS = ["constant_field", "field_x", "field_y"]


def _well_stats(files: list[Path]) -> dict:
    """stats.yaml as The Well computes it over train: per field, scalars for t0 and per-component lists for t1."""
    with h5py.File(files[0]) as f0:
        names = {"t0": list(f0["t0_fields"]), "t1": list(f0["t1_fields"])}
    out: dict = {k: {} for k in ("mean", "std", "mean_delta", "std_delta", "rms", "rms_delta")}
    for order, axes in (("t0", None), ("t1", (0, 1, 2, 3))):
        for name in names[order]:
            x = np.concatenate([h5py.File(p)[f"{order}_fields/{name}"][()] for p in files]).astype(np.float64)
            d = np.diff(x, axis=1) if x.ndim == 5 else np.zeros_like(x)
            red = axes if axes else None
            for key, v in (("mean", x.mean(red)), ("std", x.std(red)), ("rms", np.sqrt((x**2).mean(red))),
                           ("mean_delta", d.mean(red)), ("std_delta", d.std(red)),
                           ("rms_delta", np.sqrt((d**2).mean(red)))):
                out[key][name] = np.asarray(v).tolist()
    return out


@pytest.fixture(scope="module")
def well(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from the_well.utils.dummy_data import write_dummy_data

    root = tmp_path_factory.mktemp("wells") / "dummy_dataset"
    np.random.seed(0)  # the_well's writer draws from numpy's global generator
    for split, n in (("train", 2), ("valid", 1), ("test", 1)):
        (root / "data" / split).mkdir(parents=True)
        for i in range(n):
            write_dummy_data(str(root / "data" / split / f"dummy_{i}.hdf5"))
    stats = _well_stats(sorted((root / "data" / "train").glob("*.hdf5")))
    (root / "stats.yaml").write_text(yaml.safe_dump(stats))
    return root


def test_splits_are_found_from_the_dataset_folder_and_its_data_folder(well: Path):
    for root in (well, well / "data"):
        assert layouts.split_paths(root, "val") == [well / "data" / "valid" / "dummy_0.hdf5"]
        assert len(layouts.open_split(root, "train")) == 4  # 2 files × 2 trajectories
    with pytest.raises(DataError, match=r"no val split \(looked for val\.h5, simulation_val\.h5, val/\*\.hdf5, "
                                        r"valid/\*\.hdf5, data/val/\*\.hdf5, data/valid/\*\.hdf5\)"):
        layouts.split_paths(well / "data" / "train", "val")


def test_stats_yaml_is_used_for_normalization_and_is_the_wells_format(well: Path):
    from the_well.data.normalization import ZScoreNormalization

    stats = yaml.safe_load((well / "stats.yaml").read_text())
    ZScoreNormalization(stats, ["field"], ["constant_field"])  # the_well itself accepts the file
    got = compute_stats(layouts.open_split(well, "train"), FIELDS, ["a", "b"])
    want_mean = [stats["mean"]["constant_field"], *stats["mean"]["field"]]
    want_std = [stats["std"]["constant_field"], *stats["std"]["field"]]
    np.testing.assert_allclose(got.channel_mean, want_mean)
    np.testing.assert_allclose(got.channel_std, want_std)
    assert got.source == str(well / "stats.yaml")
    # A subset of fields in another order takes the matching components.
    sub = compute_stats(layouts.open_split(well / "data", "train"), ["field_y", "constant_field"], [])
    np.testing.assert_allclose(sub.channel_mean, [stats["mean"]["field"][1], stats["mean"]["constant_field"]])


def test_without_stats_yaml_statistics_are_computed_and_a_bad_one_is_named(well: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(well / "data", copy / "data")
    computed = compute_stats(layouts.open_split(copy, "train"), FIELDS, [])
    assert computed.source == "computed over 4 train simulations"
    stats = yaml.safe_load((well / "stats.yaml").read_text())
    np.testing.assert_allclose(computed.channel_mean, [stats["mean"]["constant_field"], *stats["mean"]["field"]],
                               rtol=1e-5)  # the streamed pass agrees with The Well's own numbers
    del stats["std"]["field"]
    (copy / "stats.yaml").write_text(yaml.safe_dump(stats))
    with pytest.raises(DataError, match=r"copy/stats\.yaml: no std for field 'field'; add it, or remove stats"):
        layouts.open_split(copy, "train")


def test_cli_trains_and_evaluates_on_the_wells_layout(well: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    sets = [f"data.root={well / 'data'}", f"data.fields={json.dumps(FIELDS)}", "data.cond_params=[a, b]",
            f"train.storage_path={tmp_path / 'runs'}", "train.run_name=well", "train.epochs=1",
            "train.num_workers=0", "cluster.num_cpus=2", "cluster.object_store_mb=128"]
    args = [a for s in sets for a in ("--set", s)]
    train = subprocess.run([sys.executable, "-m", "rs", "train", "configs/train/debug.yaml", *args], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-3000:]
    assert f"normalization from {well / 'stats.yaml'}" in train.stdout
    assert "best val_rel_l2" in train.stdout
    run = tmp_path / "runs" / "well"
    ev = subprocess.run([sys.executable, "-m", "rs", "eval", "--checkpoint", str(run)], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stdout[-2000:] + ev.stderr[-3000:]
    summary = json.loads((run / "eval" / "test" / "summary.json").read_text())
    assert summary, summary
    flat = json.dumps(summary)
    assert "rel_l2" in flat and "NaN" not in flat
