"""Autoregressive rollouts of one simulation from its first frames, and the persistence baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rs.config import ExperimentConfig
from rs.data import layouts, window
from rs.data.meta import SimulationMeta
from rs.data.normalize import Stats, channel_indices


@dataclass
class Simulation:
    """A whole simulation, normalized as training saw it."""

    meta: SimulationMeta
    frames: np.ndarray  # (F, C, H, W) z-scored
    thermal: np.ndarray | None  # (F, H, W) / thermal_scale, when an input channel
    cond: np.ndarray  # (F, P+1): process parameters and the time feature of each frame
    offsets: np.ndarray | None = None  # (F,) moving-window offsets when the model was trained window-aligned
    rule: window.Rule | None = None  # how the generator moved its window, to move the rollout's own the same way

    @classmethod
    def load(cls, meta: SimulationMeta, cfg: ExperimentConfig, stats: Stats) -> Simulation:
        d = cfg.data
        idx = channel_indices(meta, list(d.fields))
        frames = stats.frames(layouts.read_frames(meta, 0, meta.n_frames), meta.normalized, idx, inplace=True)
        thermal = None
        if d.thermal_input:
            thermal = layouts.read_thermal(meta, 0, meta.n_frames)[:, 0] / stats.thermal_scale
        times = layouts.LAYOUTS[meta.layout].read_series(meta, "time_phys_norm") if meta.layout == "A" else None
        F = meta.n_frames
        t_feat = np.asarray(times, np.float32) if times is not None else np.arange(F) / max(F - 1, 1)
        cond = np.concatenate([np.broadcast_to(stats.cond(meta), (F, len(stats.cond_names))),
                               np.asarray(t_feat, np.float32)[:, None]], axis=1).astype(np.float32)
        offsets = window.offsets(meta) if d.align_window else None
        rule = window.Rule.of(meta, list(d.fields), stats.channel_mean, stats.channel_std)
        return cls(meta, frames.astype(np.float32), None if thermal is None else thermal.astype(np.float32), cond,
                   offsets, rule if offsets is not None else None)

    def steps(self, history: int, stride: int, horizon: int) -> int:
        """Rollout steps available: the truth must exist for each."""
        return max(0, min(horizon, (self.meta.n_frames - history) // stride))


@torch.no_grad()
def rollout(family, model, ema, sim: Simulation, history: int, stride: int, steps: int, members: int,  # type: ignore[no-untyped-def]
            generator: torch.Generator, device: torch.device,
            bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> np.ndarray:
    """(members, steps, C, H, W) predictions of frames K−1+s·k, k = 1..steps, each fed back as history; each
    clipped per channel to `bounds` (lows, highs; z-scored) when given.
    With a moving window, each member keeps its own window: a prediction (made in its input's window) and the
    history move on by the generator's rule applied to the prediction (by the stored offsets when the file
    does not say the rule), and every output is returned in the true frame's window (a lab-frame comparison)."""
    from rs.data.source import Batch

    K, off = history, sim.offsets
    hist = torch.from_numpy(sim.frames[:K]).to(device)  # (K, C, H, W)
    if off is not None:  # the first input frames, in the newest one's window
        hist = torch.stack([window.shift(hist[j], int(off[j] - off[K - 1])) for j in range(K)])
    frames = hist.unsqueeze(0).expand(members, *hist.shape).clone()  # (E, K, C, H, W)
    own = np.full(members, 0 if off is None else off[K - 1], np.int64)  # each member's window offset
    lo, hi = (None, None) if bounds is None else (torch.tensor(b, device=device)[:, None, None] for b in bounds)
    out = []
    for k in range(steps):
        last = K - 1 + stride * k  # frame index of the newest input
        x = frames.flatten(1, 2)
        if sim.thermal is not None:  # the imposed field, seen from each member's window (a ramp along x)
            th = sim.thermal[last]
            th_E = np.stack([th if off is None else window.shift_linear(th, int(off[last] - own[e]))
                             for e in range(members)])
            x = torch.cat([x, torch.from_numpy(th_E).to(device, x.dtype).unsqueeze(1)], dim=1)
        cond = torch.from_numpy(sim.cond[last]).to(device).expand(members, -1)
        pred = family.predict(model, ema, Batch(x, None, cond, {}), generator)  # (E, C, H, W)
        if lo is not None:
            pred = torch.minimum(torch.maximum(pred, lo), hi)
        frames = torch.cat([frames[:, 1:], pred.unsqueeze(1)], dim=1)
        if off is None:
            out.append(frames[:, -1].float().cpu().numpy())
            continue
        nxt = last + stride
        new = [own[e] + (sim.rule.shift(frames[e, -1]) if sim.rule else int(off[nxt] - off[last]))
               for e in range(members)]
        frames = torch.stack([window.shift(frames[e], int(own[e] - new[e])) for e in range(members)])
        own = np.asarray(new, np.int64)
        out.append(torch.stack([window.shift(frames[e, -1], int(own[e] - off[nxt])) for e in range(members)])
                   .float().cpu().numpy())
    return np.stack(out, axis=1) if out else np.zeros((members, 0, *sim.frames.shape[1:]), np.float32)


def truth_and_persistence(sim: Simulation, history: int, stride: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, C, H, W) true frames, and the persistence forecast x_{t+k} = x_t (the last input frame)."""
    idx = history - 1 + stride * np.arange(1, steps + 1)
    truth = sim.frames[idx]
    persistence = np.broadcast_to(sim.frames[history - 1], truth.shape)
    return truth, persistence
