"""Losses, composable from the `loss` config: a base pointwise loss, an interface weight from |∇φ| of the
target, region weights from the adaptive selector, and a multi-level wavelet term."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rs.config.schema import LossConfig
from rs.models.wavelets import wavedec2

EPS = 1e-8


def _reduce(err_B: torch.Tensor, weight: torch.Tensor | None, err: torch.Tensor) -> torch.Tensor:
    return err_B.mean() if weight is None else (err * weight).sum() / (weight.sum() * err.shape[1] + EPS)


def mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error, optionally weighted per pixel (weight broadcast over channels)."""
    err = (pred - target) ** 2
    return _reduce(err.mean(dim=tuple(range(1, err.dim()))), weight, err)


def rel_l2(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ‖pred − target‖₂ / ‖target‖₂, averaged over the batch: the definition of `val_rel_l2`."""
    dims = tuple(range(1, pred.dim()))
    w = 1.0 if weight is None else weight
    num = ((pred - target) ** 2 * w).sum(dim=dims).sqrt()
    den = (target**2 * w).sum(dim=dims).sqrt()
    return (num / (den + EPS)).mean()


def rel_l2_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(1, pred.dim()))
    return (pred - target).flatten(1).norm(dim=1) / (target.flatten(1).norm(dim=1) + EPS) if dims else pred


def wavelet_loss(pred: torch.Tensor, target: torch.Tensor, wavelet: str = "haar", levels: int = 2) -> torch.Tensor:
    """Σ over levels and sub-bands of the mean squared coefficient difference; zero iff pred == target
    (the transform is orthogonal), and it weighs fine-scale detail — interfaces — explicitly."""
    cp, ct = wavedec2(pred, wavelet, levels), wavedec2(target, wavelet, levels)
    total = ((cp[0] - ct[0]) ** 2).mean()
    for dp, dt in zip(cp[1:], ct[1:], strict=True):
        total = total + sum(((a - b) ** 2).mean() for a, b in zip(dp, dt, strict=True))
    return total


def interface_weight(target_phi: torch.Tensor, strength: float) -> torch.Tensor:
    """1 + strength·|∇φ|/max|∇φ| per sample: (B, 1, H, W), emphasising the diffuse interface."""
    gy, gx = torch.gradient(target_phi, dim=(-2, -1))
    g = (gx**2 + gy**2).sqrt()
    g = g / (g.flatten(1).amax(dim=1).view(-1, *([1] * (g.dim() - 1))) + EPS)
    return 1.0 + strength * g


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"mse": mse, "rel_l2": rel_l2}

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, dict[str, float]]]


def build_loss(cfg: LossConfig, phi_channel: int | None = 0) -> Loss:
    """loss(pred, target, region_weight) -> (scalar, parts for logging); pred/target (B, C, H, W) or (B, S, C, H, W)."""
    base = LOSSES[cfg.name]

    def loss(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None):  # type: ignore[no-untyped-def]
        flat_p = pred.flatten(0, 1) if pred.dim() == 5 else pred
        flat_t = target.flatten(0, 1) if target.dim() == 5 else target
        weight = region
        if cfg.weight_interface > 0 and phi_channel is not None:
            w = interface_weight(flat_t[:, phi_channel : phi_channel + 1], cfg.weight_interface)
            if weight is not None and weight.shape[0] != w.shape[0]:
                weight = weight.repeat_interleave(w.shape[0] // weight.shape[0], dim=0)
            weight = w if weight is None else w * weight
        elif weight is not None and weight.shape[0] != flat_p.shape[0]:
            weight = weight.repeat_interleave(flat_p.shape[0] // weight.shape[0], dim=0)
        value = base(flat_p, flat_t, weight)
        parts = {cfg.name: float(value.detach())}
        if cfg.weight_wavelet_loss > 0:
            wl = wavelet_loss(flat_p, flat_t, cfg.wavelet, cfg.wavelet_levels)
            parts["wavelet"] = float(wl.detach())
            value = value + cfg.weight_wavelet_loss * wl
        return value, parts

    return loss
