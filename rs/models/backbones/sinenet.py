"""SineNet (Zhang et al., ICLR 2024): a sequence of U-Nets ("waves"), each a down-and-up pass with
residual connections, so features evolve in stages that disentangle advection from diffusion
instead of one U-Net having to carry misaligned skip features across a whole time step."""

from __future__ import annotations

import torch
from torch import nn

from rs.models.backbones.common import conv3, crop, groups_for, pad_to_multiple
from rs.models.backbones.unet import ResBlock
from rs.models.conditioning import CondEmbedding


class Wave(nn.Module):
    """One down-and-up pass; its output is added to the running features (the residual path)."""

    def __init__(self, channels: list[int], emb_dim: int, groups: int, dropout: float, padding: str):
        super().__init__()
        self.levels = len(channels)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        c = channels[0]
        for i, ch in enumerate(channels):
            self.down.append(ResBlock(c, ch, emb_dim, groups, dropout, padding))
            c = ch
            if i < self.levels - 1:
                self.pool.append(conv3(c, c, padding, stride=2))
        self.up = nn.ModuleList()
        self.unpool = nn.ModuleList()
        for i in reversed(range(self.levels - 1)):
            self.unpool.append(nn.Upsample(scale_factor=2, mode="nearest"))
            self.up.append(ResBlock(c + channels[i], channels[i], emb_dim, groups, dropout, padding))
            c = channels[i]

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            if i < self.levels - 1:
                skips.append(h)
                h = self.pool[i](h)
        for unpool, block in zip(self.unpool, self.up, strict=True):
            h = block(torch.cat([unpool(h), skips.pop()], dim=1), emb)
        return h


class SineNet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, width: int = 32,
                 channel_mults: tuple[int, ...] = (1, 2, 2), waves: int = 4, norm_groups: int = 8,
                 dropout: float = 0.0, padding: str = "zeros"):
        super().__init__()
        emb_dim = 4 * width
        chans = [width * m for m in channel_mults]
        chans[0] = width
        self.multiple = 2 ** (len(chans) - 1)
        self.embed = CondEmbedding(cond_dim, emb_dim)
        self.lift = conv3(in_channels, width, padding)
        self.waves = nn.ModuleList([Wave(chans, emb_dim, norm_groups, dropout, padding) for _ in range(waves)])
        self.head = nn.Sequential(nn.GroupNorm(groups_for(width, norm_groups), width), nn.SiLU(),
                                  conv3(width, out_channels, padding))

    def forward(self, x_BCHW: torch.Tensor, cond_BP: torch.Tensor | None = None) -> torch.Tensor:
        x, hw = pad_to_multiple(x_BCHW, self.multiple)
        emb = self.embed(cond_BP, x.shape[0], x)
        h = self.lift(x)
        for wave in self.waves:
            h = h + wave(h, emb)
        return crop(self.head(h), hw)
