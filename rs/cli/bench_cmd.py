"""`rs bench …`: performance ratios measured in one run against a baseline on the same machine."""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks (ratios against a baseline, measured in one run).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")]


@app.command()
def generator(
    grid: Annotated[int, typer.Option(help="Grid edge (cells).")] = 64,
    batch: Annotated[int, typer.Option(help="Simulations advanced together by torch.")] = 32,
    steps: Annotated[int, typer.Option(help="Time steps per run.")] = 200,
    compile: Annotated[bool, typer.Option("--compile/--no-compile", help="Also time torch.compile.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Batched torch phase-field solver vs single-simulation NumPy: cell-updates/s and speedup."""
    from rs.bench import generator as bench

    result = bench.run(grid=grid, batch=batch, steps=steps, compile=compile)
    typer.echo(json.dumps(result) if as_json else bench.table(result))


@app.command()
def data(
    work: Annotated[str, typer.Option(help="Scratch directory for generated and copied files.")] = "/tmp/rs-bench-data",
    copies: Annotated[str, typer.Option(help="Dataset sizes: copies of the debug train split.")] = "2,64",
    batch_size: Annotated[int, typer.Option(help="Batch size of every loader.")] = 32,
    object_store_mb: Annotated[int, typer.Option(help="Object store of the local Ray.")] = 256,
    passes: Annotated[int, typer.Option(help="Measured passes per loader (after a warm-up); the median is shown.",
                                        min=1)] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Raw h5py vs torch DataLoader vs the Ray Data pipeline: samples/s, ratios and peak RSS."""
    from pathlib import Path

    from rs.bench import data as bench

    result = bench.run(Path(work), tuple(int(c) for c in copies.split(",")), batch_size, object_store_mb, passes)
    typer.echo(json.dumps(result) if as_json else bench.table(result))


@app.command()
def train(
    config: Annotated[str | None, typer.Option("--config", help="Experiment YAML (default: configs/train/debug.yaml "
                                               "on cpu, configs/train/bench_gpu.yaml: UNet, 128², on cuda).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field; repeatable.")] = None,
    epochs: Annotated[int, typer.Option(help="Ray Train epochs (the last one is the steady state).")] = 3,
    steps: Annotated[int, typer.Option(help="Optimizer steps of the plain torch loop.")] = 60,
    device: Annotated[str, typer.Option(help="cpu, or cuda: both sides on the GPU with bf16 autocast, channels-last "
                                        "and torch.compile (each can be turned off with --set).")] = "cpu",
    peak_tflops: Annotated[float | None, typer.Option(help="Device peak for model FLOP utilization (default: "
                                                      "the datasheet bf16 peak of known GPUs).")] = None,
    repeats: Annotated[int, typer.Option(help="Run the comparison this many times; medians are printed.",
                                         min=1)] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Plain single-process torch vs Ray Train on the same data and model: samples/s ratio, time to first step,
    and model FLOP utilization where the device's peak is known."""
    from pathlib import Path

    from rs.bench import train as bench

    if device not in bench.DEVICE_DEFAULTS:
        raise typer.BadParameter(f"--device {device!r}: use one of {sorted(bench.DEVICE_DEFAULTS)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter("--device cuda: torch sees no GPU here (CPU-only build or no device); "
                                     "run it on a GPU node, or use --device cpu")
    from rs.bench.common import default_config

    default = default_config("configs/train/bench_gpu.yaml" if device == "cuda" else "configs/train/debug.yaml")
    result = bench.run(Path(config) if config else default, list(set_ or []), epochs, steps, device, peak_tflops,
                       repeats)
    typer.echo(json.dumps(result) if as_json else bench.table(result))


@app.command()
def catalog(
    runs: Annotated[int, typer.Option(help="Synthetic run records.")] = 10_000,
    as_json: JsonOpt = False,
) -> None:
    """Build a Parquet catalog of synthetic runs, rebuild it (idempotent), time the grouped-best query."""
    from rs.bench import catalog as bench

    result = bench.run(runs)
    typer.echo(json.dumps(result, default=str) if as_json else bench.table(result))


@app.command()
def tune(
    config: Annotated[str | None, typer.Option("--config", help="Sweep YAML (its tune.space; default "
                                               "configs/tune/debug.yaml).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field; repeatable.")] = None,
    samples: Annotated[int, typer.Option(help="Trials per sweep.")] = 8,
    epochs: Annotated[int, typer.Option(help="Epochs of a trial that is never stopped.")] = 4,
    work: Annotated[str, typer.Option(help="Where both sweeps write.")] = "/tmp/rs-bench-tune",
    as_json: JsonOpt = False,
) -> None:
    """Optuna TPE + ASHA vs random search without early stopping: trial-epochs to reach random's best."""
    import shutil
    from pathlib import Path

    from rs.bench import tune as bench
    from rs.bench.common import default_config

    shutil.rmtree(work, ignore_errors=True)  # a fresh pair of sweeps, never a resumed one
    result = bench.run(Path(config) if config else default_config("configs/tune/debug.yaml"), list(set_ or []),
                       samples, epochs, Path(work))
    typer.echo(json.dumps(result) if as_json else bench.table(result))


@app.command()
def skill(
    data_config: Annotated[str, typer.Option("--data-config", help="Dataset YAML.")] = "configs/data/bench.yaml",
    surrogate: Annotated[str, typer.Option(help="Surrogate experiment YAML.")] = "configs/train/bench_surrogate.yaml",
    diffusion: Annotated[str, typer.Option(help="Diffusion experiment YAML.")] = "configs/train/bench_diffusion.yaml",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field of both; repeatable.")] = None,
    horizon: Annotated[int, typer.Option(help="Rollout steps evaluated (reported at 1, 20, 50).")] = 50,
    work: Annotated[str, typer.Option(help="Where the two runs go (fresh each time).")] = "/tmp/rs-bench-skill",
    as_json: JsonOpt = False,
) -> None:
    """Generate → train surrogate and diffusion → roll out on held-out test simulations, beside persistence."""
    import contextlib
    import shutil
    import sys
    from pathlib import Path

    from rs.bench import skill as bench
    from rs.bench.common import default_config

    shutil.rmtree(work, ignore_errors=True)  # fresh runs, never resumed ones
    with contextlib.redirect_stdout(sys.stderr):  # training progress; stdout carries only the result
        result = bench.run(default_config(data_config), {"surrogate": default_config(surrogate),
                                                         "diffusion": default_config(diffusion)},
                           Path(work), list(set_ or []), horizon)
    typer.echo(json.dumps(result, default=str) if as_json else bench.table(result))


@app.command()
def cluster(
    config: Annotated[str | None, typer.Option("--config", help="Experiment YAML (default: configs/train/debug.yaml)."
                                               )] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field; repeatable.")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs on each cluster (the last is the steady state).")] = 3,
    passes: Annotated[int, typer.Option(help="Measured data-only passes (after a warm-up); the median is shown.",
                                        min=1)] = 3,
    work: Annotated[str, typer.Option(help="Where the runs go (fresh each time).")] = "/tmp/rs-bench-cluster",
    as_json: JsonOpt = False,
) -> None:
    """1-node vs 2-node cluster of namespace hosts with the same CPUs: training and data samples/s, their
    ratio, and the time from a node's loss to the next optimizer step (needs root)."""
    import shutil
    from pathlib import Path

    from rs.bench import cluster as bench
    from rs.cluster.netns import missing

    if (why := missing()) is not None:
        raise typer.BadParameter(f"namespace hosts cannot be made here: {why}")
    shutil.rmtree(work, ignore_errors=True)  # fresh runs, never resumed ones
    Path(work).mkdir(parents=True)
    result = bench.run(Path(work), Path(config) if config else None, list(set_ or []), epochs, passes=passes)
    typer.echo(json.dumps(result) if as_json else bench.table(result))
