"""Moving-window alignment: samples in the newest input frame's window, rollouts back in the truth's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rs.config import load_config
from rs.data import layouts, synthetic, window
from rs.data.normalize import compute_stats
from rs.data.samples import SampleSpec, build_index, read_chunk

REPO = Path(__file__).resolve().parents[1]


def test_shift_moves_content_between_windows_in_numpy_and_torch():
    lab = np.arange(20.0)
    a, b = lab[3:13], lab[5:15]  # two windows, offsets 3 and 5
    seen = window.shift(b, 5 - 3)  # b seen from a's window
    np.testing.assert_array_equal(seen[2:], a[2:])
    assert (seen[:2] == b[0]).all(), "columns from behind the stored window repeat its edge"
    back = window.shift(a, 3 - 5)
    np.testing.assert_array_equal(back[:-2], b[:-2])
    assert (back[-2:] == a[-1]).all()
    for d in (-3, 0, 4):
        x = np.random.default_rng(d + 3).normal(size=(2, 3, 10))
        np.testing.assert_array_equal(window.shift(torch.from_numpy(x), d).numpy(), window.shift(x, d))


def test_shift_linear_is_exact_for_a_ramp():
    lab = 0.5 * np.arange(40.0) - 3.0  # a temperature ramp along x
    a = np.broadcast_to(lab[10:26], (3, 16)).copy()  # stored at offset 10, three rows
    for to in (4, 8, 13, 20):  # member windows behind and ahead, by more than one column
        np.testing.assert_allclose(window.shift_linear(a, 10 - to), np.broadcast_to(lab[to : to + 16], (3, 16)))
    np.testing.assert_array_equal(window.shift_linear(a, 0), a)


def _setup(tmp_path: Path, *sets: str):
    root = tmp_path / "mw"
    synthetic.write_moving_window(root / "train.h5")
    metas = layouts.open_split(root, "train")
    cfg = load_config(REPO / "configs/train/debug.yaml", [f"data.root={root}", *sets], env={})
    stats = compute_stats(metas, ["phi", "c"], list(cfg.data.cond_params))
    return cfg, metas, stats


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize("history,stride,unroll", [(1, 1, 1), (2, 1, 1), (1, 2, 3)])
def test_samples_are_expressed_in_the_newest_input_frames_window(tmp_path, align, history, stride, unroll):
    cfg, metas, stats = _setup(tmp_path, f"data.align_window={str(align).lower()}", f"data.history={history}",
                               f"data.stride={stride}", f"data.unroll_steps={unroll}")
    spec = SampleSpec.from_config(cfg.data)
    W = metas[0].width
    moved = 0
    for chunk in build_index(metas, spec, 64):
        m, i = chunk.meta, int(chunk.meta.key[-1]) - 1
        off = window.offsets(m)
        assert off is not None
        s = read_chunk(chunk, spec, stats, None)
        for r, f in enumerate(s["meta_frame"]):
            frames_in = list(range(f - history + 1, f + 1))
            frames_out = [f + stride * (k + 1) for k in range(unroll)]
            target = s["target"][r].reshape(unroll, 2, m.height, W)
            for slot, u in [*((("in", j), v) for j, v in enumerate(frames_in)),
                            *((("out", k), v) for k, v in enumerate(frames_out))]:
                base = off[f] if align else off[u]  # the window this frame is expressed in
                truth = synthetic.lab_fields(np.array([u]), np.arange(W)[None, :] + base, m.height,
                                             1.3 + 0.2 * i, seed=i)
                truth = stats.frames(truth, False, [0, 1])[0]
                got = s["input"][r, 2 * slot[1] : 2 * slot[1] + 2] if slot[0] == "in" else target[slot[1]]
                d = int(off[u] - off[f]) if align else 0
                keep = slice(d, None) if d >= 0 else slice(None, W + d)  # what the stored frame covers
                np.testing.assert_allclose(got[..., keep], truth[..., keep], atol=1e-5)
                moved += d != 0
    assert (moved > 0) == align, "the synthetic windows do move between the frames of a sample"


def test_rollout_keeps_a_frozen_field_still_in_the_lab_frame(tmp_path):
    """A model that predicts no change leaves the front where it was in the lab: in each later window the
    prediction is the first frame moved by the window's offset, and persistence is not."""
    from rs.eval.rollout import Simulation, rollout
    from rs.models.build import build_ema, build_model, set_delta_scale
    from rs.train.families import FAMILIES

    cfg, metas, stats = _setup(tmp_path)
    model = build_model(cfg).eval()
    set_delta_scale(model, [0.0, 0.0])  # residual model: prediction = its input frame
    m = metas[1]
    sim = Simulation.load(m, cfg, stats)
    assert sim.offsets is not None and sim.offsets[-1] > sim.offsets[0]
    pred = rollout(FAMILIES["surrogate"](cfg), model, build_ema(model, 0.9), sim, 1, 1, m.n_frames - 1, 1,
                   torch.Generator(), torch.device("cpu"))[0]
    W = m.width
    for k in range(1, m.n_frames):
        d = int(sim.offsets[k] - sim.offsets[0])
        frozen = sim.frames[0][..., d:] if d else sim.frames[0]
        np.testing.assert_allclose(pred[k - 1][..., : W - d], frozen, atol=1e-6)
    unaligned = load_config(REPO / "configs/train/debug.yaml", [f"data.root={Path(m.file).parent}",
                                                                 "data.align_window=false"], env={})
    assert Simulation.load(m, unaligned, stats).offsets is None


