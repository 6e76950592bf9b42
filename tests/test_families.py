"""Training families: what the worker loop's loss sees, without Ray."""

from __future__ import annotations

from pathlib import Path

import torch

from rs.config import load_config
from rs.train.families import FAMILIES

REPO = Path(__file__).resolve().parents[1]


def _surrogate(*sets: str):
    cfg = load_config(REPO / "configs/train/debug.yaml", ["data.thermal_input=true", "data.history=2", *sets],
                      env={})
    return FAMILIES["surrogate"](cfg), cfg


def test_input_noise_perturbs_history_frames_only():
    fam, cfg = _surrogate("train.input_noise=0.1")
    C, K = len(cfg.data.fields), cfg.data.history
    x = torch.zeros(4, K * C + 1, 16, 16)
    y = fam.perturb(x, torch.Generator().manual_seed(0))
    assert torch.equal(y[:, K * C :], x[:, K * C :]), "the thermal channel is known exactly: never perturbed"
    std = float(y[:, : K * C].std())
    assert 0.08 < std < 0.12, std
    again = fam.perturb(x, torch.Generator().manual_seed(0))
    assert torch.equal(y, again), "the noise comes from the loop's seeded generator"


def test_no_input_noise_by_default_leaves_inputs_alone():
    fam, _ = _surrogate()
    x = torch.randn(2, 5, 8, 8)
    assert fam.perturb(x, torch.Generator().manual_seed(0)) is x
