"""The exact-solver continuation of a forecast (rs.eval.continuation) on real generated files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rs.config import load_config
from rs.data import layouts, synthetic, window
from rs.data.generate.write import generate
from rs.eval import metrics as M
from rs.eval.continuation import Physics, continuation_vrmse, continue_exact

FIELDS = ["phi", "c"]


@pytest.fixture(scope="module")
def fast(tmp_path_factory) -> Path:
    """Two fast simulations (V/Vc ≈ 4) whose window moves on most frames."""
    root = tmp_path_factory.mktemp("continuation")
    cfg = load_config(None, ["data.generate.grid=[24, 32]", "data.generate.frames=10",
                             "data.generate.frame_interval=1.0", "data.generate.velocity_range=[8e-4, 9e-4]",
                             "data.generate.simulations=[1, 1, 0]"], env={})
    generate(cfg.data.generate, root, FIELDS)
    return root


def _frames(root: Path) -> tuple[object, np.ndarray]:
    meta = layouts.open_split(str(root), "train", "A")[0]
    return meta, layouts.read_frames(meta, 0, meta.n_frames)


@pytest.mark.parametrize("history,stride", [(1, 1), (2, 2)])
def test_continuing_from_a_stored_frame_reproduces_the_simulation(fast, history, stride):
    meta, frames = _frames(fast)
    physics = Physics.of(meta)
    assert physics is not None
    start = history - 1 + stride
    steps = (meta.n_frames - 1 - start) // stride
    assert np.unique(physics.offsets[start:]).size >= 3  # the window moved, several times
    cont = continue_exact(physics, frames[start], start, stride, steps, FIELDS)
    truth = frames[start + stride * np.arange(1, steps + 1)]
    assert cont.shape == truth.shape
    np.testing.assert_allclose(cont, truth, atol=1e-4)


def test_continuation_is_returned_in_each_stored_frames_window(fast):
    meta, frames = _frames(fast)
    physics = Physics.of(meta)
    ahead = physics.offsets.copy()
    ahead[2:] += 3  # as if the stored window had been 3 cells further ahead from frame 2 on
    cont = continue_exact(dataclasses.replace(physics, offsets=ahead), frames[1], 1, 1, 4, FIELDS)
    np.testing.assert_allclose(cont, window.shift(frames[2:6], -3), atol=1e-4)


def test_a_displaced_front_gives_an_error_that_the_metric_reports(fast):
    meta, frames = _frames(fast)
    physics = Physics.of(meta)
    moved = np.roll(frames[1], 1, axis=-1)  # the front one cell ahead
    moved[..., 0] = frames[1][..., 0]
    cont = continue_exact(physics, moved, 1, 1, 5, FIELDS)
    err = M.vrmse(cont, frames[2:7]).mean(axis=-1)
    assert np.all(err > 1e-3)
    # Through the evaluation entry point: step 1 is the forecast's own error, then the solver's.
    point = np.concatenate([moved[None], cont[:2]])
    out = continuation_vrmse(meta, point, frames[1:4], 1, 1, FIELDS)
    assert out is not None and set(out) == {("continuation_vrmse", "phi"), ("continuation_vrmse", "c")}
    phi = out[("continuation_vrmse", "phi")]
    assert phi[0, 0] == pytest.approx(M.vrmse(moved[0], frames[1][0]), rel=1e-5)
    np.testing.assert_allclose(phi[1:, 0], M.vrmse(cont[:2, 0], frames[2:4, 0]), rtol=1e-4)
    assert np.isnan(phi[:, 1]).all()


def test_files_not_from_the_generator_have_no_continuation(tmp_path):
    meta = layouts.scan(synthetic.write_layout_a(tmp_path / "s.h5"))[0]
    assert Physics.of(meta) is None
    frames = layouts.read_frames(meta, 0, meta.n_frames)
    assert continuation_vrmse(meta, frames[1:3], frames[1:3], 1, 1, list(meta.fields)) is None
