"""Diffusion: schedules and timestep samplers (registries keyed by config descriptors), the forward
process, ε/v parameterizations, the DDIM sampler, and the conditional denoiser."""

from rs.models.diffusion.schedules import SCHEDULES, alphas_cumprod
from rs.models.diffusion.timesteps import TIMESTEP_SAMPLERS, sample_timesteps

__all__ = ["SCHEDULES", "TIMESTEP_SAMPLERS", "alphas_cumprod", "sample_timesteps"]
