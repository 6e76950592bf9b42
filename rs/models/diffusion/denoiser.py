"""The conditional denoiser: a backbone that sees the noisy target, the previous frame(s) and `cond`
plus the diffusion time (PDE-Refiner-style conditioning, Lippe et al. 2023)."""

from __future__ import annotations

import torch
from torch import nn

from rs.config.schema import ModelConfig
from rs.models.backbones import build_backbone
from rs.models.conditioning import sinusoidal_embedding

TIME_EMB = 32


class ConditionalDenoiser(nn.Module):
    def __init__(self, model: ModelConfig, in_channels: int, out_channels: int, cond_dim: int, num_steps: int):
        super().__init__()
        self.num_steps = num_steps
        self.net = build_backbone(model, out_channels + in_channels, out_channels, cond_dim + TIME_EMB)
        # std of the one-step change: with model.predict_residual the diffusion runs on change / delta_scale
        self.register_buffer("delta_scale", torch.ones(out_channels))

    def forward(
        self, x_t: torch.Tensor, t_B: torch.Tensor, history: torch.Tensor, cond_BP: torch.Tensor | None
    ) -> torch.Tensor:
        emb = sinusoidal_embedding(t_B.float() * (1000.0 / self.num_steps), TIME_EMB).to(x_t.dtype)
        c = emb if cond_BP is None else torch.cat([cond_BP.to(x_t.dtype), emb], dim=1)
        return self.net(torch.cat([x_t, history], dim=1), c)
