"""Parameter counts and forward FLOPs of every backbone (`rs models list`)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from rs.config.schema import ModelConfig
from rs.models.backbones import BACKBONES, build_backbone


def forward_flops(net: torch.nn.Module, shape: tuple[int, ...], cond_dim: int) -> int:
    x = torch.zeros(shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, torch.zeros(shape[0], cond_dim))
    return int(counter.get_total_flops())


def rows(channels: int = 2, cond_dim: int = 3, sizes: tuple[int, ...] = (64, 128)) -> list[dict[str, object]]:
    out = []
    for name in BACKBONES:
        m = ModelConfig(backbone=name)  # type: ignore[arg-type]
        net = build_backbone(m, channels, channels, cond_dim).eval()
        row: dict[str, object] = {"backbone": name, "params": sum(p.numel() for p in net.parameters())}
        for s in sizes:
            row[f"gflops_{s}"] = forward_flops(net, (1, channels, s, s), cond_dim) / 1e9
        out.append(row)
    return out


def table(data: list[dict[str, object]]) -> str:
    lines = [f"{'backbone':<10} {'params':>12} {'GFLOPs@64²':>11} {'GFLOPs@128²':>12}"]
    for r in data:
        lines.append(f"{r['backbone']:<10} {r['params']:>12,} {r['gflops_64']:>11.3f} {r['gflops_128']:>12.3f}")
    lines.append("default widths (rs config schema: model.*), 2 fields in and out, 3 conditioning values, batch 1;")
    lines.append("FLOPs as counted by torch.utils.flop_counter, which does not count FFTs (FNO spectral layers)")
    return "\n".join(lines)
