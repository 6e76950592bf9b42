"""Typed experiment config: one section per concern, every leaf documented, bounded and unit-tagged."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import PrivateAttr, model_validator

from rs.config.data_schema import DataConfig
from rs.config.fields import AbsPath, F, Section, derived

# The seven fields every run is described by (tracking tags, catalog columns).
DESCRIPTORS: tuple[str, ...] = (
    "train.model_family",
    "model.backbone",
    "diffusion.noise_schedule",
    "diffusion.timestep_sampler",
    "loss.weight_wavelet_loss",
    "adaptive.region_selector",
    "adaptive.enable_adaptive_resolution",
)

Backbone = Literal["unet", "fno", "sinenet"]
PaddingMode = Literal["zeros", "replicate", "reflect", "circular"]


class ModelConfig(Section):
    backbone: Backbone = F("unet", "Backbone architecture (registry key)")
    width: int = F(32, "Base channel width", ge=4, le=1024)
    channel_mults: list[int] = F([1, 2, 2], "UNet/SineNet width multipliers per resolution level", min_length=1)
    blocks_per_level: int = F(1, "Residual blocks per UNet level", ge=1, le=8)
    attention_levels: list[int] = F([], "UNet levels (0 = finest) that use self-attention")
    norm_groups: int = F(8, "Group-norm groups", ge=1, le=64)
    padding_mode: PaddingMode = F(
        "zeros", "Border handling of the UNet/SineNet convolutions: replicate matches no-flux walls, circular "
        "periodic ones; zeros is the usual choice and what older checkpoints were trained with")
    fno_modes: int = F(12, "Fourier modes kept per dimension (FNO)", ge=1, le=512)
    fno_layers: int = F(4, "Spectral layers (FNO)", ge=1, le=32)
    fno_padding: int = F(8, "Zero padding for non-periodic boundaries (FNO)", unit="cells", ge=0, le=256)
    sinenet_waves: int = F(4, "Number of sequential U-Nets ('waves') in SineNet", ge=1, le=32)
    dropout: float = F(0.0, "Dropout probability", ge=0.0, lt=1.0)
    predict_residual: bool = F(True, "Predict the change from the last input frame instead of the frame")

    in_channels: int | None = derived("Input channels = history·C (+1 with thermal input)")
    out_channels: int | None = derived("Output channels = C")
    cond_dim: int | None = derived("Conditioning vector size = len(cond_params) + 1 (time)")


class DiffusionConfig(Section):
    noise_schedule: Literal["linear", "cosine", "sigmoid"] = F("cosine", "Noise schedule β(t)")
    timestep_sampler: Literal["uniform", "logsnr"] = F("uniform", "Training timestep sampler")
    num_steps: int = F(1000, "Diffusion steps T of the training schedule", ge=2, le=100_000)
    prediction: Literal["eps", "v"] = F("v", "Network target: noise ε or velocity v")
    sampling_steps: int = F(10, "DDIM steps at validation and rollout", ge=1, le=10_000)
    eta: float = F(0.0, "DDIM stochasticity η (0 = deterministic)", ge=0.0, le=1.0)
    ema_decay: float = F(0.999, "EMA decay of the weights used for sampling (the cap of its warmup)", ge=0.0, lt=1.0)
    ema_warmup_power: float = F(0.75, "EMA warmup: decay min(ema_decay, 1 − (1+n)^−p) after n updates", gt=0.0, le=1.0)
    logsnr_shift: float = F(0.0, "Shift of the log-SNR sampler towards low noise (PDE-Refiner)", ge=-20, le=20)

    beta_table_length: int | None = derived("Length of the β table = num_steps")


class LossConfig(Section):
    name: Literal["mse", "rel_l2"] = F("mse", "Base pointwise loss")
    weight_wavelet_loss: float = F(0.0, "Weight of the multi-level wavelet loss (0 = off)", ge=0.0, le=1e3)
    wavelet: Literal["haar", "db2", "db4"] = F("haar", "Wavelet family of the wavelet loss")
    wavelet_levels: int = F(2, "Decomposition levels of the wavelet loss", ge=1, le=8)
    weight_interface: float = F(0.0, "Extra weight on the interface from |∇φ| of the target", ge=0.0, le=1e3)


class AdaptiveConfig(Section):
    region_selector: Literal["none", "interface_band", "quadtree"] = F("none", "Region selector")
    enable_adaptive_resolution: bool = F(False, "Train/evaluate on patches at selected regions")
    band_width: float = F(2.0, "Half-width of the interface band", unit="cells", gt=0.0, le=256)
    quadtree_max_depth: int = F(3, "Maximum quadtree depth", ge=1, le=10)
    quadtree_threshold: float = F(0.05, "Indicator threshold that splits a quadtree patch", ge=0.0, le=1e6)
    patch_size: int = F(32, "Patch edge for adaptive-resolution sampling", unit="cells", ge=4, le=4096)


class TrainConfig(Section):
    model_family: Literal["surrogate", "diffusion"] = F("surrogate", "What is trained")
    num_workers: int = F(2, "Ray Train workers (0 = run in-process for debugging)", ge=0, le=4096)
    use_gpu: bool = F(False, "Give each worker a GPU")
    cpus_per_worker: float = F(0.5, "CPUs reserved per worker (fractions leave room for Ray Data)", gt=0, le=512)
    min_workers: int | None = F(None, "Elastic training: run on as few as this many workers when nodes are lost, "
                                "growing back to num_workers as they return (None = always num_workers)", ge=1,
                                le=4096)
    resize_interval_s: float = F(60.0, "Elastic training: how often a healthy run checks whether more workers "
                                 "fit (a node came back)", ge=0.0, le=86_400.0, unit="s")
    worker_start_timeout_s: float | None = F(
        None, "How long a (re)start of the workers waits for their resources before it fails and is retried "
        "(None = Ray's 60 s, or 20 s for elastic runs: after a node loss Ray still counts the lost node's CPUs "
        "until its heartbeats time out, and only a failed start retries with fewer workers)", gt=0.0, le=86_400.0,
        unit="s")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = F(
        "PACK", "Where workers go: PACK fills nodes in turn, SPREAD one per node where possible, STRICT_* insist")
    epochs: int = F(2, "Training epochs", ge=1, le=100_000)
    batch_size: int = F(8, "Batch size per worker", ge=1, le=65_536)
    lr: float = F(1e-3, "Peak learning rate", gt=0.0, le=10.0)
    weight_decay: float = F(0.0, "AdamW weight decay", ge=0.0, le=10.0)
    warmup_steps: int = F(10, "Linear warmup steps before cosine decay", ge=0)
    grad_clip: float = F(1.0, "Gradient-norm clip (0 = off)", ge=0.0, le=1e6)
    input_noise: float = F(0.0, "Std of Gaussian noise on the surrogate's input frames in training, in z-score "
                           "units: the model learns to correct perturbed states, as in rollouts", ge=0.0, le=10.0)
    precision: Literal["fp32", "bf16"] = F("fp32", "Autocast precision")
    compile: bool = F(False, "Wrap the model in torch.compile")
    channels_last: bool = F(False, "Channels-last (NHWC) weights and batches: tensor-core convolutions on GPUs")
    seed: int = F(0, "Seed of weights, noise and per-worker RNGs", ge=0)
    max_steps_per_epoch: int | None = F(None, "Cap on optimizer steps per epoch (None = full epoch)", ge=1)
    storage_path: AbsPath = F("./runs", "Where run directories go (local or shared filesystem)")
    run_name: str | None = F(
        None, "Run directory name; default is the config file's name, so rerunning resumes", min_length=1
    )
    max_failures: int = F(2, "Worker-group restarts before a run fails", ge=-1, le=1000)
    num_to_keep: int = F(2, "Checkpoints kept (best by val_rel_l2)", ge=1, le=1000)

    @model_validator(mode="after")
    def _elastic_range(self) -> TrainConfig:
        if self.min_workers is not None and not (self.num_workers > 0 and self.min_workers <= self.num_workers):
            raise ValueError(f"min_workers {self.min_workers} must be between 1 and num_workers "
                             f"({self.num_workers}); elastic training needs Ray Train workers")
        return self


Distribution = Literal["choice", "uniform", "loguniform", "randint", "quniform"]


class TuneConfig(Section):
    space: dict[str, dict[Distribution, list[Any]]] = F(
        {}, "Search space: dotted config field -> {distribution: arguments}"
    )
    num_samples: int = F(4, "Trials to run", ge=1, le=100_000)
    searcher: Literal["optuna", "random"] = F("optuna", "Search algorithm")
    scheduler: Literal["asha", "fifo"] = F("asha", "Trial scheduler (asha stops bad trials early)")
    grace_period: int = F(1, "ASHA: epochs before a trial may be stopped", ge=1)
    reduction_factor: float = F(2.0, "ASHA reduction factor", gt=1.0, le=100)
    max_concurrent_trials: int | None = F(None, "Concurrent trials (None = fit to cluster resources)", ge=1)
    max_retries: int = F(1, "Retries of an errored trial on restore", ge=0, le=100)
    optuna_storage: str | None = F(None, "Optuna storage (journal file or sqlite URL) to persist the study")
    seed: int = F(0, "Seed of the search algorithm", ge=0)
    name: str | None = F(None, "Sweep name (default: the config name + '-tune')", min_length=1)


class MlflowConfig(Section):
    uri: str | None = F(None, "Tracking URI (MLFLOW_TRACKING_URI wins when set)")
    local: bool = F(False, "Use a sqlite store under the storage path when no URI is given")
    experiment: str = F("rs", "MLflow experiment name", min_length=1)


class WandbConfig(Section):
    mode: Literal["disabled", "offline", "online"] = F("disabled", "W&B mode (WANDB_MODE wins when set)")
    project: str = F("rs", "W&B project", min_length=1)
    entity: str | None = F(None, "W&B entity (team or user)")


class TrackingConfig(Section):
    mlflow: MlflowConfig = MlflowConfig()
    wandb: WandbConfig = WandbConfig()
    log_every_steps: int = F(10, "Per-step metrics every N optimizer steps", ge=1)


class SlurmConfig(Section):
    partition: str | None = F(None, "Slurm partition")
    account: str | None = F(None, "Slurm account/project")
    time: str = F("01:00:00", "Wall-time limit (HH:MM:SS)", pattern=r"^(\d+-)?\d{1,2}:\d{2}:\d{2}$")
    nodes: int = F(1, "Nodes in the allocation", ge=1, le=10_000)
    gpus_per_node: int = F(0, "GPUs per node", ge=0, le=64)
    cpus_per_node: int | None = F(None, "CPUs per node (None = Slurm's default)", ge=1, le=4096)


class ClusterConfig(Section):
    address: str | None = F(None, "Ray address to join (RAY_ADDRESS wins; None = start a local Ray)")
    auth_mode: Literal["token", "disabled"] = F("token", "RAY_AUTH_MODE of a Ray that rs starts (a token is made "
                                                "first); a cluster rs joins keeps its own mode")
    num_cpus: int | None = F(None, "Logical CPUs of a local Ray (None = this machine's)", ge=1)
    object_store_mb: int | None = F(None, "Object store of a local Ray (None = Ray's default)", ge=64)
    temp_dir: str | None = F(None, "Short node-local Ray temp dir (socket paths must stay ≤ 107 bytes)")
    fast_worker_start: bool = F(True, "Workers of a Ray that rs starts (locally or on Slurm) import with garbage "
                                "collection paused, then freeze what they imported; a training run starts its first "
                                "read's process early (rs.cluster.startup)")
    shared_storage: bool | None = F(
        None, "Is train.storage_path shared by all nodes? (None = tell from its filesystem type)"
    )
    slurm: SlurmConfig = SlurmConfig()


class EvalConfig(Section):
    split: Literal["train", "val", "test"] = F("test", "Split evaluated")
    tag: str | None = F(None, "Name of this evaluation: results go to eval/<split>-<tag>/ (and are logged under "
                        "that name) instead of replacing eval/<split>/", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    horizon: int = F(20, "Autoregressive rollout steps", ge=1, le=100_000)
    ensemble: int = F(4, "Diffusion ensemble members per rollout", ge=1, le=1024)
    plot_steps: list[int] = F([1, 5, 20], "Rollout steps shown in montages")
    device: Literal["auto", "cpu", "cuda"] = F("auto", "Device of evaluation")
    max_simulations: int | None = F(None, "Cap on evaluated simulations (None = all)", ge=1)
    clip_to_train_range: bool = F(True, "Clip each rollout prediction to the train split's range per field (φ stays "
                                  "in [−1, 1]): the states the model was trained on, which long rollouts may leave")
    one_step_all: bool = F(True, "Also the one-step error from every frame (true history each time), not only "
                           "the rollout's first step")
    solver_continuation: bool = F(False, "Also run the generator's exact solver on from the model's first "
                                  "predicted frame (files from `rs data generate`): the error a model exact after "
                                  "step 1 would reach, i.e. how much the physics amplifies a one-step error")


class ExperimentConfig(Section):
    """The one typed config of an experiment; load it with `rs.config.load_config`."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    loss: LossConfig = LossConfig()
    adaptive: AdaptiveConfig = AdaptiveConfig()
    train: TrainConfig = TrainConfig()
    tune: TuneConfig = TuneConfig()
    tracking: TrackingConfig = TrackingConfig()
    cluster: ClusterConfig = ClusterConfig()
    eval: EvalConfig = EvalConfig()

    _name: str = PrivateAttr("experiment")
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def name(self) -> str:
        return self._name

    @property
    def sources(self) -> dict[str, str]:
        """Dotted leaf path -> where its value came from (default, file:…, env:…, tune, cli, derived)."""
        return dict(self._sources)

    @property
    def run_dir(self):  # -> Path
        assert self.train.run_name is not None, "run_name is resolved by load_config"
        return self.train.storage_path / self.train.run_name

    def descriptors(self) -> dict[str, Any]:
        from rs.config.tree import get_path

        return {path: get_path(self, path) for path in DESCRIPTORS}
