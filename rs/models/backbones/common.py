"""Shape handling shared by backbones: any H×W in, the same H×W out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x_BCHW: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad bottom/right so H and W divide `multiple`; returns the original (H, W) for cropping."""
    H, W = x_BCHW.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    if ph or pw:
        x_BCHW = F.pad(x_BCHW, (0, pw, 0, ph), mode="replicate")
    return x_BCHW, (H, W)


def crop(x_BCHW: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    return x_BCHW[..., : hw[0], : hw[1]]


def groups_for(channels: int, wanted: int) -> int:
    """The largest group count ≤ wanted that divides `channels` (GroupNorm needs a divisor)."""
    g = min(wanted, channels)
    while channels % g:
        g -= 1
    return g


class ReplicateConv2d(nn.Conv2d):
    """`nn.Conv2d(padding_mode="replicate")` with the one-cell border built by concatenation: torch 2.13's
    compiled backward of `replication_pad2d` fails a stride assertion; this compiles and is the same map."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)
        x = torch.cat([x[..., :1, :], x, x[..., -1:, :]], dim=-2)
        return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, self.groups)


def conv3(c_in: int, c_out: int, padding: str = "zeros", stride: int = 1) -> nn.Conv2d:
    """A 3×3 convolution that keeps H×W (halves it with stride 2), its border filled by `padding`."""
    cls = ReplicateConv2d if padding == "replicate" else nn.Conv2d
    return cls(c_in, c_out, 3, stride=stride, padding=1, padding_mode=padding)
