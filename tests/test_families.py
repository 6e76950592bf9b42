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


def _ramp_ema(updates: int, decay: float) -> tuple[torch.nn.Module, torch.optim.swa_utils.AveragedModel]:
    """An EMA of a one-parameter model whose weight is k after update k (k = 1 … updates)."""
    from rs.models.build import build_ema

    model = torch.nn.Linear(1, 1, bias=False)
    ema = build_ema(model, decay)
    for k in range(1, updates + 1):
        with torch.no_grad():
            model.weight.fill_(float(k))
        ema.update_parameters(model)
    return model, ema


def test_ema_of_a_short_run_forgets_the_first_weights():
    # 300 updates at decay 0.999 without warmup keep 0.999^299 ≈ 74% of the weight on update 1: EMA ≈ 45.
    _, ema = _ramp_ema(300, 0.999)
    value = float(ema.module.weight.detach())
    assert 220 < value < 300  # an average over the last ~70 updates (300^0.75)
    # once warm, the configured decay caps it: after 20 000 updates the lag of a ramp is ~decay/(1-decay)
    _, long = _ramp_ema(20_000, 0.99)
    assert abs((20_000 - float(long.module.weight.detach())) - 0.99 / 0.01) < 2


def test_checkpoint_resume_continues_the_ema_warmup(tmp_path: Path):
    from rs.models.build import build_ema
    from rs.train import checkpoint as ckpt

    cfg = load_config(REPO / "configs/train/debug.yaml", env={})
    model, ema = _ramp_ema(50, 0.999)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    d = ckpt.write(tmp_path / "c", cfg, model, ema, opt, sched, ckpt.Progress(1, 50), {})
    again = build_ema(torch.nn.Linear(1, 1, bias=False), 0.999)
    ckpt.restore(d, torch.nn.Linear(1, 1, bias=False), again, torch.optim.SGD(model.parameters(), lr=0.1), sched)
    assert int(again.n_averaged) == 50 and float(again.module.weight.detach()) == float(ema.module.weight.detach())
    # without the count, the next update would copy the model's weights instead of averaging them in
    with torch.no_grad():
        model.weight.fill_(1000.0)
    again.update_parameters(model)
    assert float(again.module.weight.detach()) < 500
