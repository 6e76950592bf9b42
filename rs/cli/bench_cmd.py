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
    compression: Annotated[str, typer.Option(help="Compressions to measure, of none, lzf, gzip (h5py level 4, "
                                                  "one-frame chunks).")] = "lzf,none",
    grid: Annotated[int | None, typer.Option(help="Resample frames to GRID×GRID (default: the debug data's 64²).",
                                             min=8)] = None,
    fields: Annotated[int | None, typer.Option(help="Channels per frame, the data's cycled (default: its 2).",
                                               min=1)] = None,
    dataloader: Annotated[bool, typer.Option(help="Also measure the torch DataLoader baseline.")] = True,
    sets: Annotated[list[str] | None, typer.Option("--set", help="A data.* override of the Ray pipeline "
                                                                 "(e.g. data.read_block_mb=64); repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Raw h5py vs torch DataLoader vs the Ray Data pipeline: samples/s (per read core too), ratios, peak RSS."""
    from pathlib import Path

    from rs.bench import data as bench

    result = bench.run(Path(work), tuple(int(c) for c in copies.split(",")), batch_size, object_store_mb, passes,
                       tuple(c.strip() for c in compression.split(",")), grid, fields, dataloader, tuple(sets or ()))
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


@app.command()
def scaling(
    config: Annotated[str | None, typer.Option("--config", help="Experiment YAML (default: "
                                               "configs/train/bench_gpu.yaml, the default UNet).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field; repeatable.")] = None,
    grid: Annotated[int, typer.Option(help="Frames of grid×grid.", min=8)] = 512,
    data_json: Annotated[str | None, typer.Option(help="A `rs bench data --json` result: its last gzip (else "
                                                  "first) size gives the read and consumer CPU per sample.")] = None,
    read_ms: Annotated[float, typer.Option(help="Read CPU ms per sample (without --data-json).")] = 9.0,
    consumer_ms: Annotated[float, typer.Option(help="Consumer CPU ms per sample (without --data-json).")] = 2.5,
    gpus_per_node: Annotated[int, typer.Option(min=1)] = 4,
    cores_per_node: Annotated[int, typer.Option(help="CPU cores per node the job gets.", min=1)] = 32,
    peak_tflops: Annotated[float, typer.Option(help="Dense bf16 peak per GPU.")] = 312.0,
    mfu: Annotated[float, typer.Option(help="Model FLOP utilization assumed.", min=0.01, max=1.0)] = 0.35,
    intra_gbs: Annotated[float, typer.Option(help="All-reduce bandwidth inside a node, GB/s.")] = 150.0,
    inter_gbs: Annotated[float, typer.Option(help="Network bandwidth per node, GB/s.")] = 25.0,
    batch_per_gpu: Annotated[int, typer.Option(min=1)] = 8,
    as_json: JsonOpt = False,
) -> None:
    """FLOPs per sample (measured) and, for an assumed node, samples/s per GPU, read cores per GPU and
    all-reduce time per step on 1, 2 and 8 nodes (computed): what binds first."""
    from pathlib import Path

    from rs.bench import scaling as bench
    from rs.bench.common import default_config

    ratio = 1.0
    if data_json:
        sizes = json.loads(Path(data_json).read_text())["sizes"]
        row = ([s for s in sizes if s["compression"] == "gzip"] or sizes)[-1]
        read_ms, consumer_ms = row["read_cpu_ms_per_sample"], row["consumer_cpu_ms_per_sample"]
        ratio = row["compression_ratio"]
    node = bench.NodeSpec(gpus_per_node, cores_per_node, peak_tflops, mfu, intra_gbs, inter_gbs, batch_per_gpu)
    result = bench.run(Path(config) if config else default_config("configs/train/bench_gpu.yaml"), list(set_ or []),
                       grid, node, read_ms, consumer_ms, ratio)
    typer.echo(json.dumps(result) if as_json else bench.table(result))
