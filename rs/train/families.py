"""What each `train.model_family` does with a batch: its training loss and its one-step prediction.
The worker loop calls only these; it never branches on the family, the backbone or the method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from rs.config import ExperimentConfig
from rs.data.source import Batch
from rs.models.adaptive import REGION_SELECTORS, sample_patches
from rs.models.build import newest_frame
from rs.models.diffusion import SCHEDULES, TIMESTEP_SAMPLERS, alphas_cumprod, sample_timesteps
from rs.models.diffusion.ddpm import ddim_sample, q_sample, training_target
from rs.models.losses import build_loss


@dataclass
class Family:
    cfg: ExperimentConfig
    phi_channel: int | None = field(init=False)

    def __post_init__(self) -> None:
        fields = list(self.cfg.data.fields)
        self.phi_channel = fields.index("phi") if "phi" in fields else None
        self.last = newest_frame(self.cfg)
        self.loss_fn = build_loss(self.cfg.loss, self.phi_channel)
        a = self.cfg.adaptive
        self.selector = REGION_SELECTORS[a.region_selector]

    def regions(self, target_BCHW: torch.Tensor):  # type: ignore[no-untyped-def]
        if self.cfg.adaptive.region_selector == "none" or self.phi_channel is None:
            return None
        return self.selector(target_BCHW[:, self.phi_channel : self.phi_channel + 1], self.cfg.adaptive)

    def patches(self, batch: Batch, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        """(input, target, region weight): cropped to patches at selected regions when adaptive resolution is on."""
        first = batch.target if batch.target.dim() == 4 else batch.target[:, 0]
        regions = self.regions(first)
        weight = regions.weight if regions is not None else None
        x, y = batch.input, batch.target
        if self.cfg.adaptive.enable_adaptive_resolution and regions is not None:
            tensors = [x, y] + ([weight] if weight is not None else [])
            cropped, _ = sample_patches(tensors, regions, self.cfg.adaptive.patch_size, generator)
            x, y = cropped[0], cropped[1]
            weight = cropped[2] if weight is not None else None
        return x, y, weight


class Surrogate(Family):
    """One-step prediction; with data.unroll_steps = S > 1, S-step pushforward unrolling."""

    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator | None):  # type: ignore[no-untyped-def]
        x, y, weight = self.patches(batch, generator)
        x = self.perturb(x, generator)
        if y.dim() == 4:
            return self.loss_fn(model(x, batch.cond), y, weight)
        preds = self.rollout(model, x, batch.cond, y.shape[1])
        return self.loss_fn(preds, y, weight)

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Training-noise injection (Sanchez-Gonzalez et al. 2020, "Learning to simulate complex physics with
        graph networks"): the history frames get N(0, σ²) noise, the target stays clean; the thermal channel,
        known exactly at inference, is left alone."""
        sigma = self.cfg.train.input_noise
        if sigma <= 0:
            return x
        n = self.cfg.data.history * (self.cfg.model.out_channels or 1)
        noise = torch.randn(x[:, :n].shape, generator=generator).to(x.device, x.dtype) * sigma
        return torch.cat([x[:, :n] + noise, x[:, n:]], dim=1)

    def rollout(self, model: nn.Module, x: torch.Tensor, cond: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive steps; the newest prediction replaces the oldest input frame. (B, S, C, H, W)."""
        C = self.cfg.model.out_channels or 1
        K = self.cfg.data.history
        frames, extra = x[:, : K * C], x[:, K * C :]  # extra: the thermal channel, held fixed
        preds = []
        for _ in range(steps):
            y = model(torch.cat([frames, extra], dim=1), cond)
            preds.append(y)
            frames = torch.cat([frames[:, C:], y], dim=1)
        return torch.stack(preds, dim=1)

    @torch.no_grad()
    def predict(self, model: nn.Module, ema: nn.Module | None, batch: Batch, generator: torch.Generator | None):  # type: ignore[no-untyped-def]
        return model(batch.input, batch.cond)


def _delta_scale(model: nn.Module) -> torch.Tensor:
    """The model's `delta_scale` buffer (C,), through DDP / EMA / torch.compile wrappers."""
    while not hasattr(model, "delta_scale"):
        model = model._orig_mod if hasattr(model, "_orig_mod") else model.module  # type: ignore[assignment]
    return model.delta_scale[:, None, None]  # type: ignore[index]


class Diffusion(Family):
    """Denoise the next frame given the previous ones: q_sample at sampled timesteps, region-weighted loss;
    prediction by DDIM with the EMA weights. With model.predict_residual the diffusion runs on the change from
    the last input frame divided by its std (residual diffusion as in GenCast, Price et al. 2024), so the
    model refines a small unit-variance update instead of generating the whole frame."""

    def __post_init__(self) -> None:
        super().__post_init__()
        d = self.cfg.diffusion
        self.alpha_bar = alphas_cumprod(SCHEDULES[d.noise_schedule](d.num_steps)).float()
        self.t_probs = TIMESTEP_SAMPLERS[d.timestep_sampler](self.alpha_bar.double(), d.logsnr_shift).float()

    def loss(self, model: nn.Module, batch: Batch, generator: torch.Generator | None):  # type: ignore[no-untyped-def]
        x, y, weight = self.patches(batch, generator)
        y = y if y.dim() == 4 else y[:, 0]
        if self.cfg.model.predict_residual:
            y = (y - x[:, self.last]) / _delta_scale(model)
        t = sample_timesteps(self.t_probs, y.shape[0], generator).to(y.device)
        noise = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
        alpha_bar = self.alpha_bar.to(y.device)
        goal = training_target(self.cfg.diffusion.prediction, y, t, noise, alpha_bar)
        return self.loss_fn(model(q_sample(y, t, noise, alpha_bar), t, x, batch.cond), goal, weight)

    @torch.no_grad()
    def predict(self, model: nn.Module, ema: nn.Module | None, batch: Batch, generator: torch.Generator | None):  # type: ignore[no-untyped-def]
        net = ema if ema is not None else model
        d = self.cfg.diffusion
        shape = (batch.input.shape[0], self.cfg.model.out_channels or 1, *batch.input.shape[-2:])
        x_T = torch.randn(shape, generator=generator).to(batch.input.device)
        y = ddim_sample(lambda x_t, t: net(x_t, t, batch.input, batch.cond), x_T, self.alpha_bar.to(x_T.device),
                        d.sampling_steps, d.prediction, d.eta, generator)
        if self.cfg.model.predict_residual:
            y = batch.input[:, self.last] + y * _delta_scale(net)
        return y


FAMILIES: dict[str, Callable[[ExperimentConfig], Family]] = {"surrogate": Surrogate, "diffusion": Diffusion}
