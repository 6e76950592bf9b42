"""Moving-window coordinates. Layout A's generator keeps the front near a fixed column by shifting the
window a whole number of cells (`window_offset`, per frame) whenever the front passes it, so consecutive
stored frames differ by the physics plus an integer shift that depends discontinuously on the front
position. With `data.align_window` every frame of a sample is re-expressed in its newest input frame's
window, so models learn the change in one fixed frame; rollouts then apply the stored offsets as a change
of coordinates, never as information about the physics (the front stays where the model put it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:  # read tasks import this module: keep torch out of them
    import torch

    A = TypeVar("A", np.ndarray, torch.Tensor)
else:
    A = TypeVar("A")


def shift(x: A, d: int) -> A:
    """`x` (..., W) seen from a window `d` cells further back: new[..., j] = x[..., j − d]. The columns that
    enter from outside the stored window repeat the edge column (deep solid behind, far liquid ahead)."""
    if d == 0:
        return x
    W = x.shape[-1]
    d = max(-W + 1, min(W - 1, d))
    if not isinstance(x, np.ndarray):  # a torch tensor
        import torch

        if d > 0:
            return torch.cat([x[..., :1].expand(*x.shape[:-1], d), x[..., : W - d]], dim=-1)
        return torch.cat([x[..., -d:], x[..., -1:].expand(*x.shape[:-1], -d)], dim=-1)
    out = np.empty_like(x)
    if d > 0:
        out[..., d:] = x[..., : W - d]
        out[..., :d] = x[..., :1]
    else:
        out[..., : W + d] = x[..., -d:]
        out[..., W + d :] = x[..., -1:]
    return out


def shift_linear(x: np.ndarray, d: int) -> np.ndarray:
    """`shift`, with the entering columns continuing the edge slope instead of repeating the edge: exact for a
    field linear in x, such as the imposed temperature of the frozen-temperature approximation."""
    W = x.shape[-1]
    d = max(-W + 2, min(W - 2, d))  # two stored columns must remain to give the slope
    out = shift(x, d)
    if d > 0:
        slope = out[..., d + 1 : d + 2] - out[..., d : d + 1]
        out[..., :d] = out[..., d : d + 1] - slope * np.arange(d, 0, -1)
    elif d < 0:
        e = W + d - 1  # the last column kept
        slope = out[..., e : e + 1] - out[..., e - 1 : e]
        out[..., e + 1 :] = out[..., e : e + 1] + slope * np.arange(1, -d + 1)
    return out


def offsets(meta: Any) -> np.ndarray | None:
    """The simulation's per-frame window offsets (cells), or None when it has none or never shifts."""
    from rs.data import layouts

    if meta.layout != "A":
        return None
    off = layouts.LAYOUTS["A"].read_series(meta, "window_offset")
    if off is None or len(off) != meta.n_frames or not np.any(np.diff(off)):
        return None
    return np.asarray(off, np.int64)


def rule_shift(phi_HW: Any, target: int) -> int:
    """Cells the generator's window would advance for this raw φ (−1 liquid … 1 solid) in the previous frame's
    window: floor(mean solid length − target), never backwards (solver.shift_window)."""
    front = float(((phi_HW + 1.0) * 0.5).sum(-1).mean())
    return max(0, int(np.floor(front - target)))


@dataclass(frozen=True)
class Rule:
    """The generator's window rule for z-scored frames: where φ is among the channels, how to undo its
    z-score, and the column the mean front is kept at. Rollouts move their own window by it, so the model
    always sees its front where training saw it, whatever its front speed."""

    target: int
    channel: int
    mean: float
    std: float

    @classmethod
    def of(cls, meta: Any, fields: list[str], mean: tuple[float, ...], std: tuple[float, ...]) -> Rule | None:
        """None when the file does not name `window_target` or φ is not a field (rollouts then move by the
        stored offsets)."""
        frac = meta.params.get("window_target")
        if frac is None or "phi" not in fields:
            return None
        i = fields.index("phi")
        return cls(round(float(frac) * meta.width), i, float(mean[i]), float(std[i]))

    def shift(self, x_CHW: Any) -> int:
        return rule_shift(x_CHW[self.channel] * self.std + self.mean, self.target)
