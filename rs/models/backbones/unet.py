"""A modern UNet in the style of PDEArena (Gupta & Brandstetter, 2022): residual blocks with group norm,
FiLM conditioning in every block, optional self-attention at chosen (coarse) levels."""

from __future__ import annotations

import torch
from torch import nn

from rs.models.backbones.common import conv3, crop, groups_for, pad_to_multiple
from rs.models.conditioning import CondEmbedding, FiLM


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float, padding: str = "zeros"):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_for(c_in, groups), c_in)
        self.conv1 = conv3(c_in, c_out, padding)
        self.film = FiLM(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups_for(c_out, groups), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = conv3(c_out, c_out, padding)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.film(self.norm2(h), emb)
        h = self.conv2(self.drop(self.act(h)))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Multi-head self-attention over the H·W tokens of a (coarse) feature map."""

    def __init__(self, channels: int, groups: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(groups_for(channels, groups), channels)
        self.attn = nn.MultiheadAttention(channels, num_heads=groups_for(channels, heads), batch_first=True)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        B, C, H, W = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        out, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(B, C, H, W)


class UNet(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, cond_dim: int, width: int = 32,
        channel_mults: tuple[int, ...] = (1, 2, 2), blocks_per_level: int = 1,
        attention_levels: tuple[int, ...] = (), norm_groups: int = 8, dropout: float = 0.0,
        padding: str = "zeros",
    ):
        super().__init__()
        emb_dim = 4 * width
        self.embed = CondEmbedding(cond_dim, emb_dim)
        self.stem = conv3(in_channels, width, padding)
        chans = [width * m for m in channel_mults]
        self.levels = len(chans)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, c = [], width
        for i, ch in enumerate(chans):
            level = nn.ModuleList()
            for _ in range(blocks_per_level):
                level.append(ResBlock(c, ch, emb_dim, norm_groups, dropout, padding))
                c = ch
                if i in attention_levels:
                    level.append(AttnBlock(c, norm_groups))
            self.down.append(level)
            skips.append(c)
            if i < self.levels - 1:
                self.downsample.append(conv3(c, c, padding, stride=2))
        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim, norm_groups, dropout, padding), AttnBlock(c, norm_groups),
                                  ResBlock(c, c, emb_dim, norm_groups, dropout, padding)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(self.levels)):
            level = nn.ModuleList()
            for j in range(blocks_per_level):
                level.append(ResBlock(c + (skips[i] if j == 0 else 0), chans[i], emb_dim, norm_groups, dropout,
                                      padding))
                c = chans[i]
                if i in attention_levels:
                    level.append(AttnBlock(c, norm_groups))
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                   conv3(c, c, padding)))
        self.head = nn.Sequential(nn.GroupNorm(groups_for(c, norm_groups), c), nn.SiLU(),
                                  conv3(c, out_channels, padding))

    def forward(self, x_BCHW: torch.Tensor, cond_BP: torch.Tensor | None = None) -> torch.Tensor:
        x, hw = pad_to_multiple(x_BCHW, 2 ** (self.levels - 1))
        emb = self.embed(cond_BP, x.shape[0], x)
        h = self.stem(x)
        skips = []
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
            skips.append(h)
            if i < self.levels - 1:
                h = self.downsample[i](h)
        for block in self.mid:
            h = block(h, emb)
        for k, level in enumerate(self.up):
            i = self.levels - 1 - k
            for j, block in enumerate(level):
                h = block(torch.cat([h, skips[i]], dim=1) if j == 0 else h, emb)
            if i > 0:
                h = self.upsample[k](h)
        return crop(self.head(h), hw)
