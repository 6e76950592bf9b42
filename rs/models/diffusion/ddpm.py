"""Forward process, parameterizations and the DDIM sampler as pure functions."""

from __future__ import annotations

from collections.abc import Callable

import torch


def _at(a: torch.Tensor, t_B: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return a.to(like.device)[t_B].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def q_sample(x0: torch.Tensor, t_B: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε (Ho, Jain & Abbeel, NeurIPS 2020, eq. 4)."""
    a = _at(alpha_bar, t_B, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def v_target(x0: torch.Tensor, t_B: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """v = √ᾱ ε − √(1−ᾱ) x0 (Salimans & Ho, ICLR 2022)."""
    a = _at(alpha_bar, t_B, x0)
    return a.sqrt() * noise - (1 - a).sqrt() * x0


def training_target(prediction: str, x0, t_B, noise, alpha_bar) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """What the network regresses: ε (Ho et al. 2020) or v (Salimans & Ho 2022)."""
    return noise if prediction == "eps" else v_target(x0, t_B, noise, alpha_bar)


def to_x0_eps(
    out: torch.Tensor, x_t: torch.Tensor, t_B: torch.Tensor, alpha_bar: torch.Tensor, prediction: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, ε) from a network output under ε- or v-prediction (Salimans & Ho, ICLR 2022, app. D)."""
    a = _at(alpha_bar, t_B, x_t)
    if prediction == "eps":
        return (x_t - (1 - a).sqrt() * out) / a.sqrt(), out
    return a.sqrt() * x_t - (1 - a).sqrt() * out, (1 - a).sqrt() * x_t + a.sqrt() * out


def ddim_timesteps(num_steps: int, sampling_steps: int) -> list[int]:
    """Evenly spaced decreasing subsequence of [0, T) ending at 0 (Song, Meng & Ermon, ICLR 2021)."""
    k = min(sampling_steps, num_steps)
    return sorted({round(i * (num_steps - 1) / max(k - 1, 1)) for i in range(k)}, reverse=True)


def ddim_sample(
    denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    alpha_bar: torch.Tensor,
    sampling_steps: int,
    prediction: str,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDIM: deterministic for η = 0, DDPM-like stochastic for η = 1 (Song, Meng & Ermon, ICLR 2021, eq. 12)."""
    x = x_T
    steps = ddim_timesteps(alpha_bar.numel(), sampling_steps)
    for i, t in enumerate(steps):
        t_B = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0, eps = to_x0_eps(denoise(x, t_B), x, t_B, alpha_bar, prediction)
        a_prev = float(alpha_bar[steps[i + 1]]) if i + 1 < len(steps) else 1.0
        a_t = float(alpha_bar[t])
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5 if a_prev < 1.0 else 0.0
        x = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x
