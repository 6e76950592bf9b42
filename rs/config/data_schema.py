"""The `data` section: where simulations live, how samples are cut, and how the generator makes them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from rs.config.fields import AbsPath, F, Section, derived

Speed = Annotated[float, Field(gt=0.0, le=100.0)]  # m/s
Gradient = Annotated[float, Field(gt=0.0, le=1e10)]  # K/m
Cells = Annotated[int, Field(ge=8, le=16384)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class GenerateConfig(Section):
    """Quantitative phase-field model of a dilute binary alloy (Echebarria et al., PRE 70, 061604)."""

    # Alloy primitives
    partition_coefficient: float = F(0.15, "Equilibrium partition coefficient k", gt=0.0, lt=1.0)
    liquidus_slope: float = F(-2.6, "Liquidus slope m", unit="K/wt%", lt=0.0, ge=-1e3)
    c0: float = F(1.0, "Nominal (far-field) alloy concentration c∞", unit="wt%", gt=0.0, le=100.0)
    gibbs_thomson: float = F(2.4e-7, "Gibbs–Thomson coefficient Γ", unit="K·m", gt=0.0, le=1e-3)
    diffusivity: float = F(3.0e-9, "Solute diffusivity in the liquid D", unit="m²/s", gt=0.0, le=1e-3)
    anisotropy: float = F(0.02, "Four-fold interface-energy anisotropy ε4", ge=0.0, lt=0.0667)
    # Process primitives, sampled per simulation from these ranges
    velocity_range: tuple[Speed, Speed] = F(
        (1.5e-4, 9.2e-4), "Pulling speed V range [min, max]", unit="m/s"
    )
    gradient_range: tuple[Gradient, Gradient] = F(
        (1.5e6, 1.5e6), "Thermal gradient G range [min, max]", unit="K/m"
    )
    process_grid: tuple[Count, Count] | None = F(
        None, "Instead of random V, G: every point of a log-spaced [n_V, n_G] grid (n_V·n_G = simulations)"
    )
    # Numerics
    w0_over_d0: float = F(20.0, "Interface width over capillary length W0/d0", gt=1.0, le=1e4)
    dx_over_w0: float = F(0.8, "Grid spacing over interface width dx/W0", gt=0.05, le=2.0)
    dt_safety: float = F(0.8, "Fraction of the explicit-Euler stability limit used as dt", gt=0.0, le=1.0)
    grid: tuple[Cells, Cells] = F((64, 64), "Grid size [H, W] (x runs along W, the growth axis)")
    frames: int = F(40, "Frames stored per simulation", ge=2, le=100_000)
    frame_interval: float = F(0.5, "Time between stored frames", unit="τ0", gt=0.0, le=1e6)
    front_position: float = F(0.25, "Initial front position as a fraction of the domain length", gt=0.0, lt=1.0)
    perturbation: float = F(0.5, "Amplitude of the initial random front perturbation", unit="W0", ge=0.0, le=50.0)
    trapping: Literal["antitrapping", "solute_trapping"] = F(
        "antitrapping",
        "Quantitative anti-trapping current, or none: rapid-solidification regime with solute trapping",
    )
    moving_window: bool = F(True, "Shift the grid with the front so long runs stay in the domain")
    window_target: float = F(0.5, "Front position the moving window keeps, as a domain fraction", gt=0.1, lt=0.9)
    dtype: Literal["float32", "float64"] = F("float32", "Solver precision (stored images are float32)")
    simulations: tuple[Count, Count, Count] = F((8, 2, 2), "Simulations in the train, val and test splits")
    batch: int = F(32, "Simulations advanced together by the batched solver", ge=1, le=4096)
    compile: bool = F(False, "torch.compile the solver step (≈1.5–2× faster; compiling costs ~30 s once)")
    device: Literal["auto", "cpu", "cuda"] = F("auto", "Device the generator runs on")
    seed: int = F(0, "Seed of process parameters and noise; equal seeds give identical files", ge=0)

    # Derived numerics (never set): computed by rs.config.derived
    freezing_range: float | None = derived("Freezing range ΔT0 = |m| c∞ (1−k)/k", unit="K")
    capillary_length: float | None = derived("Chemical capillary length d0 = Γ/ΔT0", unit="m")
    interface_width: float | None = derived("Interface width W0 = (W0/d0)·d0", unit="m")
    coupling: float | None = derived("Coupling constant λ = a1·W0/d0 (a1 = 0.8839)")
    diffusivity_nondim: float | None = derived("Dimensionless diffusivity D̃ = a2·λ (a2 = 0.6267)")
    tau0: float | None = derived("Relaxation time τ0 = D̃·W0²/D", unit="s")
    dt: float | None = derived("Stable explicit time step dt_safety·min(dx²/(4D̃), dx²/4)", unit="τ0")

    @field_validator("velocity_range", "gradient_range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] <= v[1]:
            raise ValueError(f"needs min <= max, got [{v[0]}, {v[1]}]")
        return v

    @field_validator("simulations")
    @classmethod
    def _splits(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if v[0] < 1:
            raise ValueError(f"needs at least 1 train simulation, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _grid_fills_splits(self) -> GenerateConfig:
        if self.process_grid is not None:
            n_v, n_g = self.process_grid
            if n_v * n_g != sum(self.simulations):
                raise ValueError(f"process_grid {[n_v, n_g]} has {n_v * n_g} points but simulations "
                                 f"{list(self.simulations)} sum to {sum(self.simulations)}; make them equal")
        return self


class DataConfig(Section):
    root: AbsPath = F("./data/debug", "Directory holding train/val/test HDF5 files (layout A or B)")
    layout: Literal["auto", "A", "B"] = F("auto", "HDF5 layout; auto sniffs each file")
    fields: list[str] = F(["phi", "c"], "Field (channel) names used as model input and output", min_length=1)
    history: int = F(1, "History frames K given as input", ge=1, le=64)
    stride: int = F(1, "Frame stride s between input and target", ge=1, le=1000)
    unroll_steps: int = F(1, "Target frames S for unrolled (pushforward) training", ge=1, le=64)
    thermal_input: bool = F(False, "Append the thermal field as an extra input channel")
    align_window: bool = F(
        True, "Express a sample's frames in its newest input frame's moving window (layout A window_offset); "
        "rollouts apply the stored offsets as a change of coordinates")
    cond_params: list[str] = F(
        ["pulling_speed", "thermal_gradient_raw"],
        "Per-simulation process attributes given to the model as conditioning (time is always added)",
    )
    shape_policy: Literal["group", "crop", "pad"] = F(
        "group", "How simulations of different H×W are batched: group by shape, or crop/pad to crop_size"
    )
    crop_size: tuple[Cells, Cells] | None = F(None, "Target H×W for crop/pad (None = group by shape)")
    on_bad_simulation: Literal["fail", "skip"] = F("fail", "What a bad simulation does: fail the run or skip it")
    seed: int = F(0, "Seed of per-epoch reshuffling", ge=0)
    read_block_frames: int = F(64, "Windows per chunk: the unit of per-epoch reordering", ge=1, le=100_000)
    read_block_rows: int = F(256, "Samples per Ray Data block (bounds read memory: one block per in-flight "
                             "read is held at a time)", ge=1, le=1_000_000)
    read_block_mb: float = F(16.0, "Most MB of samples per read chunk and per Ray Data block: larger grids get "
                             "fewer windows per chunk and rows per block, so read memory stays bounded",
                             gt=0.0, le=65536.0)
    read_slab_mb: float = F(64.0, "Most MB of frames read at once for consecutive chunks of one simulation (a "
                            "window needs frames past its own: chunks read alone decompress those twice); a slab "
                            "is also the unit of per-epoch reordering when its chunks are small", gt=0.0,
                            le=65536.0)
    read_task_blocks: int = F(64, "Most blocks one read task yields: long tasks amortize Ray Data's per-task "
                              "scheduling cost (~0.1 s here); a split still gets two read tasks per cluster CPU "
                              "when it has the rows", ge=1, le=10_000)
    read_cpus: float = F(1.0, "CPUs reserved per Ray Data read task (fractions run more reads at once)",
                         gt=0.0, le=64.0)
    generate: GenerateConfig = GenerateConfig()

    channels: int | None = derived("Channels per frame C = len(fields)")
