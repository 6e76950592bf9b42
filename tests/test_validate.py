"""Bad files: each gets a clear `FILE:/group/dataset: reason` line and a non-zero exit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from rs.data import layouts, synthetic
from rs.data.meta import DataError
from rs.data.validate import validate

REPO = Path(__file__).resolve().parents[1]


def _edit(path: Path, fn) -> Path:
    with h5py.File(path, "a") as f:
        fn(f)
    return path


def _replace(f, name, data):
    del f[name]
    f[name] = data


def not_hdf5(p: Path) -> Path:
    p.write_text("phi,c\n1,2\n")
    return p


def truncated(p: Path) -> Path:
    synthetic.write_layout_a(p, T=20, H=32, W=32)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


CASES = {
    "not_hdf5": (not_hdf5, r"not\.h5: not an HDF5 file"),
    "truncated": (truncated, r"truncated\.h5: truncated or corrupt HDF5 file"),
    "missing_images": (lambda p: _edit(synthetic.write_layout_a(p), lambda f: f["sim_0002"].__delitem__("images")),
                       r":/sim_0002/images: missing"),
    "wrong_rank": (lambda p: _edit(synthetic.write_layout_a(p),
                                   lambda f: _replace(f, "sim_0001/images", np.zeros((4, 8, 8), np.float32))),
                   r":/sim_0001/images: rank 3, expected 4"),
    "zero_frames": (lambda p: _edit(synthetic.write_layout_a(p), lambda f: (
        _replace(f, "sim_0001/images", np.zeros((0, 2, 8, 8), np.float32)), f["sim_0001"].__delitem__("times"),
        f["sim_0001"].__delitem__("time_phys"))), r":/sim_0001/images: zero frames"),
    "nan_frames": (lambda p: _edit(synthetic.write_layout_a(p), lambda f: f["sim_0002/images"].__setitem__(
        (3, 1, 2, 2), np.nan)), r":/sim_0002/images: non-finite values \(NaN/Inf\) in 1 frame\(s\): 3"),
    "inf_frames": (lambda p: _edit(synthetic.write_layout_a(p), lambda f: f["sim_0001/images"].__setitem__(
        (0, 0, 0, 0), np.inf)), r":/sim_0001/images: non-finite .*: 0"),
    "non_monotone_times": (lambda p: _edit(synthetic.write_layout_a(p),
                                           lambda f: f["sim_0001/times"].__setitem__(4, 1)),
                           r":/sim_0001/times: not strictly increasing \(index 4: 3 -> 1\)"),
    "thermal_shape": (lambda p: _edit(synthetic.write_layout_a(p, H=16, W=16), lambda f: f["sim_0001"].create_dataset(
        "thermal_field", data=np.zeros((6, 1, 8, 16), np.float32))),
        r":/sim_0001/thermal_field: shape \(6, 1, 8, 16\) disagrees with images; expected \(6, 1, 16, 16\)"),
    "fields_mismatch": (lambda p: _edit(synthetic.write_layout_a(p), lambda f: f.attrs.__setitem__(
        "fields", np.array(["phi", "c", "T"], dtype=h5py.string_dtype()))),
        r":/@fields: 3 names \['phi', 'c', 'T'\] but .*/sim_0001/images has 2 channels"),
    "layout_b_bad_shape": (lambda p: _edit(synthetic.write_layout_b(p), lambda f: _replace(
        f, "t0_fields/c", np.zeros((2, 6, 16, 5), np.float32))), r":/t0_fields/c: shape \(2, 6, 16, 5\), expected"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_is_reported(case: str, tmp_path: Path):
    build, pattern = CASES[case]
    name = {"not_hdf5": "not.h5", "truncated": "truncated.h5"}.get(case, f"{case}.h5")
    path = build(tmp_path / name)
    problems = validate(path)
    assert problems, f"{case} passed validation"
    assert any(re.search(pattern, p) for p in problems), problems
    assert all(p.startswith(str(path)) for p in problems)


def test_good_files_pass(tmp_path: Path):
    assert validate(synthetic.write_layout_a(tmp_path / "a.h5")) == []
    assert validate(synthetic.write_layout_b(tmp_path / "b.hdf5")) == []


def test_readers_refuse_bad_files_with_one_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match=r"truncated\.h5: truncated or corrupt"):
        layouts.scan(truncated(tmp_path / "truncated.h5"))
    with pytest.raises(DataError, match=r"sim_0002/images: missing"):
        layouts.scan(CASES["missing_images"][0](tmp_path / "m.h5"))


def test_cli_lists_problems_and_exits_nonzero(tmp_path: Path):
    good = synthetic.write_layout_a(tmp_path / "good.h5")
    bad = CASES["nan_frames"][0](tmp_path / "bad.h5")
    run = lambda *files: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "rs", "data", "validate", *map(str, files)], capture_output=True, text=True,
        cwd=REPO, env=os.environ)
    ok = run(good)
    assert ok.returncode == 0 and "ok: 1 file(s) valid" in ok.stdout
    proc = run(good, bad)
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines() == [f"{bad}:/sim_0002/images: non-finite values (NaN/Inf) in 1 frame(s): 3"]
    assert "Traceback" not in proc.stderr


def test_cli_inspect_prints_summary_and_png(tmp_path: Path):
    path = synthetic.write_layout_a(tmp_path / "a.h5", H=24, W=24)
    proc = subprocess.run([sys.executable, "-m", "rs", "data", "inspect", str(path), "--png", str(tmp_path / "m.png")],
                          capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    assert "layout A, 2 simulations" in proc.stdout and "(T, C, H, W) = (6, 2, 24, 24)" in proc.stdout
    assert "phi [" in proc.stdout and "@fields = ['phi', 'c']" in proc.stdout
    png = (tmp_path / "m.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    missing = subprocess.run([sys.executable, "-m", "rs", "data", "inspect", str(tmp_path / "nope.h5")],
                             capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'nope.h5'}: file not found"
