"""Model families: `train.model_family` -> builder(config) -> module. The training loop only ever calls
these builders; nothing in it knows which backbone or method it runs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rs.config import ExperimentConfig
from rs.models.backbones import build_backbone
from rs.models.diffusion.denoiser import ConditionalDenoiser


class Surrogate(nn.Module):
    """One-step predictor: (input (B, K·C[+1], H, W), cond) -> next frame (B, C, H, W)."""

    def __init__(self, cfg: ExperimentConfig):
        super().__init__()
        m = cfg.model
        assert m.in_channels and m.out_channels and m.cond_dim is not None
        self.channels = m.out_channels
        self.last = slice((cfg.data.history - 1) * self.channels, cfg.data.history * self.channels)
        self.residual = m.predict_residual
        self.net = build_backbone(m, m.in_channels, m.out_channels, m.cond_dim)

    def forward(self, input_BCHW: torch.Tensor, cond_BP: torch.Tensor | None) -> torch.Tensor:
        out = self.net(input_BCHW, cond_BP)
        return input_BCHW[:, self.last] + out if self.residual else out


def _surrogate(cfg: ExperimentConfig) -> nn.Module:
    return Surrogate(cfg)


def _diffusion(cfg: ExperimentConfig) -> nn.Module:
    m = cfg.model
    assert m.in_channels and m.out_channels and m.cond_dim is not None
    return ConditionalDenoiser(m, m.in_channels, m.out_channels, m.cond_dim, cfg.diffusion.num_steps)


MODEL_FAMILIES: dict[str, Callable[[ExperimentConfig], nn.Module]] = {
    "surrogate": _surrogate, "diffusion": _diffusion,
}


def build_model(cfg: ExperimentConfig) -> nn.Module:
    return MODEL_FAMILIES[cfg.train.model_family](cfg)


def build_ema(model: torch.nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """EMA weights of `model` (kept by training, used by diffusion sampling and evaluation)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
