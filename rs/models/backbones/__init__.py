"""Backbone registry: `model.backbone` name -> builder(model config, in, out, cond channels)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from rs.config.schema import ModelConfig
from rs.errors import RsError
from rs.models.backbones.fno import FNO
from rs.models.backbones.sinenet import SineNet
from rs.models.backbones.unet import UNet

Builder = Callable[[ModelConfig, int, int, int], nn.Module]


def _unet(m: ModelConfig, c_in: int, c_out: int, cond: int) -> nn.Module:
    return UNet(c_in, c_out, cond, m.width, tuple(m.channel_mults), m.blocks_per_level,
                tuple(m.attention_levels), m.norm_groups, m.dropout, m.padding_mode)


def _fno(m: ModelConfig, c_in: int, c_out: int, cond: int) -> nn.Module:
    return FNO(c_in, c_out, cond, m.width, m.fno_modes, m.fno_layers, m.fno_padding)


def _sinenet(m: ModelConfig, c_in: int, c_out: int, cond: int) -> nn.Module:
    return SineNet(c_in, c_out, cond, m.width, tuple(m.channel_mults), m.sinenet_waves, m.norm_groups, m.dropout,
                   m.padding_mode)


BACKBONES: dict[str, Builder] = {"unet": _unet, "fno": _fno, "sinenet": _sinenet}


def build_backbone(m: ModelConfig, in_channels: int, out_channels: int, cond_dim: int) -> nn.Module:
    """A module mapping (x (B, in, H, W), cond (B, cond_dim)) to (B, out, H, W) for any H×W."""
    if m.backbone not in BACKBONES:
        raise RsError(f"model.backbone: unknown backbone {m.backbone!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[m.backbone](m, in_channels, out_channels, cond_dim)
