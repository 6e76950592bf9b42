"""Layout A and layout B behind one reader interface."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from rs.data import layouts, synthetic
from rs.data.meta import DataError


def test_layout_a_scan_and_read_match_what_was_written(tmp_path: Path):
    path = synthetic.write_layout_a(tmp_path / "train.h5", n_sims=2, T=6, H=16, W=20)
    sims = layouts.scan(path)
    assert layouts.sniff(path) == "A" and [m.key for m in sims] == ["sim_0001", "sim_0002"]
    m = sims[1]
    assert m.shape == (6, 2, 16, 20) and m.fields == ("phi", "c") and not m.normalized
    assert m.params["pulling_speed"] == pytest.approx(2e-4)
    np.testing.assert_array_equal(layouts.read_frames(m, 2, 5), synthetic.frames(6, 16, 20, seed=1)[2:5])
    assert pickle.loads(pickle.dumps(m)) == m  # crosses process boundaries as plain data


def test_origin_file_names_and_absent_optional_items(tmp_path: Path):
    path = tmp_path / "simulation_val.h5"
    with h5py.File(path, "w") as f:  # only what is required: images
        f.create_group("sim_0007").create_dataset("images", data=np.zeros((3, 1, 8, 8), np.float32))
    assert layouts.split_paths(tmp_path, "val") == [path]
    (m,) = layouts.open_split(tmp_path, "val")
    assert m.shape == (3, 1, 8, 8) and m.fields == ("ch0",) and m.channel_mean is None and not m.has_thermal


def test_normalized_images_are_flagged_not_renormalized(tmp_path: Path):
    raw = synthetic.write_layout_a(tmp_path / "a.h5", normalized=False)
    z = synthetic.write_layout_a(tmp_path / "b.h5", normalized=True)
    (m_raw, _), (m_z, _) = layouts.scan(raw), layouts.scan(z)
    assert not m_raw.normalized and m_z.normalized
    frames_z = layouts.read_frames(m_z, 0, 6)
    mean, std = np.array(m_z.channel_mean), np.array(m_z.channel_std)
    # Stored z-scores come back untouched; de-normalizing them with the stored stats gives physics.
    np.testing.assert_allclose(frames_z * std[None, :, None, None] + mean[None, :, None, None],
                               layouts.read_frames(m_raw, 0, 6), atol=1e-5)


def test_thermal_field_derived_from_attrs(tmp_path: Path):
    path = synthetic.write_layout_a(tmp_path / "t.h5", n_sims=1, T=3, H=4, W=8)
    (m,) = layouts.scan(path)
    th = layouts.read_thermal(m, 0, 3)
    assert th.shape == (3, 1, 4, 8)
    dx, G, V = 2e-7, 1e6, 1e-4
    t = np.arange(3) * 1e-4
    x = (np.arange(8) + 0.5) * dx
    expected = G * (x[None, :] - 2.0 * dx - V * t[:, None])  # x0_dx = W/4 = 2
    np.testing.assert_allclose(th[:, 0, 0, :], expected, rtol=1e-5)
    np.testing.assert_array_equal(th[:, 0, 0], th[:, 0, 3])


def test_layout_b_dummy_from_the_well_package(tmp_path: Path):
    from the_well.utils.dummy_data import write_dummy_data

    path = tmp_path / "dummy.hdf5"
    write_dummy_data(str(path))
    assert layouts.sniff(path) == "B"
    sims = layouts.scan(path)
    assert len(sims) == 2
    m = sims[1]
    # t0 constant_field (time-invariant, broadcast) + t1 field's two components.
    assert m.fields == ("constant_field", "field_x", "field_y") and m.shape == (10, 3, 32, 32)
    frames = layouts.read_frames(m, 3, 7)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(frames[:, 0], np.broadcast_to(f["t0_fields/constant_field"][1], (4, 32, 32)))
        np.testing.assert_array_equal(frames[:, 2], f["t1_fields/field"][1, 3:7, ..., 1])
    assert m.params["a"] == 0.25 and m.params["b"] == 0.75


def test_layout_b_split_directory_like_the_well(tmp_path: Path):
    (tmp_path / "train").mkdir()
    synthetic.write_layout_b(tmp_path / "train" / "part0.hdf5", n_traj=2, T=6, H=16, W=12)
    synthetic.write_layout_b(tmp_path / "train" / "part1.hdf5", n_traj=1, T=6, H=16, W=12, seed=5)
    sims = layouts.open_split(tmp_path, "train")
    assert len(sims) == 3 and {m.layout for m in sims} == {"B"}
    m = sims[0]
    assert m.fields == ("phi", "c", "flow_x", "flow_y") and m.grid == (16, 12)
    np.testing.assert_array_equal(layouts.read_frames(m, 0, 6)[:, :2], synthetic.frames(6, 16, 12, seed=0))
    assert sims[1].params["G"] == pytest.approx(2e6) and sims[0].params["V"] == pytest.approx(1e-4)


def test_forced_layout_and_clear_errors(tmp_path: Path):
    path = synthetic.write_layout_a(tmp_path / "a.h5")
    assert layouts.scan(path, "A")[0].layout == "A"
    with pytest.raises(DataError, match="unknown layout 'C'"):
        layouts.scan(path, "C")
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(DataError, match=r"empty\.h5: neither layout A .* nor layout B"):
        layouts.scan(empty)
    with pytest.raises(DataError, match=r"no test split .*rs data generate"):
        layouts.split_paths(tmp_path, "test")
    shutil.copy(path, tmp_path / "copy.h5")
    with pytest.raises(DataError, match=r"frames \[4, 9\) outside"):
        layouts.read_frames(layouts.scan(tmp_path / "copy.h5")[0], 4, 9)


@pytest.mark.parametrize("normalized", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
def test_delta_std_is_the_std_of_the_normalized_change(tmp_path: Path, normalized: bool, stride: int):
    from rs.data.normalize import compute_stats, delta_std

    path = synthetic.write_layout_a(tmp_path / "a.h5", n_sims=3, T=7, normalized=normalized)
    metas = layouts.scan(path)
    stats = compute_stats(metas, ["phi", "c"], [])
    z = [stats.frames(synthetic.frames(7, 16, 16, seed=i), False, [0, 1]) for i in range(3)]
    d = np.concatenate([(f[stride:] - f[:-stride]).transpose(1, 0, 2, 3).reshape(2, -1) for f in z], axis=1)
    np.testing.assert_allclose(delta_std(metas, stats, stride), d.std(axis=1), rtol=1e-4)
    # bounded reads: two simulations × three pairs still give the right order of magnitude
    few = delta_std(metas, stats, stride, max_sims=2, max_pairs=3)
    assert all(0.3 < a / b < 3 for a, b in zip(few, d.std(axis=1), strict=True))


def test_series_and_frame_datasets_are_looked_up_once_per_file_version(tmp_path: Path):
    """Read tasks ask for the same per-frame series and frame dataset for every chunk: they are kept per
    file version (series read-only), and a rewritten file is read again."""
    path = tmp_path / "train.h5"
    tmp = tmp_path / "train.h5.tmp"

    def write(offsets: list[int], fill: float = 0.0) -> layouts.SimulationMeta:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("sim_0001")
            g.create_dataset("images", data=np.full((3, 1, 4, 4), fill, np.float32))
            g.create_dataset("window_offset", data=np.array(offsets))
        tmp.replace(path)  # how the generator writes: temp name, then rename (a new inode)
        (m,) = layouts.scan(path)
        return m

    m = write([0, 1, 2])
    first = layouts.LAYOUTS["A"].read_series(m, "window_offset")
    assert first.tolist() == [0, 1, 2] and not first.flags.writeable
    assert layouts.LAYOUTS["A"].read_series(m, "window_offset") is first  # no second read
    assert layouts.LAYOUTS["A"].read_series(m, "time_phys_norm") is None
    assert layouts.read_frames(m, 0, 3).sum() == 0
    m = write([0, 2, 5], fill=1.0)
    assert layouts.LAYOUTS["A"].read_series(m, "window_offset").tolist() == [0, 2, 5]
    assert layouts.read_frames(m, 0, 3).sum() == 3 * 16  # frames are looked up again in the new file
    path.unlink()
    with pytest.raises(DataError, match=r"train\.h5: file not found"):
        layouts.LAYOUTS["A"].read_series(m, "window_offset")


def test_scans_are_remembered_on_disk_per_file_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A scan reads every group's attributes (seconds for a thousand simulations); another process reuses
    it from the cache directory until the file changes; a damaged entry is rescanned, never an error."""
    from rs.data import scan_cache

    monkeypatch.setenv(scan_cache.ENV, str(tmp_path / "cache"))
    path = synthetic.write_layout_a(tmp_path / "train.h5", n_sims=3, T=6, H=8, W=8)
    first = layouts.scan(path)
    assert len(list((tmp_path / "cache" / "scans").glob("*.json"))) == 1
    layouts._SCANS.clear()  # as a new process: only the disk remembers
    real = layouts.LAYOUTS["A"].scan
    monkeypatch.setattr(layouts.LAYOUTS["A"], "scan", lambda p: pytest.fail("scanned again"))
    again = layouts.scan(path)
    assert again == first and [m.params for m in again] == [m.params for m in first]
    assert isinstance(again[0].fields, tuple) and again[0].file == str(path)
    monkeypatch.setattr(layouts.LAYOUTS["A"], "scan", real)
    synthetic.write_layout_a(tmp_path / "new.h5", n_sims=2, T=6, H=8, W=8).replace(path)  # rewritten
    assert [m.key for m in layouts.scan(path)] == ["sim_0001", "sim_0002"]
    layouts._SCANS.clear()
    for e in (tmp_path / "cache" / "scans").glob("*.json"):
        e.write_text("{not json")
    assert [m.key for m in layouts.scan(path)] == ["sim_0001", "sim_0002"]  # damaged: scanned again
    layouts._SCANS.clear()
    monkeypatch.setenv(scan_cache.ENV, "")  # off
    shutil.rmtree(tmp_path / "cache")
    assert len(layouts.scan(path)) == 2 and not (tmp_path / "cache").exists()
