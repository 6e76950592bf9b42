"""Batched torch solver of the quantitative phase-field model of directional solidification.

Echebarria, Folch, Karma & Plapp, Phys. Rev. E 70, 061604 (2004), frozen-temperature approximation,
lengths in W0 and times in τ0. φ = +1 is solid; growth runs along +x (the last axis). The solute is
advanced in conservative form for C = c/c_l⁰ = (1+k−(1−k)φ)/2 · (1+(1−k)U), so ∫c dA is conserved to
round-off with no-flux walls; U is recovered from C and φ after each step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ANTITRAPPING = 1.0 / (2.0 * math.sqrt(2.0))
_EPS = 1e-12


@dataclass(frozen=True)
class Numerics:
    """Dimensionless constants shared by every simulation of a batch."""

    k: float
    coupling: float  # λ
    d_tilde: float  # D̃
    eps4: float
    dx: float  # in W0
    dt: float  # in τ0
    antitrapping: float  # a_t (0 switches the anti-trapping current off)


@dataclass
class State:
    phi: torch.Tensor  # (B, H, W)
    C: torch.Tensor  # (B, H, W): c / c_l⁰
    t: float  # τ0
    offset: torch.Tensor  # (B,) cells the moving window has advanced
    booked: torch.Tensor  # (B,) ∑C·dx² removed minus added by window shifts


def supersaturation(phi: torch.Tensor, C: torch.Tensor, k: float) -> torch.Tensor:
    return (2.0 * C / (1.0 + k - (1.0 - k) * phi) - 1.0) / (1.0 - k)


def conserved(phi: torch.Tensor, U: torch.Tensor, k: float) -> torch.Tensor:
    return 0.5 * (1.0 + k - (1.0 - k) * phi) * (1.0 + (1.0 - k) * U)


def _pad(f: torch.Tensor) -> torch.Tensor:
    # Replicated ghost cells make every wall a no-flux wall.
    return F.pad(f.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)


def _anisotropy(gx: torch.Tensor, gy: torch.Tensor, eps4: float) -> tuple[torch.Tensor, ...]:
    """a(n) = 1 − 3ε4 + 4ε4(nx⁴+ny⁴) and the pieces its cross terms need."""
    gx2, gy2 = gx * gx, gy * gy
    g2 = gx2 + gy2
    inv4 = 1.0 / (g2 * g2 + _EPS)
    a = (1.0 - 3.0 * eps4) + (4.0 * eps4) * (gx2 * gx2 + gy2 * gy2) * inv4
    return a, gx2, gy2, inv4


def _phase_flux_x(gx: torch.Tensor, gy: torch.Tensor, eps4: float) -> torch.Tensor:
    # x-component of a²∇φ + |∇φ|² a ∂a/∂(∇φ); the y-component is the same with x and y swapped.
    a, gx2, gy2, inv4 = _anisotropy(gx, gy, eps4)
    return a * gx * (a + (16.0 * eps4) * gy2 * (gx2 - gy2) * inv4)


def step(s: State, n: Numerics, x_W: torch.Tensor, x0: float, v_B: torch.Tensor, lT_B: torch.Tensor) -> None:
    """One explicit Euler step in place. x_W: cell-centre x (W0) of the window; v_B, lT_B: (B,1,1)."""
    k, dx, eps4 = n.k, n.dx, n.eps4
    phi, C = s.phi, s.C
    U = supersaturation(phi, C, k)
    x_lab = x_W + s.offset.view(-1, 1, 1) * dx
    theta = (x_lab - (x0 + s.t * v_B)) / lT_B

    p = _pad(phi)
    px_x = (p[:, 1:-1, 1:] - p[:, 1:-1, :-1]) * (1.0 / dx)  # x-faces (B, H, W+1)
    py_y = (p[:, 1:, 1:-1] - p[:, :-1, 1:-1]) * (1.0 / dx)  # y-faces (B, H+1, W)
    cy = (p[:, 2:, :] - p[:, :-2, :]) * (0.5 / dx)  # (B, H, W+2)
    cx = (p[:, :, 2:] - p[:, :, :-2]) * (0.5 / dx)  # (B, H+2, W)
    py_x = 0.5 * (cy[:, :, 1:] + cy[:, :, :-1])
    px_y = 0.5 * (cx[:, 1:, :] + cx[:, :-1, :])
    lap = _divergence(_phase_flux_x(px_x, py_x, eps4), _phase_flux_x(py_y, px_y, eps4), dx)
    a_c = _anisotropy(cx[:, 1:-1, :], cy[:, :, 1:-1], eps4)[0]
    # Bounded below by k: in hot liquid 1 − (1−k)θ would turn negative.
    tau = a_c * a_c * torch.clamp(1.0 - (1.0 - k) * theta, min=k)
    one_m = 1.0 - phi * phi
    dphi = (lap + phi * one_m - n.coupling * one_m * one_m * (U + theta)) / tau

    u = _pad(U)
    q = _pad(1.0 - phi)  # 2·q(φ), q = (1−φ)/2
    fx = (0.25 * n.d_tilde / dx) * (q[:, 1:-1, 1:] + q[:, 1:-1, :-1]) * (u[:, 1:-1, 1:] - u[:, 1:-1, :-1])
    fy = (0.25 * n.d_tilde / dx) * (q[:, 1:, 1:-1] + q[:, :-1, 1:-1]) * (u[:, 1:, 1:-1] - u[:, :-1, 1:-1])
    if n.antitrapping:
        src = _pad((1.0 + (1.0 - k) * U) * dphi)
        nx = px_x * torch.rsqrt(px_x * px_x + py_x * py_x + _EPS)
        ny = py_y * torch.rsqrt(px_y * px_y + py_y * py_y + _EPS)
        fx = fx + (0.5 * n.antitrapping) * (src[:, 1:-1, 1:] + src[:, 1:-1, :-1]) * nx
        fy = fy + (0.5 * n.antitrapping) * (src[:, 1:, 1:-1] + src[:, :-1, 1:-1]) * ny
        # Walls carry no flux: zero the boundary faces exactly.
        fx[:, :, 0] = 0.0
        fx[:, :, -1] = 0.0
        fy[:, 0, :] = 0.0
        fy[:, -1, :] = 0.0
    s.C = C + (n.dt * (1.0 - k)) * _divergence(fx, fy, dx)
    s.phi = phi + n.dt * dphi
    s.t += n.dt


def _divergence(jx: torch.Tensor, jy: torch.Tensor, dx: float) -> torch.Tensor:
    return (jx[:, :, 1:] - jx[:, :, :-1] + jy[:, 1:, :] - jy[:, :-1, :]) * (1.0 / dx)


def front_position(phi: torch.Tensor, dx: float) -> torch.Tensor:
    """Per-row solid length (W0): the front's x at each y for a single-valued front. (B, H)."""
    return ((phi + 1.0) * 0.5).sum(dim=-1) * dx


