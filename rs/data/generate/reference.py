"""A straightforward single-simulation NumPy implementation of the same update as `solver.step`.

It is the baseline of `rs bench generator` and the cross-check of the batched solver in tests.
"""

from __future__ import annotations

import numpy as np

from rs.data.generate.solver import Numerics

_EPS = 1e-12


def _anisotropy(gx: np.ndarray, gy: np.ndarray, eps4: float) -> np.ndarray:
    g2 = gx**2 + gy**2
    return 1.0 - 3.0 * eps4 + 4.0 * eps4 * (gx**4 + gy**4) / (g2**2 + _EPS)


def _flux_x(gx: np.ndarray, gy: np.ndarray, eps4: float) -> np.ndarray:
    a = _anisotropy(gx, gy, eps4)
    g2 = gx**2 + gy**2
    return a * a * gx + a * 16.0 * eps4 * gx * gy**2 * (gx**2 - gy**2) / (g2**2 + _EPS)


def step(
    phi: np.ndarray, C: np.ndarray, t: float, n: Numerics, x: np.ndarray, x0: float, v: float, lT: float
) -> tuple[np.ndarray, np.ndarray]:
    """One explicit Euler step of one (H, W) simulation; returns new (φ, C)."""
    k, dx = n.k, n.dx
    U = (2.0 * C / (1.0 + k - (1.0 - k) * phi) - 1.0) / (1.0 - k)
    theta = (x[None, :] - x0 - v * t) / lT

    p = np.pad(phi, 1, mode="edge")
    px_x = (p[1:-1, 1:] - p[1:-1, :-1]) / dx
    py_y = (p[1:, 1:-1] - p[:-1, 1:-1]) / dx
    cy = (p[2:, :] - p[:-2, :]) / (2.0 * dx)
    cx = (p[:, 2:] - p[:, :-2]) / (2.0 * dx)
    py_x = 0.5 * (cy[:, 1:] + cy[:, :-1])
    px_y = 0.5 * (cx[1:, :] + cx[:-1, :])
    jx = _flux_x(px_x, py_x, n.eps4)
    jy = _flux_x(py_y, px_y, n.eps4)
    lap = (jx[:, 1:] - jx[:, :-1] + jy[1:, :] - jy[:-1, :]) / dx
    a_c = _anisotropy(cx[1:-1, :], cy[:, 1:-1], n.eps4)
    tau = a_c**2 * np.maximum(1.0 - (1.0 - k) * theta, k)
    dphi = (lap + phi - phi**3 - n.coupling * (1.0 - phi**2) ** 2 * (U + theta)) / tau

    u = np.pad(U, 1, mode="edge")
    q = np.pad((1.0 - phi) / 2.0, 1, mode="edge")
    fx = n.d_tilde * 0.5 * (q[1:-1, 1:] + q[1:-1, :-1]) * (u[1:-1, 1:] - u[1:-1, :-1]) / dx
    fy = n.d_tilde * 0.5 * (q[1:, 1:-1] + q[:-1, 1:-1]) * (u[1:, 1:-1] - u[:-1, 1:-1]) / dx
    if n.antitrapping:
        src = np.pad((1.0 + (1.0 - k) * U) * dphi, 1, mode="edge")
        nx = px_x / np.sqrt(px_x**2 + py_x**2 + _EPS)
        ny = py_y / np.sqrt(px_y**2 + py_y**2 + _EPS)
        fx = fx + n.antitrapping * 0.5 * (src[1:-1, 1:] + src[1:-1, :-1]) * nx
        fy = fy + n.antitrapping * 0.5 * (src[1:, 1:-1] + src[:-1, 1:-1]) * ny
        fx[:, 0] = fx[:, -1] = 0.0
        fy[0, :] = fy[-1, :] = 0.0
    div = (fx[:, 1:] - fx[:, :-1] + fy[1:, :] - fy[:-1, :]) / dx
    return phi + n.dt * dphi, C + n.dt * (1.0 - k) * div