class _Advance:
    """A stand-in for a trained model whose front moves one cell per step in its input's window (slower than
    the synthetic truth's 1.3–1.5): records the mean solid length of every φ it is shown."""

    def __init__(self, rule: window.Rule):
        self.rule, self.fronts = rule, []

    def predict(self, model, ema, batch, generator):  # the Family.predict signature
        x = batch.input[:, -2:]
        phi = x[0, self.rule.channel] * self.rule.std + self.rule.mean
        self.fronts.append(float(((phi + 1) * 0.5).sum(-1).mean()))
        return window.shift(x, 1)


@pytest.mark.parametrize("by_rule", [True, False])
def test_rollout_moves_its_own_window_by_the_generators_rule(tmp_path, by_rule):
    """With the rule, the model's window follows the model's front (its input front stays at the target
    column, as in training) while the output, seen in the truth's window, is the same lab-frame field; with
    the stored offsets the slower model front drifts back through the window."""
    from dataclasses import replace

    from rs.eval.rollout import Simulation, rollout

    cfg, metas, stats = _setup(tmp_path)
    m = metas[1]  # truth front 1.5 cells per frame
    sim = Simulation.load(m, cfg, stats)
    assert sim.rule is not None and sim.rule.target == 10
    if not by_rule:
        sim = replace(sim, rule=None)
    fake = _Advance(window.Rule.of(m, ["phi", "c"], stats.channel_mean, stats.channel_std))
    steps = m.n_frames - 1
    pred = rollout(fake, None, None, sim, 1, 1, steps, 1, torch.Generator(), torch.device("cpu"))[0]
    W = m.width
    for k in range(1, steps + 1):  # frame 0 moved k cells ahead in the lab, seen from frame k's window
        d = k - int(sim.offsets[k] - sim.offsets[0])
        keep = slice(max(d, 0), W - 8 + min(d, 0))  # the far field ahead enters windows as a copy of their edge
        np.testing.assert_allclose(pred[k - 1][..., keep], window.shift(sim.frames[0], d)[..., keep], atol=1e-5)
    drift = fake.fronts[0] - min(fake.fronts)
    if by_rule:
        assert max(fake.fronts) < 11.5 and drift < 1.0, fake.fronts
    else:
        assert drift > 2.0, fake.fronts


def test_delta_std_measures_the_change_aligned_samples_see(tmp_path):
    from rs.data.normalize import delta_std

    _, metas, stats = _setup(tmp_path)
    diffs = []
    for m in metas:
        x, off = stats.frames(layouts.read_frames(m, 0, m.n_frames), False, [0, 1]), window.offsets(m)
        diffs += [window.shift(x[t + 1], int(off[t + 1] - off[t])) - x[t] for t in range(m.n_frames - 1)]
    d = np.stack(diffs, axis=1).reshape(2, -1)
    np.testing.assert_allclose(delta_std(metas, stats, 1, align=True), d.std(axis=1), rtol=1e-4)
    assert not np.allclose(delta_std(metas, stats, 1), d.std(axis=1), rtol=1e-2)


