"""Noise schedules as pure functions: `schedule(num_steps) -> betas (T,)` in float64."""

from __future__ import annotations

import math

import torch


def linear(num_steps: int) -> torch.Tensor:
    """Linear β from 1e-4 to 0.02 at T = 1000, rescaled to other T (Ho, Jain & Abbeel, NeurIPS 2020)."""
    scale = 1000.0 / num_steps
    return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), num_steps, dtype=torch.float64)


def cosine(num_steps: int, s: float = 0.008) -> torch.Tensor:
    """ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2) / ᾱ(0) (Nichol & Dhariwal, ICML 2021)."""
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return _betas_from_alpha_bar(f / f[0])


def sigmoid(num_steps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> torch.Tensor:
    """ᾱ(t) from a shifted, scaled sigmoid in t (Jabri, Fleet & Chen, ICML 2023, 'RIN', arXiv 2022)."""
    t = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
    alpha_bar = (v_end - torch.sigmoid((t * (end - start) + start) / tau)) / (v_end - v_start)
    return _betas_from_alpha_bar(alpha_bar)


def _betas_from_alpha_bar(alpha_bar: torch.Tensor, max_beta: float = 0.999) -> torch.Tensor:
    alpha_bar = alpha_bar.clamp(min=0.0)
    betas = 1.0 - alpha_bar[1:] / alpha_bar[:-1].clamp(min=1e-12)
    return betas.clamp(min=1e-8, max=max_beta)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1.0 - betas, dim=0)


def log_snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """λ = log(ᾱ / (1 − ᾱ)) (Kingma, Salimans, Poole & Ho, NeurIPS 2021)."""
    return torch.log(alpha_bar) - torch.log1p(-alpha_bar)


SCHEDULES = {"linear": linear, "cosine": cosine, "sigmoid": sigmoid}
