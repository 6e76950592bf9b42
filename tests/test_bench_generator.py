"""`rs bench generator` prints the torch/numpy ratio measured in one run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_bench_generator_json():
    proc = subprocess.run(
        [sys.executable, "-m", "rs", "bench", "generator", "--grid", "32", "--batch", "8", "--steps", "20",
         "--no-compile", "--json"], capture_output=True, text=True, cwd=REPO, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert {"torch_cells_per_s", "numpy_cells_per_s", "speedup"} <= set(r)
    assert r["torch_cells_per_s"] > 0 and r["numpy_cells_per_s"] > 0
    assert r["speedup"] == pytest.approx(r["torch_cells_per_s"] / r["numpy_cells_per_s"])


@pytest.mark.slow
def test_compiled_step_matches_eager():
    from rs.config import load_config
    from rs.data.generate import solver
    from rs.data.generate.run import numerics

    n = numerics(load_config(None, env={}).data.generate)
    front = 12.8 + 0.5 * torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    lD = torch.full((4,), 10.0)
    v, lT = torch.full((4, 1, 1), 1.1), torch.full((4, 1, 1), 30.0)
    x_W = (torch.arange(32) + 0.5) * n.dx
    a, b = solver.initial_state(n, front, lD, 32), solver.initial_state(n, front, lD, 32)
    compiled = solver.compiled_step()
    for _ in range(100):
        solver.step(a, n, x_W, 12.8, v, lT)
        compiled(b, n, x_W, 12.8, v, lT)
    torch.testing.assert_close(a.phi, b.phi, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.C, b.C, atol=1e-4, rtol=0)
