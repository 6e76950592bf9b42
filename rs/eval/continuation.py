"""How fast the physics itself amplifies a forecast's error (files written by `rs data generate` only).

The generator's solver is restarted from the model's first predicted frame and run on exactly. Its error at
rollout step k is what a model that made no error after its first step would score: the floor that one-step
accuracy sets on every later step. A stable planar front damps a displaced front back; the cellular
instability of fast fronts amplifies it, so there no model reaches a small multi-step error without a much
smaller one-step error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rs.data import window
from rs.data.meta import SimulationMeta, h5reader


@dataclass(frozen=True)
class Physics:
    """What the solver needs to continue one stored simulation, as the generator wrote it on the group."""

    gen: Any  # GenerateConfig, built from the stored (already validated) values
    velocity_nondim: float
    thermal_length_w0: float
    solver_steps: np.ndarray  # (F,) solver step of each stored frame
    offsets: np.ndarray  # (F,) window offset of each stored frame

    @classmethod
    def of(cls, meta: SimulationMeta) -> Physics | None:
        """None when the simulation was not written by rs's generator (no solver settings on its group)."""
        from rs.config.data_schema import GenerateConfig

        if meta.layout != "A":
            return None
        with h5reader(meta.file) as f:
            grp = f[meta.key]
            attrs = {k: _plain(v) for k, v in grp.attrs.items()}
            steps = np.asarray(grp["times"][()], np.int64) if "times" in grp else None
            offs = np.asarray(grp["window_offset"][()], np.int64) if "window_offset" in grp else None
        needed = ("coupling", "diffusivity_nondim", "dt", "velocity_nondim", "thermal_length_w0", "trapping")
        if steps is None or any(k not in attrs for k in needed):
            return None
        # The generator validated these when it wrote them; the split counts it dropped would fail validation.
        gen = GenerateConfig.model_construct(**{k: attrs[k] for k in GenerateConfig.model_fields if k in attrs})
        offsets = offs if offs is not None else np.zeros(len(steps), np.int64)
        return cls(gen, float(attrs["velocity_nondim"]), float(attrs["thermal_length_w0"]), steps, offsets)


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return tuple(x.item() for x in v.ravel())
    return v.item() if isinstance(v, np.generic) else v


def continue_exact(physics: Physics, start_CHW: np.ndarray, start: int, stride: int, steps: int,
                   fields: list[str]) -> np.ndarray:
    """(steps, C, H, W): the solver run on from `start_CHW` (physical units, the stored window of frame
    `start`) to frames start + stride·k, k = 1..steps, each in the stored window of its frame."""
    import torch

    from rs.data.generate import solver
    from rs.data.generate.run import numerics

    gen = physics.gen
    ip, ic = fields.index("phi"), fields.index("c")
    dtype = getattr(torch, gen.dtype)
    n = numerics(gen)
    H, W = start_CHW.shape[-2:]
    c_scale = gen.c0 / gen.partition_coefficient
    as_t = lambda x: torch.as_tensor(np.asarray(x), dtype=dtype)  # noqa: E731
    state = solver.State(phi=as_t(start_CHW[ip])[None], C=as_t(start_CHW[ic] / c_scale)[None],
                         t=float(physics.solver_steps[start]) * n.dt, offset=as_t([physics.offsets[start]]),
                         booked=as_t([0.0]))
    x_W = (torch.arange(W, dtype=dtype) + 0.5) * n.dx
    x0 = gen.front_position * W * n.dx
    v_B, lT_B = as_t([physics.velocity_nondim]).view(1, 1, 1), as_t([physics.thermal_length_w0]).view(1, 1, 1)
    target = round(gen.window_target * W)
    out = np.empty((steps, len(fields), H, W), np.float32)
    for k in range(steps):
        for f in range(start + stride * k, start + stride * (k + 1)):  # the generator's loop: frame by frame
            for _ in range(int(physics.solver_steps[f + 1] - physics.solver_steps[f])):
                solver.step(state, n, x_W, x0, v_B, lT_B)
            if gen.moving_window:
                solver.shift_window(state, n, target)
        frame = start + stride * (k + 1)
        d = int(state.offset[0]) - int(physics.offsets[frame])  # into the stored frame's window
        out[k, ip] = window.shift(state.phi[0].cpu().numpy(), d)
        out[k, ic] = window.shift((state.C[0] * c_scale).cpu().numpy(), d)
    return out


def continuation_vrmse(meta: SimulationMeta, point: np.ndarray, truth: np.ndarray, history: int, stride: int,
                       fields: list[str]) -> dict[tuple[str, str], np.ndarray] | None:
    """{("continuation_vrmse", field): (steps, 2) [solver from the model's step 1, NaN]} for one simulation
    (`point`, `truth`: (steps, C, H, W) physical, stored windows), or None where the solver cannot run."""
    from rs.eval import metrics as M

    physics = Physics.of(meta) if sorted(fields) == ["c", "phi"] else None
    if physics is None:
        return None
    start = history - 1 + stride
    cont = np.concatenate([point[:1], continue_exact(physics, point[0], start, stride, len(point) - 1, fields)])
    return {("continuation_vrmse", name): np.stack([M.vrmse(cont[:, f], truth[:, f]),
                                                    np.full(len(truth), np.nan)], axis=1)
            for f, name in enumerate(fields)}
