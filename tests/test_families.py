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


def test_residual_surrogate_scales_its_output_by_the_change_std():
    from rs.models.build import build_model, set_delta_scale

    _, cfg = _surrogate()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = torch.randn(2, cfg.model.in_channels, 16, 16)
    cond = torch.randn(2, cfg.model.cond_dim)
    C = len(cfg.data.fields)
    last = x[:, C : 2 * C]
    with torch.no_grad():
        unit = model(x, cond) - last
        set_delta_scale(model, [0.5, 0.1])
        scaled = model(x, cond) - last
    torch.testing.assert_close(scaled, unit * torch.tensor([0.5, 0.1])[:, None, None])
    assert "delta_scale" in model.state_dict(), "checkpoints carry the scale to evaluation"


def test_residual_diffusion_trains_on_the_scaled_change_and_samples_around_the_last_frame():
    from rs.data.source import Batch
    from rs.models.build import build_ema, build_model, set_delta_scale

    def family(residual: bool):
        cfg = load_config(REPO / "configs/train/debug_diffusion.yaml",
                          [f"model.predict_residual={str(residual).lower()}", "data.thermal_input=false"], env={})
        torch.manual_seed(0)
        model = build_model(cfg).eval()
        set_delta_scale(model, [0.5, 0.1])
        return FAMILIES["diffusion"](cfg), model, build_ema(model, 0.99)

    x, y = torch.randn(2, 2, 16, 16), torch.randn(2, 2, 16, 16)
    batch = Batch(x, y, torch.randn(2, family(True)[0].cfg.model.cond_dim), {})
    preds = {}
    for residual in (True, False):
        fam, model, ema = family(residual)
        preds[residual] = fam.predict(model, ema, batch, torch.Generator().manual_seed(3))
        loss, _ = fam.loss(model, batch, torch.Generator().manual_seed(1))
        assert torch.isfinite(loss)
    torch.testing.assert_close(preds[True], x + preds[False] * torch.tensor([0.5, 0.1])[:, None, None])
    # the training target is the scaled change: a batch whose target equals its input frame is a zero change
    fam, model, _ = family(True)
    still = Batch(x, x.clone(), batch.cond, {})
    moved = Batch(x, x + 5.0, batch.cond, {})
    with torch.no_grad():
        l_still, _ = fam.loss(model, still, torch.Generator().manual_seed(1))
        l_moved, _ = fam.loss(model, moved, torch.Generator().manual_seed(1))
    assert l_moved.item() > 10 * l_still.item()
