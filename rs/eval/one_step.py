"""The one-step error from every frame of a simulation (teacher-forced: the true history each time). Step 1 of a
rollout starts at the first frames only, an initial transient; this is the one-step skill over the whole run."""

from __future__ import annotations

import numpy as np
import torch

from rs.data import window
from rs.eval.rollout import Simulation


def samples(sim: Simulation, history: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input (N, K·C[+1], H, W), target (N, C, H, W), cond (N, P)) for every newest-input frame t, in t's
    window when the simulation has window offsets (as training saw them)."""
    K, F, off = history, sim.frames.shape[0], sim.offsets
    inputs, targets = [], []
    for t in range(K - 1, F - stride):
        def at(u: int, t: int = t) -> np.ndarray:
            return sim.frames[u] if off is None else window.shift(sim.frames[u], int(off[u] - off[t]))

        x = [at(u) for u in range(t - K + 1, t + 1)]
        if sim.thermal is not None:
            x.append(sim.thermal[t][None])
        inputs.append(np.concatenate(x))
        targets.append(at(t + stride))
    cond = sim.cond[K - 1 : F - stride]
    return np.stack(inputs), np.stack(targets), cond


@torch.no_grad()
def predict_all(family, model, ema, sim: Simulation, history: int, stride: int,  # type: ignore[no-untyped-def]
                generator: torch.Generator, device: torch.device, batch_size: int = 32
                ) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, truth), each (N, C, H, W) z-scored, over every frame with a successor. The truth is in
    the prediction's window (persistence, as in rollouts, compares the stored frames t and t + stride)."""
    from rs.data.source import Batch

    x, y, cond = samples(sim, history, stride)
    preds = []
    for i in range(0, len(x), batch_size):
        b = Batch(torch.from_numpy(x[i : i + batch_size]).to(device), None,
                  torch.from_numpy(np.ascontiguousarray(cond[i : i + batch_size])).to(device), {})
        preds.append(family.predict(model, ema, b, generator).float().cpu().numpy())
    return np.concatenate(preds), y
