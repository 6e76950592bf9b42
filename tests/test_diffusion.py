"""Diffusion math: schedules, timestep samplers' densities, the forward process, DDIM."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from rs.models.diffusion import SCHEDULES, TIMESTEP_SAMPLERS, alphas_cumprod, sample_timesteps
from rs.models.diffusion.ddpm import ddim_sample, ddim_timesteps, q_sample, to_x0_eps, v_target
from rs.models.diffusion.schedules import log_snr


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("T", [50, 1000])
def test_schedule_properties(name: str, T: int):
    betas = SCHEDULES[name](T)
    assert betas.shape == (T,) and betas.dtype == torch.float64
    assert bool((betas > 0).all() and (betas < 1).all())
    assert bool((betas[1:] >= betas[:-1]).all()), "β must be non-decreasing"
    a = alphas_cumprod(betas)
    assert bool((a[1:] < a[:-1]).all()) and a[0] > 0.99 and a[-1] < 0.01
    lam = log_snr(a)
    assert bool((lam[1:] < lam[:-1]).all())


def test_cosine_matches_its_closed_form():
    import math

    a = alphas_cumprod(SCHEDULES["cosine"](1000))
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert float(a[499]) == pytest.approx(f(500) / f(0), rel=1e-6)


@pytest.mark.parametrize("name", sorted(TIMESTEP_SAMPLERS))
@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_timestep_sampler_histogram_matches_its_density(name: str, shift: float):
    T = 20
    a = alphas_cumprod(SCHEDULES["cosine"](T))
    p = TIMESTEP_SAMPLERS[name](a, shift)
    assert p.shape == (T,) and float(p.sum()) == pytest.approx(1.0)
    n = 40_000
    t = sample_timesteps(p, n, torch.Generator().manual_seed(0))
    observed = torch.bincount(t, minlength=T).numpy()
    _, pvalue = stats.chisquare(observed, (p * n).numpy())
    assert pvalue > 1e-3, pvalue
    if name == "logsnr":
        # Logistic over λ: the mass between λ_t interval edges, exactly.
        lam = log_snr(a)
        mid = int(torch.argmin((lam - shift).abs()))
        assert int(p.argmax()) in (mid - 1, mid, mid + 1)


def test_logsnr_shift_moves_mass_to_low_noise():
    a = alphas_cumprod(SCHEDULES["cosine"](100))
    low_noise_mass = lambda s: float(TIMESTEP_SAMPLERS["logsnr"](a, s)[:30].sum())  # noqa: E731
    assert low_noise_mass(3.0) > low_noise_mass(0.0) + 0.1


def test_q_sample_mean_and_variance_match_theory():
    a = alphas_cumprod(SCHEDULES["linear"](1000))
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000,), 2.0, dtype=torch.float64)
    t = torch.full((200_000,), 300)
    x = q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64), a)
    assert float(x.mean()) == pytest.approx(2.0 * float(a[300]) ** 0.5, abs=5e-3)
    assert float(x.var()) == pytest.approx(1.0 - float(a[300]), rel=1e-2)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_parameterizations_invert(prediction: str):
    a = alphas_cumprod(SCHEDULES["cosine"](100))
    x0, eps = torch.randn(4, 2, 8, 8, dtype=torch.float64), torch.randn(4, 2, 8, 8, dtype=torch.float64)
    t = torch.tensor([0, 10, 50, 99])
    xt = q_sample(x0, t, eps, a)
    out = eps if prediction == "eps" else v_target(x0, t, eps, a)
    x0_hat, eps_hat = to_x0_eps(out, xt, t, a, prediction)
    torch.testing.assert_close(x0_hat, x0)
    torch.testing.assert_close(eps_hat, eps)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_true_noise_recovers_x0(prediction: str, eta: float):
    a = alphas_cumprod(SCHEDULES["cosine"](1000))
    x0 = torch.randn(3, 2, 8, 8, dtype=torch.float64)

    def oracle(x_t, t_B):  # the exact ε (or v) a perfect denoiser would output for this x0
        eps = (x_t - a[t_B].sqrt().view(-1, 1, 1, 1) * x0) / (1 - a[t_B]).sqrt().view(-1, 1, 1, 1)
        return eps if prediction == "eps" else v_target(x0, t_B, eps, a)

    x_T = torch.randn(3, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    out = ddim_sample(oracle, x_T, a, 10, prediction, eta=eta, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out, x0, atol=1e-6, rtol=0)


def test_ddim_timesteps_are_few_and_end_at_zero():
    steps = ddim_timesteps(1000, 10)
    assert len(steps) == 10 and steps[0] == 999 and steps[-1] == 0 and steps == sorted(steps, reverse=True)