@pytest.mark.parametrize("history,stride", [(1, 1), (2, 1), (1, 2)])
def test_one_step_samples_are_the_training_samples(tmp_path, history, stride):
    """The one-step-from-every-frame evaluation feeds the model what training fed it, frame for frame."""
    from rs.eval.one_step import samples
    from rs.eval.rollout import Simulation

    cfg, metas, stats = _setup(tmp_path, f"data.history={history}", f"data.stride={stride}")
    spec = SampleSpec.from_config(cfg.data)
    for m in metas:
        x, y, cond = samples(Simulation.load(m, cfg, stats), history, stride)
        got = [read_chunk(c, spec, stats, None) for c in build_index([m], spec, 64)]
        order = np.argsort(np.concatenate([g["meta_frame"] for g in got]))
        for name, mine in (("input", x), ("target", y), ("cond", cond)):
            theirs = np.concatenate([g[name] for g in got])[order]
            np.testing.assert_allclose(mine, theirs.reshape(mine.shape), atol=1e-6, err_msg=name)


def test_rollouts_clip_to_the_train_range(tmp_path):
    """A model that doubles its input each step leaves the trained states within a few steps; with the train
    range as bounds every predicted value stays inside it, and without them it does not."""
    from rs.data.normalize import value_range
    from rs.eval.rollout import Simulation, rollout

    class Doubling:
        def predict(self, model, ema, batch, generator):  # the Family.predict signature
            return 2.0 * batch.input[:, -2:]

    cfg, metas, stats = _setup(tmp_path)
    lo, hi = value_range(metas, stats, max_sims=100, max_frames=100)
    every = np.concatenate([stats.frames(layouts.read_frames(m, 0, m.n_frames), False, [0, 1]) for m in metas])
    np.testing.assert_allclose(lo, every.min(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(hi, every.max(axis=(0, 2, 3)), rtol=1e-6)
    sim = Simulation.load(metas[0], cfg, stats)
    args = (Doubling(), None, None, sim, 1, 1, 6, 1, torch.Generator(), torch.device("cpu"))
    clipped, free = rollout(*args, bounds=(lo, hi))[0], rollout(*args)[0]
    for c in range(2):
        assert clipped[:, c].min() >= lo[c] - 1e-6 and clipped[:, c].max() <= hi[c] + 1e-6
    assert np.abs(free).max() > 4 * max(np.abs(lo).max(), np.abs(hi).max())


def test_rollout_thermal_channel_is_the_ramp_of_each_members_window(tmp_path):
    """A member whose window leaves the truth's sees the imposed temperature of its own window: still the
    exact linear ramp across every column (none copied from the stored window's edge)."""
    from rs.eval.rollout import Simulation, rollout

    cfg, metas, stats = _setup(tmp_path, "data.thermal_input=true")
    m = metas[1]
    sim = Simulation.load(m, cfg, stats)
    seen = []

    class Slow:  # a front one cell per step in its input's window, slower than the truth's
        def predict(self, model, ema, batch, generator):
            seen.append(batch.input[0, -1].numpy().copy())
            return window.shift(batch.input[:, :2], 1)

    rollout(Slow(), None, None, sim, 1, 1, m.n_frames - 1, 1, torch.Generator(), torch.device("cpu"))
    slope = float(np.diff(sim.thermal[0][0]).mean())
    moved = 0
    for k, th in enumerate(seen):
        np.testing.assert_allclose(np.diff(th, axis=-1), slope, rtol=1e-4, atol=1e-6)
        d = (th[0, 0] - sim.thermal[k][0, 0]) / slope  # cells between the member's window and the truth's
        assert abs(d - round(d)) < 1e-3
        moved = max(moved, abs(round(d)))
    assert moved >= 2, "the member's window never left the truth's: the test shows nothing"
