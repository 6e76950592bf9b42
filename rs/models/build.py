"""Model families: `train.model_family` -> builder(config) -> module. The training loop only ever calls
these builders; nothing in it knows which backbone or method it runs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rs.config import ExperimentConfig
from rs.models.backbones import build_backbone
from rs.models.diffusion.denoiser import ConditionalDenoiser


def set_delta_scale(model: nn.Module, scale: list[float] | tuple[float, ...]) -> None:
    """Set the per-channel std of the one-step change (rs.data.normalize.delta_std) on a freshly built model;
    it is a buffer, so checkpoints carry it to evaluation."""
    model.get_buffer("delta_scale").copy_(torch.as_tensor(scale, dtype=torch.float32))


def newest_frame(cfg: ExperimentConfig) -> slice:
    """The input channels of the newest history frame (inputs are K frames × C channels, oldest first)."""
    C = len(cfg.data.fields)
    return slice((cfg.data.history - 1) * C, cfg.data.history * C)


class Surrogate(nn.Module):
    """One-step predictor: (input (B, K·C[+1], H, W), cond) -> next frame (B, C, H, W). In residual mode the
    network's unit-scale output is multiplied by `delta_scale` and added to the last input frame."""

    def __init__(self, cfg: ExperimentConfig):
        super().__init__()
        m = cfg.model
        assert m.in_channels and m.out_channels and m.cond_dim is not None
        self.channels = m.out_channels
        self.last = newest_frame(cfg)
        self.residual = m.predict_residual
        self.net = build_backbone(m, m.in_channels, m.out_channels, m.cond_dim)
        self.register_buffer("delta_scale", torch.ones(self.channels))

    def forward(self, input_BCHW: torch.Tensor, cond_BP: torch.Tensor | None) -> torch.Tensor:
        out = self.net(input_BCHW, cond_BP)
        return input_BCHW[:, self.last] + out * self.delta_scale[:, None, None] if self.residual else out


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


def ema_decay_at(updates: int, decay: float, power: float) -> float:
    """min(decay, 1 − (1 + n)^−power) after n updates: an average over the last ~n^power steps while training is
    young, so a short run's EMA does not keep its initial weights (k-diffusion's EMAWarmup, Crowson 2022)."""
    return min(decay, 1.0 - (1.0 + updates) ** -power)


def build_ema(model: torch.nn.Module, decay: float, power: float = 0.75) -> torch.optim.swa_utils.AveragedModel:
    """EMA weights of `model` (kept by training, used by diffusion sampling and evaluation). A fixed decay
    of 0.999 over a 900-step run would leave 0.999^900 ≈ 40% of the weight on the first step's weights."""
    from torch.optim.swa_utils import AveragedModel

    def update(ema: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        torch._foreach_lerp_(ema, current, 1.0 - ema_decay_at(int(n_averaged), decay, power))

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
