"""Physics of the phase-field generator: the planar-front instability threshold, solute conservation,
the steady planar front, and agreement of the batched torch solver with the NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rs.config import load_config
from rs.data.generate import reference, solver
from rs.data.generate.run import numerics

H = W = 64


def _setup(sets=(), dtype=torch.float32):
    gen = load_config(None, list(sets), env={}).data.generate
    return gen, numerics(gen), dtype


def _run(n, v_over_vc, l_D=10.0, steps=None, window=True, dtype=torch.float32, H=H, W=W, front=None, lT=None):
    """Advance B simulations at V/Vc = l_T/l_D; returns the final state and front amplitudes."""
    ratios = torch.tensor(v_over_vc, dtype=dtype)
    B = ratios.numel()
    lD = torch.full((B,), l_D, dtype=dtype)
    lT_B = (ratios * l_D if lT is None else torch.full((B,), lT, dtype=dtype)).view(B, 1, 1)
    v = (n.d_tilde / lD).view(B, 1, 1)  # Ṽ = D̃ / l̃_D
    x0 = 0.25 * W * n.dx
    if front is None:
        g = torch.Generator().manual_seed(1)
        y = torch.arange(H, dtype=dtype) / H
        modes = sum(torch.randn(1, generator=g) * torch.cos(2 * math.pi * m * y + m) / m for m in range(1, 5))
        front = x0 + 0.5 * modes / modes.std()
    s = solver.initial_state(n, front.expand(B, H).to(dtype), lD, W)
    x_W = (torch.arange(W, dtype=dtype) + 0.5) * n.dx
    m0 = solver.total_solute(s, n)
    amp0 = _amplitude(s, n)
    steps = steps or int(17.0 / n.dt)
    for i in range(steps):
        solver.step(s, n, x_W, x0, v, lT_B)
        if window and i % 50 == 49:
            solver.shift_window(s, n, W // 2)
    return s, amp0, _amplitude(s, n), m0


def _amplitude(s, n):
    fp = solver.front_position(s.phi, n.dx)
    return (fp.max(dim=1).values - fp.min(dim=1).values)


def test_planar_front_relaxes_below_and_breaks_into_cells_above_threshold():
    # DESIGN calibration: l_D = 10 W0 on 64×64; 0.5·Vc relaxes, 3·Vc forms cells within ≈ 17 τ0.
    _, n, _ = _setup()
    s, amp0, amp1, _ = _run(n, [0.5, 3.0])
    assert amp1[0] < 0.5 * amp0[0], f"0.5 Vc should relax: {amp0[0]:.2f} -> {amp1[0]:.2f} W0"
    assert amp1[1] > 3.0 * amp0[1] and amp1[1] > 5.0, f"3 Vc should grow cells: {amp0[1]:.2f} -> {amp1[1]:.2f} W0"
    # Cells: the front crosses its mean position several times along y.
    fp = solver.front_position(s.phi[1:2], n.dx)[0]
    crossings = int(((fp - fp.mean())[1:] * (fp - fp.mean())[:-1] < 0).sum())
    assert crossings >= 4, crossings


@pytest.mark.parametrize("window", [False, True])
def test_solute_is_conserved(window):
    _, n, _ = _setup()
    s, _, _, m0 = _run(n, [3.0], steps=1200, window=window)
    drift = float((solver.total_solute(s, n) - m0).abs().max() / m0.max())
    assert drift <= 1e-4, drift
    if window:
        assert int(s.offset.max()) > 0, "the window never moved; the test did not test the booking"


def test_steady_planar_front_recovers_c_inf_and_tanh_profile():
    # Quasi-1-D (narrow in y). Simulation 0 starts far from steady state (uniform U = −1) and moves fast
    # (l_D = 5 W0) until the initial transient (length ≈ l_D/k) is gone: the solid formed last must carry
    # c∞, by mass balance. Simulation 1 starts steady and moves slowly (l_D = 100 W0): its interface is the
    # equilibrium profile φ = −tanh((x − x_i)/(√2 W0)), which a fast front's kinetics distort.
    _, n, _ = _setup(["data.generate.dtype=float64"])
    dtype = torch.float64
    Hs, Ws = 2, 64
    l_D = torch.tensor([5.0, 100.0], dtype=dtype)
    x0 = 0.25 * Ws * n.dx
    s = solver.initial_state(n, torch.full((2, Hs), x0, dtype=dtype), l_D, Ws)
    s.C[0] = solver.conserved(s.phi[0], torch.full_like(s.phi[0], -1.0), n.k)  # sim 1 starts steady
    x_W = (torch.arange(Ws, dtype=dtype) + 0.5) * n.dx
    v = (n.d_tilde / l_D).view(2, 1, 1)
    lT = (4.0 * l_D).view(2, 1, 1)
    distance = 5.0 * 5.0 / n.k  # five transient lengths of simulation 0
    for i in range(int(distance / float(v[0]) / n.dt)):
        solver.step(s, n, x_W, x0, v, lT)
        if i % 50 == 49:
            solver.shift_window(s, n, Ws // 2)
    x = x_W.numpy()
    xi = solver.front_position(s.phi, n.dx)[:, 0].numpy()
    c_over_cinf = (s.C / n.k)[0, 0].numpy()  # c/c∞ = C·c_l⁰/c∞ = C/k
    solid = (x < xi[0] - 6.0) & (x > xi[0] - 20.0)
    assert solid.sum() > 10
    np.testing.assert_allclose(c_over_cinf[solid], 1.0, rtol=0.02)
    phi = s.phi[1, 0].numpy()
    band = np.abs(phi) < 0.9
    W_fit = 1.0 / (math.sqrt(2.0) * np.polyfit(x[band] - xi[1], np.arctanh(-phi[band]), 1)[0])
    W_int = float((1.0 - phi**2).sum() * n.dx / (2.0 * math.sqrt(2.0)))  # ∫ sech² = 2√2 W
    assert W_fit == pytest.approx(1.0, rel=0.1), W_fit
    assert W_int == pytest.approx(1.0, rel=0.1), W_int
    residual = phi[band] + np.tanh((x[band] - xi[1]) / (math.sqrt(2.0) * W_fit))
    assert np.abs(residual).max() < 0.05


def test_torch_solver_matches_numpy_reference():
    _, n, _ = _setup()
    dtype = torch.float64
    B = 2
    v = torch.tensor([0.2, 1.1], dtype=dtype).view(B, 1, 1)
    lT = torch.full((B, 1, 1), 30.0, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    front = 12.8 + 0.5 * torch.randn(B, H, generator=g, dtype=dtype)
    s = solver.initial_state(n, front, torch.tensor([55.0, 10.0], dtype=dtype), W)
    x_W = (torch.arange(W, dtype=dtype) + 0.5) * n.dx
    phi, C = s.phi[1].numpy().copy(), s.C[1].numpy().copy()
    for _ in range(150):
        phi, C = reference.step(phi, C, s.t, n, x_W.numpy(), 12.8, 1.1, 30.0)
        solver.step(s, n, x_W, 12.8, v, lT)
    np.testing.assert_allclose(s.phi[1].numpy(), phi, atol=1e-12)
    np.testing.assert_allclose(s.C[1].numpy(), C, atol=1e-12)
    assert float((s.phi[1] - s.phi[0]).abs().max()) > 1e-3  # the two simulations really differ
