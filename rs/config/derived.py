"""Derived values: pure functions of declared inputs, resolved in dependency order, never set by users."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any

from rs.config.errors import ConfigError

# Thin-interface constants of Karma & Rappel / Echebarria et al. (2004).
A1 = 5.0 * math.sqrt(2.0) / 8.0  # 0.8839
A2 = 0.6267


@dataclass(frozen=True)
class Derived:
    path: str
    inputs: tuple[str, ...]
    fn: Callable[..., Any]


DERIVED: dict[str, Derived] = {}


def register(path: str, *inputs: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        DERIVED[path] = Derived(path, inputs, fn)
        return fn

    return deco


def resolution_order(registry: Mapping[str, Derived]) -> list[str]:
    graph = {p: [i for i in d.inputs if i in registry] for p, d in registry.items()}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        cycle = " -> ".join(reversed(err.args[1]))
        raise ConfigError(f"derived values form a cycle: {cycle}") from None


def compute(
    lookup: Callable[[str], Any], registry: Mapping[str, Derived] | None = None
) -> dict[str, Any]:
    """Every derived value, given `lookup(path)` for primitive inputs."""
    registry = DERIVED if registry is None else registry
    values: dict[str, Any] = {}
    for path in resolution_order(registry):
        d = registry[path]
        args = [values[i] if i in values else lookup(i) for i in d.inputs]
        values[path] = d.fn(*args)
    return values


def inputs_of(path: str, registry: Mapping[str, Derived] | None = None) -> list[str]:
    """The primitives (transitively) that determine a derived value: what users set instead."""
    registry = DERIVED if registry is None else registry
    out: list[str] = []
    for i in registry[path].inputs:
        for p in inputs_of(i, registry) if i in registry else [i]:
            if p not in out:
                out.append(p)
    return out


@register("data.channels", "data.fields")
def _channels(fields: list[str]) -> int:
    return len(fields)


@register("model.out_channels", "data.channels")
def _out_channels(channels: int) -> int:
    return channels


@register("model.in_channels", "data.history", "data.channels", "data.thermal_input")
def _in_channels(history: int, channels: int, thermal: bool) -> int:
    return history * channels + int(thermal)


@register("model.cond_dim", "data.cond_params")
def _cond_dim(cond_params: list[str]) -> int:
    return len(cond_params) + 1


@register("diffusion.beta_table_length", "diffusion.num_steps")
def _beta_len(num_steps: int) -> int:
    return num_steps


G = "data.generate."


@register(G + "freezing_range", G + "liquidus_slope", G + "c0", G + "partition_coefficient")
def _freezing_range(m: float, c0: float, k: float) -> float:
    return abs(m) * c0 * (1.0 - k) / k


@register(G + "capillary_length", G + "gibbs_thomson", G + "freezing_range")
def _capillary_length(gamma: float, dT0: float) -> float:
    return gamma / dT0


@register(G + "interface_width", G + "w0_over_d0", G + "capillary_length")
def _interface_width(w0_over_d0: float, d0: float) -> float:
    return w0_over_d0 * d0


@register(G + "coupling", G + "w0_over_d0")
def _coupling(w0_over_d0: float) -> float:
    return A1 * w0_over_d0


@register(G + "diffusivity_nondim", G + "coupling")
def _diffusivity_nondim(lam: float) -> float:
    return A2 * lam


@register(G + "tau0", G + "diffusivity_nondim", G + "interface_width", G + "diffusivity")
def _tau0(d_tilde: float, w0: float, diffusivity: float) -> float:
    return d_tilde * w0 * w0 / diffusivity


@register(
    G + "dt", G + "dt_safety", G + "dx_over_w0", G + "diffusivity_nondim",
    G + "partition_coefficient", G + "anisotropy",
)
def _dt(safety: float, dx: float, d_tilde: float, k: float, eps4: float) -> float:
    # Solute diffusion usually binds; the phase equation's limit uses the smallest relaxation
    # time (bounded below by k in hot liquid) and the anisotropy's extreme factors.
    solute = dx * dx / (4.0 * d_tilde)
    phase = k * dx * dx / 4.0 * ((1.0 - 3.0 * eps4) / (1.0 + eps4)) ** 2
    return safety * min(solute, phase)
