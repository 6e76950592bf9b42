"""Training timestep samplers as pure functions: `weights(alpha_bar, shift) -> p(t) (T,)`; draw with
`sample_timesteps`."""

from __future__ import annotations

import torch

from rs.models.diffusion.schedules import log_snr


def uniform(alpha_bar: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """p(t) = 1/T (Ho, Jain & Abbeel, NeurIPS 2020)."""
    return torch.full_like(alpha_bar, 1.0 / alpha_bar.numel())


def logsnr(alpha_bar: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
    """p(t) ∝ logistic density of λ_t centred at `shift`, times |Δλ_t|: importance sampling over log-SNR
    (Kingma et al., NeurIPS 2021) with low-noise emphasis for shift > 0 (Lippe et al., PDE-Refiner, 2023)."""
    lam = log_snr(alpha_bar.clamp(1e-12, 1 - 1e-12))
    edges = torch.cat([lam[:1] + (lam[0] - lam[1]) / 2, (lam[1:] + lam[:-1]) / 2, lam[-1:] - (lam[-2] - lam[-1]) / 2])
    cdf = torch.sigmoid(edges - shift)  # logistic CDF: exact mass of each timestep's λ interval
    p = (cdf[:-1] - cdf[1:]).abs().clamp(min=0)
    return p / p.sum()


TIMESTEP_SAMPLERS = {"uniform": uniform, "logsnr": logsnr}


def sample_timesteps(p: torch.Tensor, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw `batch` timesteps in [0, T) from the probabilities `p`."""
    return torch.multinomial(p.float(), batch, replacement=True, generator=generator)
