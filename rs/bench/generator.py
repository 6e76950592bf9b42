"""`rs bench generator`: the batched torch solver vs a single-simulation NumPy implementation of the
same update, on the same grid and number of steps, in one run."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rs.bench.common import machine, timed
from rs.config import load_config
from rs.data.generate import reference, solver
from rs.data.generate.run import numerics


def run(grid: int = 64, batch: int = 32, steps: int = 200, numpy_sims: int = 2, compile: bool = True) -> dict[str, Any]:
    gen = load_config(None, [f"data.generate.grid=[{grid}, {grid}]"], env={}).data.generate
    n = numerics(gen)
    dtype = torch.float32
    H = W = grid
    x0 = 0.25 * W * n.dx
    g = torch.Generator().manual_seed(0)
    front = x0 + 0.5 * torch.randn(batch, H, generator=g)
    v = torch.full((batch, 1, 1), 1.1, dtype=dtype)
    lT = torch.full((batch, 1, 1), 30.0, dtype=dtype)
    x_W = (torch.arange(W, dtype=dtype) + 0.5) * n.dx

    def torch_run(step_fn) -> None:
        s = solver.initial_state(n, front.to(dtype), torch.full((batch,), 10.0, dtype=dtype), W)
        for _ in range(steps):
            step_fn(s, n, x_W, x0, v, lT)

    out: dict[str, Any] = {"grid": grid, "batch": batch, "steps": steps, "machine": machine()}
    torch_run(solver.step)  # warm-up: allocator, thread pool
    eager = batch * H * W * steps / timed(lambda: torch_run(solver.step), repeat=2)
    out["torch_eager_cells_per_s"] = eager
    best = eager
    if compile:
        compiled = solver.compiled_step()
        torch_run(compiled)  # compile outside the timing; generation amortizes it the same way
        out["torch_compiled_cells_per_s"] = batch * H * W * steps / timed(lambda: torch_run(compiled), repeat=2)
        best = max(best, out["torch_compiled_cells_per_s"])

    s0 = solver.initial_state(n, front[:numpy_sims].to(dtype), torch.full((numpy_sims,), 10.0, dtype=dtype), W)
    x_np = x_W.numpy()

    def numpy_run() -> None:
        for b in range(numpy_sims):
            phi, C = s0.phi[b].numpy().copy(), s0.C[b].numpy().copy()
            t = 0.0
            for _ in range(steps):
                phi, C = reference.step(phi, C, t, n, x_np, np.float32(x0), np.float32(1.1), np.float32(30.0))
                t += n.dt

    out["numpy_cells_per_s"] = numpy_sims * H * W * steps / timed(numpy_run, repeat=2)
    out["torch_cells_per_s"] = best
    out["speedup"] = best / out["numpy_cells_per_s"]
    out["speedup_eager"] = eager / out["numpy_cells_per_s"]
    return out


def table(r: dict[str, Any]) -> str:
    rows = [("numpy, 1 simulation at a time", r["numpy_cells_per_s"], 1.0),
            (f"torch eager, batch {r['batch']}", r["torch_eager_cells_per_s"], r["speedup_eager"])]
    if "torch_compiled_cells_per_s" in r:
        rows.append((f"torch.compile, batch {r['batch']}", r["torch_compiled_cells_per_s"],
                     r["torch_compiled_cells_per_s"] / r["numpy_cells_per_s"]))
    lines = [f"generator bench: {r['grid']}x{r['grid']}, {r['steps']} steps; {r['machine']}",
             f"{'solver':<34} {'M cell-updates/s':>17} {'vs numpy':>9}"]
    lines += [f"{name:<34} {rate / 1e6:>17.1f} {ratio:>8.1f}x" for name, rate, ratio in rows]
    lines.append(f"speedup (best torch / numpy): {r['speedup']:.1f}x")
    return "\n".join(lines)
