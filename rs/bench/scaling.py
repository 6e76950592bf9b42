"""`rs bench scaling`: what a model at a grid asks of an allocation. Measured here: the FLOPs of one sample's
forward and backward (counted as `rs bench train` counts them, on meta tensors: no compute) and the
parameters whose gradients are all-reduced every step. Computed from them, a GPU's peak, an assumed model
FLOP utilization (MFU) and the read cost `rs bench data` measured: samples/s per GPU, read cores per GPU
and the all-reduce time per step, for 1, 2 and 8 nodes. Every formula is in `plan`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class NodeSpec:
    """A GPU node as assumed (each a flag of the command): defaults are a typical 4-GPU HPC node."""

    gpus: int = 4
    cores: int = 32  # CPU cores per node the job gets (8 per GPU)
    peak_tflops: float = 312.0  # dense bf16 per GPU (A100 datasheet)
    mfu: float = 0.35  # model FLOP utilization assumed for a bf16, compiled, channels-last conv net
    intra_gbs: float = 150.0  # all-reduce bus bandwidth inside a node (NVLink), GB/s
    inter_gbs: float = 25.0  # network per node (200 Gb/s HDR InfiniBand), GB/s
    batch_per_gpu: int = 8


def _step_flops(cfg: Any, grid: int) -> tuple[float, int]:
    """(FLOPs of one sample's forward + backward at grid², trainable parameters), counted on CPU."""
    import torch

    from rs.bench.train import step_flops
    from rs.data.source import Batch
    from rs.models.build import build_model
    from rs.train.families import FAMILIES

    d, m = cfg.data, cfg.model
    C = len(d.fields)
    target = (1, C, grid, grid) if d.unroll_steps == 1 else (1, d.unroll_steps, C, grid, grid)
    torch.manual_seed(0)
    model = build_model(cfg)
    batch = Batch(torch.zeros(1, m.in_channels, grid, grid), torch.zeros(target), torch.zeros(1, m.cond_dim), {})
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return step_flops(FAMILIES[cfg.train.model_family](cfg), model, batch), params


def model_cost(config: Path, overrides: list[str], grid: int) -> dict[str, float]:
    """Parameters, gradient bytes and forward+backward FLOPs per sample of the config's model at grid².

    Past 128² the count is made at 64² and 128² and scaled by pixels: a convolutional net's FLOPs grow with
    the pixel count, which the two counts check (a count at 512² on CPU would take minutes per model)."""
    from rs.config import load_config

    cfg = load_config(config, overrides, env={})
    if grid <= 128:
        flops, params = _step_flops(cfg, grid)
        how = f"counted at {grid}²"
    else:
        (f64, params), (f128, _) = _step_flops(cfg, 64), _step_flops(cfg, 128)
        if abs(f128 / f64 - 4) > 0.04:
            raise ValueError(f"FLOPs grow {f128 / f64:.2f}× from 64² to 128², not with the pixel count: "
                             f"this model cannot be scaled to {grid}²; count it there (--grid 128 or less)")
        flops = f128 * (grid / 128) ** 2
        how = f"counted at 128², × ({grid}/128)² (64² → 128²: × {f128 / f64:.3f})"
    C = len(cfg.data.fields)
    return {"params": params, "grad_bytes": 4 * params, "flops_per_sample": flops, "flops_how": how,
            "sample_bytes": 4 * grid * grid * (cfg.model.in_channels + C * cfg.data.unroll_steps)}


def plan(cost: dict[str, float], node: NodeSpec, read_ms: float, consumer_ms: float,
         nodes: tuple[int, ...] = (1, 2, 8), compression_ratio: float = 1.0) -> list[dict[str, Any]]:
    """One row per node count. Formulas (all per GPU unless said):
    samples/s = MFU × peak / FLOPs per sample;
    read cores = samples/s × read CPU ms per sample / 1000 (+ the training process's own consumer share);
    step compute s = batch × FLOPs per sample / (MFU × peak);
    all-reduce bytes on each link = 2 (N − 1) / N × gradient bytes (ring, N GPUs), over NVLink on one node,
    over the node's network when N spans nodes (each node's link carries that once);
    data step s = batch / (read cores available × 1000 / read ms): the cores left after the consumer."""
    rate = node.mfu * node.peak_tflops * 1e12 / cost["flops_per_sample"]
    read_cores = rate * read_ms / 1e3
    consumer_cores = rate * consumer_ms / 1e3
    compute_s = node.batch_per_gpu / rate
    rows = []
    for n_nodes in nodes:
        n = n_nodes * node.gpus
        wire = 2 * (n - 1) / n * cost["grad_bytes"]
        allreduce_s = wire / ((node.intra_gbs if n_nodes == 1 else node.inter_gbs) * 1e9)
        spare = node.cores / node.gpus - consumer_cores  # cores per GPU left for reads
        data_s = float("inf") if spare <= 0 else node.batch_per_gpu * read_ms / 1e3 / spare
        # DDP overlaps the all-reduce with the backward (about 2/3 of the step): it binds only beyond that.
        binds, step_s = max((("compute", compute_s), ("data", data_s), ("network", allreduce_s * 1.5)),
                            key=lambda t: t[1])
        rows.append({
            "nodes": n_nodes, "gpus": n, "samples_per_s_per_gpu": rate, "read_cores_per_gpu": read_cores,
            "consumer_cores_per_gpu": consumer_cores,
            "cores_needed_per_node": node.gpus * (read_cores + consumer_cores), "cores_per_node": node.cores,
            "compute_step_s": compute_s, "data_step_s": data_s, "allreduce_bytes_per_gpu": wire,
            "allreduce_s": allreduce_s, "binds": binds,
            "samples_per_s_total": n * node.batch_per_gpu / step_s,
            "filesystem_mb_per_s": n * node.batch_per_gpu / step_s * cost["sample_bytes"] / 2 / 1e6
            / compression_ratio,  # a sample's two frames, ~one read per sample (consecutive windows share)
        })
    return rows


def run(config: Path, overrides: list[str], grid: int, node: NodeSpec, read_ms: float, consumer_ms: float,
        compression_ratio: float) -> dict[str, Any]:
    cost = model_cost(config, overrides, grid)
    return {"grid": grid, "overrides": overrides, "node": asdict(node), "read_cpu_ms_per_sample": read_ms,
            "consumer_cpu_ms_per_sample": consumer_ms, "compression_ratio": compression_ratio, **cost,
            "rows": plan(cost, node, read_ms, consumer_ms, compression_ratio=compression_ratio)}


def table(r: dict[str, Any]) -> str:
    n = r["node"]
    lines = [f"scaling at {r['grid']}² {' '.join(r['overrides'])}: {r['params'] / 1e6:.2f} M params, "
             f"{r['flops_per_sample'] / 1e9:.0f} GFLOPs per sample (forward + backward; {r['flops_how']}), "
             f"{r['sample_bytes'] / 2**20:.1f} MiB a sample",
             f"assumed node: {n['gpus']} GPUs × {n['peak_tflops']:.0f} TFLOP/s at MFU {n['mfu']:.2f}, "
             f"{n['cores']} cores, NVLink {n['intra_gbs']:.0f} GB/s, network {n['inter_gbs']:.0f} GB/s; "
             f"batch {n['batch_per_gpu']} per GPU; reads {r['read_cpu_ms_per_sample']:.1f} + consumer "
             f"{r['consumer_cpu_ms_per_sample']:.1f} CPU ms a sample",
             f"{'nodes':>5} {'GPUs':>4} {'smp/s/GPU':>9} {'cores/GPU':>9} {'cores/node':>10} {'compute s':>9} "
             f"{'data s':>7} {'allreduce MB':>12} {'s':>6} {'binds':>8} {'smp/s total':>11} {'FS MB/s':>8}"]
    for x in r["rows"]:
        lines.append(
            f"{x['nodes']:>5} {x['gpus']:>4} {x['samples_per_s_per_gpu']:>9.0f} "
            f"{x['read_cores_per_gpu'] + x['consumer_cores_per_gpu']:>9.1f} "
            f"{x['cores_needed_per_node']:>5.0f}/{x['cores_per_node']:<4} {x['compute_step_s']:>9.3f} "
            f"{x['data_step_s']:>7.3f} {x['allreduce_bytes_per_gpu'] / 1e6:>12.1f} {x['allreduce_s']:>6.3f} "
            f"{x['binds']:>8} {x['samples_per_s_total']:>11.0f} {x['filesystem_mb_per_s']:>8.0f}")
    return "\n".join(lines)
