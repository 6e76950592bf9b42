"""Conditioning on process parameters and time: an embedding MLP and FiLM (Perez et al., AAAI 2018)."""

from __future__ import annotations

import math

import torch
from torch import nn


class CondEmbedding(nn.Module):
    """cond (B, P) -> embedding (B, E) shared by every FiLM layer of a backbone."""

    def __init__(self, cond_dim: int, emb_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(max(cond_dim, 1), emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.cond_dim = cond_dim

    def forward(self, cond_BP: torch.Tensor | None, batch: int, ref: torch.Tensor) -> torch.Tensor:
        if cond_BP is None or self.cond_dim == 0:
            cond_BP = ref.new_zeros(batch, max(self.cond_dim, 1))
        return self.net(cond_BP.to(ref.dtype))


class FiLM(nn.Module):
    """Feature-wise affine modulation x·(1+γ) + β with (γ, β) from the embedding; starts as identity."""

    def __init__(self, emb_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(emb_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x_BCHW: torch.Tensor, emb_BE: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(emb_BE).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x_BCHW * (1.0 + gamma) + beta


def sinusoidal_embedding(t_B: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer-style features of a scalar per sample (Vaswani et al. 2017), e.g. a diffusion time."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t_B.device, dtype=torch.float32) / half)
    args = t_B.float().unsqueeze(-1) * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return torch.nn.functional.pad(emb, (0, dim % 2))
