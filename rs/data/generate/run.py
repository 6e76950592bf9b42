"""Generation: sample process parameters, advance batches of simulations, collect frames in physical units."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from rs.config.data_schema import GenerateConfig
from rs.data.generate import solver
from rs.data.generate.solver import ANTITRAPPING, Numerics

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SimSpec:
    """One simulation's process parameters and seed (physical units)."""

    index: int
    split: str
    velocity: float  # m/s
    gradient: float  # K/m
    seed: int

    @property
    def name(self) -> str:
        return f"sim_{self.index:04d}"


@dataclass
class SimResult:
    spec: SimSpec
    images: np.ndarray  # (T, 2, H, W) float32: φ and c (wt%)
    steps: np.ndarray  # (T,) solver step of each frame
    window_offset: np.ndarray  # (T,) cells the moving window had advanced
    attrs: dict[str, float | int | str] = field(default_factory=dict)


def numerics(gen: GenerateConfig) -> Numerics:
    at = ANTITRAPPING if gen.trapping == "antitrapping" else 0.0
    assert gen.coupling is not None and gen.diffusivity_nondim is not None and gen.dt is not None
    return Numerics(
        k=gen.partition_coefficient, coupling=gen.coupling, d_tilde=gen.diffusivity_nondim,
        eps4=gen.anisotropy, dx=gen.dx_over_w0, dt=gen.dt, antitrapping=at,
    )


def sample_specs(gen: GenerateConfig) -> list[SimSpec]:
    """V and G log-uniform in their ranges, or every point of a log-spaced V × G grid in a seeded order
    (`process_grid`); splits by simulation, never by frame, so val/test process parameters are held out."""
    rng = np.random.default_rng(gen.seed)
    n = sum(gen.simulations)
    log_v = (math.log(gen.velocity_range[0]), math.log(gen.velocity_range[1]))
    log_g = (math.log(gen.gradient_range[0]), math.log(gen.gradient_range[1]))
    if gen.process_grid is None:
        v = np.exp(rng.uniform(log_v[0], log_v[1], n))
        g = np.exp(rng.uniform(log_g[0], log_g[1], n))
    else:
        n_v, n_g = gen.process_grid
        vv, gg = np.meshgrid(np.linspace(*log_v, n_v), np.linspace(*log_g, n_g), indexing="ij")
        order = rng.permutation(n_v * n_g)
        v, g = np.exp(vv.ravel()[order]), np.exp(gg.ravel()[order])
    seeds = rng.integers(0, 2**31 - 1, n)
    splits = [s for s, count in zip(SPLITS, gen.simulations, strict=True) for _ in range(count)]
    return [SimSpec(i + 1, splits[i], float(v[i]), float(g[i]), int(seeds[i])) for i in range(n)]


def process_attrs(gen: GenerateConfig, spec: SimSpec) -> dict[str, float]:
    """Dimensionless lengths and the constitutional-undercooling ratio of one simulation."""
    assert gen.freezing_range and gen.interface_width and gen.tau0
    w0, tau0 = gen.interface_width, gen.tau0
    l_T = gen.freezing_range / spec.gradient
    l_D = gen.diffusivity / spec.velocity
    return {
        "pulling_speed": spec.velocity,
        "thermal_gradient_raw": spec.gradient,
        "velocity_nondim": spec.velocity * tau0 / w0,
        "thermal_length": l_T,
        "diffusion_length": l_D,
        "thermal_length_w0": l_T / w0,
        "diffusion_length_w0": l_D / w0,
        "critical_velocity": gen.diffusivity * spec.gradient / gen.freezing_range,
        "velocity_over_critical": l_T / l_D,
    }


def _initial_front(gen: GenerateConfig, spec: SimSpec, x0: float) -> np.ndarray:
    # A few random lateral modes with a fixed rms: seeds every instability without grid-scale noise.
    H = gen.grid[0]
    rng = np.random.default_rng(spec.seed)
    y = np.arange(H) / H
    modes = np.arange(1, max(2, H // 8) + 1)
    amp = rng.normal(size=modes.size) / modes
    phase = rng.uniform(0, 2 * np.pi, modes.size)
    profile = (amp[:, None] * np.cos(2 * np.pi * modes[:, None] * y[None, :] + phase[:, None])).sum(0)
    profile *= gen.perturbation / max(float(np.sqrt((profile**2).mean())), 1e-12)
    return x0 + profile


def device_for(gen: GenerateConfig) -> torch.device:
    if gen.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(gen.device)


def steps_per_frame(gen: GenerateConfig) -> int:
    assert gen.dt is not None
    return max(1, round(gen.frame_interval / gen.dt))


def simulate_batch(
    gen: GenerateConfig,
    specs: list[SimSpec],
    on_frame: Callable[[int], None] | None = None,
    step_fn: Callable[..., None] = solver.step,
) -> list[SimResult]:
    """Advance `specs` together; frames every `frame_interval` τ0 (rounded to whole steps)."""
    n = numerics(gen)
    dtype = getattr(torch, gen.dtype)
    dev = device_for(gen)
    H, W = gen.grid
    x0 = gen.front_position * W * n.dx
    attrs = [process_attrs(gen, s) for s in specs]
    as_t = lambda xs: torch.tensor(xs, dtype=dtype, device=dev)  # noqa: E731
    v_B = as_t([a["velocity_nondim"] for a in attrs]).view(-1, 1, 1)
    lT_B = as_t([a["thermal_length_w0"] for a in attrs]).view(-1, 1, 1)
    lD_B = as_t([a["diffusion_length_w0"] for a in attrs])
    front = torch.from_numpy(np.stack([_initial_front(gen, s, x0) for s in specs])).to(dev, dtype)
    state = solver.initial_state(n, front, lD_B, W)
    x_W = (torch.arange(W, dtype=dtype, device=dev) + 0.5) * n.dx
    target = round(gen.window_target * W)
    c_scale = gen.c0 / gen.partition_coefficient  # c = C · c_l⁰, c_l⁰ = c∞/k

    T, spf = gen.frames, steps_per_frame(gen)
    images = np.empty((len(specs), T, 2, H, W), dtype=np.float32)
    offsets = np.zeros((len(specs), T), dtype=np.int64)
    for t in range(T):
        if t > 0:
            for _ in range(spf):
                step_fn(state, n, x_W, x0, v_B, lT_B)
            if gen.moving_window:
                solver.shift_window(state, n, target)
        images[:, t, 0] = state.phi.cpu().numpy()
        images[:, t, 1] = (state.C * c_scale).cpu().numpy()
        offsets[:, t] = state.offset.cpu().numpy()
        if on_frame is not None:
            on_frame(len(specs))
    if not np.isfinite(images).all():
        raise FloatingPointError("phase-field solver diverged (non-finite fields); lower data.generate.dt_safety")
    steps = np.arange(T, dtype=np.int64) * spf
    return [SimResult(s, images[i], steps, offsets[i], attrs[i]) for i, s in enumerate(specs)]


def batches(specs: list[SimSpec], size: int) -> Iterator[list[SimSpec]]:
    for i in range(0, len(specs), size):
        yield specs[i : i + size]
