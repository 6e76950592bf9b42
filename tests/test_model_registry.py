"""Every registry key builds and trains: backbones at two grid sizes and two batch sizes, both families."""

from __future__ import annotations

import typing

import pytest
import torch

from rs.config import load_config
from rs.config.schema import AdaptiveConfig, DiffusionConfig, LossConfig, ModelConfig
from rs.errors import RsError
from rs.models.adaptive import REGION_SELECTORS
from rs.models.backbones import BACKBONES, build_backbone
from rs.models.build import MODEL_FAMILIES, build_model
from rs.models.diffusion import SCHEDULES, TIMESTEP_SAMPLERS
from rs.models.losses import LOSSES

SMALL = ModelConfig(width=8, channel_mults=[1, 2], fno_modes=6, fno_layers=2, sinenet_waves=2, norm_groups=4)


def _choices(section, field) -> set[str]:
    return set(typing.get_args(section.model_fields[field].annotation))


def test_registries_cover_exactly_the_config_choices():
    assert set(BACKBONES) == _choices(ModelConfig, "backbone")
    assert set(SCHEDULES) == _choices(DiffusionConfig, "noise_schedule")
    assert set(TIMESTEP_SAMPLERS) == _choices(DiffusionConfig, "timestep_sampler")
    assert set(LOSSES) == _choices(LossConfig, "name")
    assert set(REGION_SELECTORS) == _choices(AdaptiveConfig, "region_selector")


@pytest.mark.parametrize("name", sorted(BACKBONES))
@pytest.mark.parametrize("hw", [(32, 32), (48, 64), (33, 47)])
@pytest.mark.parametrize("batch", [1, 3])
def test_backbone_forward_backward(name: str, hw: tuple[int, int], batch: int):
    torch.manual_seed(0)
    net = build_backbone(SMALL.model_copy(update={"backbone": name}), 4, 2, 3)
    x = torch.randn(batch, 4, *hw)
    cond = torch.randn(batch, 3)
    y = net(x, cond)
    assert y.shape == (batch, 2, *hw)
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # The conditioning reaches the output (FiLM starts as identity, so perturb its projections first).
    for mod in net.modules():
        if mod.__class__.__name__ == "FiLM":
            torch.nn.init.normal_(mod.proj.weight, std=0.1)
    with torch.no_grad():
        assert not torch.allclose(net(x, cond), net(x, cond + 1.0))


@pytest.mark.parametrize("name", ["unet", "sinenet"])
def test_padding_mode_reaches_every_convolution(name: str):
    """replicate: a front uniform along y (planar) stays uniform — zero padding marks the walls; circular: a
    roll along y by a multiple of the coarsest stride commutes with the network."""
    torch.manual_seed(0)
    cfg = SMALL.model_copy(update={"backbone": name, "attention_levels": [1]})
    x = torch.randn(2, 4, 1, 16).expand(2, 4, 16, 16).contiguous()  # varies along x only
    cond = torch.randn(2, 3)
    with torch.no_grad():
        planar = build_backbone(cfg.model_copy(update={"padding_mode": "replicate"}), 4, 2, 3)(x, cond)
        assert torch.allclose(planar, planar[:, :, :1].expand_as(planar), atol=1e-5)
        zeros = build_backbone(cfg, 4, 2, 3)(x, cond)
        assert not torch.allclose(zeros, zeros[:, :, :1].expand_as(zeros), atol=1e-3)
        net = build_backbone(cfg.model_copy(update={"padding_mode": "circular"}), 4, 2, 3)
        x = torch.randn(2, 4, 16, 16)
        assert torch.allclose(net(x.roll(4, dims=2), cond), net(x, cond).roll(4, dims=2), atol=1e-5)


def test_replicate_convolution_matches_torchs_and_compiles_with_gradients():
    """torch 2.13's compiled backward of nn.Conv2d(padding_mode="replicate") fails a stride assertion."""
    from rs.models.backbones.common import conv3

    torch.manual_seed(0)
    ours = conv3(3, 5, "replicate", stride=2)
    ref = torch.nn.Conv2d(3, 5, 3, stride=2, padding=1, padding_mode="replicate")
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 12, 10)
    assert torch.allclose(ours(x), ref(x), atol=1e-6)
    x.requires_grad_(True)
    torch.compile(ours)(x.contiguous(memory_format=torch.channels_last)).square().sum().backward()
    expected = torch.autograd.grad(ref(x).square().sum(), x)[0]
    assert torch.allclose(x.grad, expected, atol=1e-5)


def test_unknown_backbone_lists_known_ones():
    bad = ModelConfig.model_construct(**{**SMALL.model_dump(), "backbone": "resnet"})
    with pytest.raises(RsError, match="unknown backbone 'resnet'; known: fno, sinenet, unet"):
        build_backbone(bad, 2, 2, 3)


def _overfit(cfg, steps=200):
    """Loss on one fixed batch after `steps` Adam steps, relative to the first."""
    from rs.models.diffusion.ddpm import q_sample, training_target
    from rs.models.diffusion.schedules import alphas_cumprod

    torch.manual_seed(0)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.randn(2, 2, 16, 16)
    target = torch.roll(x, 1, dims=-1) * 0.5 + 0.2
    cond = torch.randn(2, 3)
    alpha_bar = alphas_cumprod(SCHEDULES[cfg.diffusion.noise_schedule](cfg.diffusion.num_steps)).float()
    t = torch.tensor([3, 7])
    noise = torch.randn_like(target)
    losses = []
    for _ in range(steps):
        if cfg.train.model_family == "surrogate":
            pred, goal = model(x, cond), target
        else:
            goal = training_target(cfg.diffusion.prediction, target, t, noise, alpha_bar)
            pred = model(q_sample(target, t, noise, alpha_bar), t, x, cond)
        loss = (pred - goal).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], min(losses[-10:])


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_tiny_overfit_per_family(family: str, backbone: str):
    cfg = load_config(None, [f"train.model_family={family}", f"model.backbone={backbone}", "model.width=16",
                             "model.channel_mults=[1, 2]", "model.norm_groups=4", "model.sinenet_waves=2",
                             "model.fno_modes=8", "diffusion.num_steps=10"], env={})
    first, last = _overfit(cfg)
    assert last < first / 10, (first, last)


def test_models_list_cli():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run([sys.executable, "-m", "rs", "models", "list", "--json"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], env=os.environ)
    assert proc.returncode == 0, proc.stderr
    rows = {r["backbone"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(BACKBONES)
    for r in rows.values():
        assert r["params"] > 10_000
        assert 3.5 < r["gflops_128"] / r["gflops_64"] < 4.5  # convolutions scale with the pixel count
