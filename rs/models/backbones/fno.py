"""Fourier Neural Operator (Li et al., ICLR 2021): spectral convolutions keeping the lowest modes, a
pointwise path, FiLM conditioning, and zero padding so non-periodic boundaries are not wrapped."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rs.models.conditioning import CondEmbedding, FiLM


class SpectralConv2d(nn.Module):
    """Multiply the lowest `modes` Fourier coefficients (both signs along H) by learned complex weights."""

    def __init__(self, c_in: int, c_out: int, modes: int):
        super().__init__()
        scale = 1.0 / (c_in * c_out)
        self.modes = modes
        self.w_pos = nn.Parameter(scale * torch.randn(c_in, c_out, modes, modes, dtype=torch.cfloat))
        self.w_neg = nn.Parameter(scale * torch.randn(c_in, c_out, modes, modes, dtype=torch.cfloat))

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x_BCHW.shape
        x_ft = torch.fft.rfft2(x_BCHW.float(), norm="ortho")
        mh, mw = min(self.modes, H // 2), min(self.modes, W // 2 + 1)  # grids smaller than the modes
        out = x_ft.new_zeros(B, self.w_pos.shape[1], H, W // 2 + 1)
        out[:, :, :mh, :mw] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :mh, :mw], self.w_pos[:, :, :mh, :mw])
        out[:, :, -mh:, :mw] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -mh:, :mw], self.w_neg[:, :, :mh, :mw])
        return torch.fft.irfft2(out, s=(H, W), norm="ortho").to(x_BCHW.dtype)


class FNO(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, width: int = 32, modes: int = 12,
                 layers: int = 4, padding: int = 8):
        super().__init__()
        emb_dim = 4 * width
        self.padding = padding
        self.embed = CondEmbedding(cond_dim, emb_dim)
        self.lift = nn.Conv2d(in_channels + 2, width, 1)  # + normalized (y, x) coordinates
        self.spectral = nn.ModuleList([SpectralConv2d(width, width, modes) for _ in range(layers)])
        self.pointwise = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(layers)])
        self.films = nn.ModuleList([FiLM(emb_dim, width) for _ in range(layers)])
        self.project = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.GELU(), nn.Conv2d(2 * width, out_channels, 1))

    def forward(self, x_BCHW: torch.Tensor, cond_BP: torch.Tensor | None = None) -> torch.Tensor:
        B, _, H, W = x_BCHW.shape
        ys = torch.linspace(0, 1, H, device=x_BCHW.device, dtype=x_BCHW.dtype)
        xs = torch.linspace(0, 1, W, device=x_BCHW.device, dtype=x_BCHW.dtype)
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")).expand(B, 2, H, W)
        h = self.lift(torch.cat([x_BCHW, grid], dim=1))
        h = F.pad(h, (0, self.padding, 0, self.padding))
        emb = self.embed(cond_BP, B, x_BCHW)
        for i, (spec, point, film) in enumerate(zip(self.spectral, self.pointwise, self.films, strict=True)):
            h = film(spec(h) + point(h), emb)
            if i < len(self.spectral) - 1:
                h = F.gelu(h)
        h = h[..., :H, :W]
        return self.project(h)