def shift_window(s: State, n: Numerics, target_cells: int, U_far: float = -1.0) -> None:
    """Drop solid columns behind the front and add far-field liquid ahead, booking the solute."""
    B, H, W = s.phi.shape
    front = front_position(s.phi, n.dx).mean(dim=1) / n.dx  # (B,) in cells
    shift = torch.clamp(torch.floor(front - target_cells), min=0).to(torch.long)
    if int(shift.max()) == 0:
        return
    j = torch.arange(W, device=s.phi.device)
    src = j.view(1, 1, W) + shift.view(B, 1, 1)
    fresh = src >= W
    idx = src.clamp(max=W - 1).expand(B, H, W)
    dropped = (j.view(1, 1, W) < shift.view(B, 1, 1)).expand(B, H, W)
    C_liquid = float(conserved(torch.tensor(-1.0), torch.tensor(U_far), n.k))
    area = n.dx * n.dx
    removed = (s.C * dropped).sum(dim=(1, 2)) * area
    added = fresh.expand(B, H, W).sum(dim=(1, 2)) * C_liquid * area
    s.phi = torch.where(fresh, torch.full_like(s.phi, -1.0), torch.gather(s.phi, 2, idx))
    s.C = torch.where(fresh, torch.full_like(s.C, C_liquid), torch.gather(s.C, 2, idx))
    s.offset = s.offset + shift.to(s.offset.dtype)
    s.booked = s.booked + removed - added


def total_solute(s: State, n: Numerics) -> torch.Tensor:
    """∫C dA plus what window shifts removed net: constant in time with no-flux walls. (B,)."""
    return s.C.sum(dim=(1, 2)) * n.dx * n.dx + s.booked


def initial_state(
    n: Numerics, front_BH: torch.Tensor, lD_B: torch.Tensor, W: int
) -> State:
    """Steady planar-front profiles around a (perturbed) front: tanh φ, exponential solute boundary layer."""
    x_W = (torch.arange(W, dtype=front_BH.dtype, device=front_BH.device) + 0.5) * n.dx
    d = x_W.view(1, 1, W) - front_BH.unsqueeze(-1)
    phi = -torch.tanh(d / math.sqrt(2.0))
    U = torch.clamp(torch.exp(-torch.clamp(d, min=0.0) / lD_B.view(-1, 1, 1)) - 1.0, max=0.0)
    B = front_BH.shape[0]
    zeros = torch.zeros(B, dtype=front_BH.dtype, device=front_BH.device)
    return State(phi=phi, C=conserved(phi, U, n.k), t=0.0, offset=zeros.clone(), booked=zeros.clone())


def compiled_step():  # -> Callable like `step`
    """`step` with its arithmetic fused by torch.compile (≈2× on CPU; compiling costs ~20–40 s once)."""
    fields = torch.compile(_fields_step, dynamic=False)

    def run(s: State, n: Numerics, x_W: torch.Tensor, x0: float, v_B: torch.Tensor, lT_B: torch.Tensor) -> None:
        # Time enters as a tensor: a Python float would be baked in and recompile every step.
        t = torch.tensor(s.t, dtype=s.phi.dtype, device=s.phi.device)
        s.phi, s.C = fields(s.phi, s.C, s.offset, t, n, x_W, x0, v_B, lT_B)
        s.t += n.dt

    return run


def _fields_step(phi, C, offset, t, n, x_W, x0, v_B, lT_B):  # type: ignore[no-untyped-def]
    s = State(phi=phi, C=C, t=t, offset=offset, booked=offset)
    step(s, n, x_W, x0, v_B, lT_B)
    return s.phi, s.C
