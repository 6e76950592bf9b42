"""`rs bench data`: HDF5 -> training batches, in one run on the same files, stored (lzf) and uncompressed.

Baselines: a raw sequential h5py read in one process, and a torch `DataLoader` over an h5py map-style
dataset with one worker per core (the way peers load). Ray: the `rs.data.source` pipeline delivering
normalized batches to an iterator. Throughput is samples (frames) per second at steady state: a warm-up
pass first, then `passes` measured passes (each a fresh Ray Data execution, as every training epoch is),
each counting samples after its first batch over the time after it, and the median pass is reported (the
time to the first batch, which holds Ray Data's planning and task start-up, is printed beside it). Peak
memory sums the driver and every Ray worker process, sampled every 50 ms during one more pass, above what
they held before the measured passes; the sampler costs ~10-30 ms of the driver's CPU (and GIL) per sample,
so it never runs while throughput is timed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import psutil

from rs.bench.common import machine
from rs.config import load_config
from rs.data.layout_a import Group, write_file


def _pss(pid: int) -> int:
    """Proportional set size from smaps_rollup (one line; psutil's full smaps walk costs seconds of CPU)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakRSS:
    """Peak memory of this process, its children (DataLoader workers) and every Ray worker process while
    the block runs (`_measure` subtracts what they held before: idle workers and earlier allocations are not
    the loader's). Memory is PSS: pages of Ray's shared object store that several processes map are counted
    once, split between them (their RSS would count each such page once per process)."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def total() -> int:
        me = psutil.Process()
        procs = {me.pid: me}
        with contextlib.suppress(psutil.Error):
            procs.update({c.pid: c for c in me.children(recursive=True)})  # DataLoader workers
        for p in psutil.process_iter(["name"]):
            if (p.info.get("name") or "").startswith("ray::"):
                procs[p.pid] = p
        return sum(_pss(pid) for pid in procs)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRSS:
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


COMPRESSIONS = ("none", "lzf", "gzip")


def _resample(frames_TCHW: np.ndarray, grid: int) -> np.ndarray:
    """Frames bilinearly resampled to grid×grid (the generator's fronts, more pixels across each)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames_TCHW, dtype=np.float32))
    return torch.nn.functional.interpolate(x, size=(grid, grid), mode="bilinear", align_corners=False).numpy()


def make_files(src: Path, out: Path, copies: int, compression: str | None, grid: int | None = None,
               fields: int | None = None) -> Path:
    """The train split of `src`, its simulations repeated `copies` times, with the given compression
    (gzip: h5py's level 4 on one-frame chunks, as the origin's builder writes it); frames resampled to
    grid×grid and channels cycled to `fields` channels when asked."""
    with h5py.File(src / "train.h5") as f:
        root = dict(f.attrs)
        names = [str(n) for n in root["fields"]]
        pick = [i % len(names) for i in range(fields or len(names))]
        if fields:
            root["fields"] = [names[i] if k < len(names) else f"{names[i]}{k // len(names)}"
                              for k, i in enumerate(pick)]
            root.update({k: np.asarray(root[k])[pick] for k in ("channel_mean", "channel_std")})
        sims = []
        for key in sorted(k for k in f if k.startswith("sim_")):
            g = f[key]
            data = {k: g[k][()] for k in g}
            data["images"] = data["images"][:, pick]
            if grid:
                data.update({k: _resample(data[k], grid) for k in ("images", "thermal_field") if k in data})
            attrs = dict(g.attrs)
            attrs.update({k: np.asarray(attrs[k])[pick] for k in ("channel_mean", "channel_std") if k in attrs})
            sims.append((data, attrs))
    groups = [Group(f"sim_{i + 1:04d}", data, attrs) for i, (data, attrs) in enumerate(sims * copies)]
    out.mkdir(parents=True, exist_ok=True)
    write_file(out / "train.h5", groups, root, compression=None if compression == "none" else compression)
    return out


def raw_read(root: Path) -> tuple[int, int]:
    frames = nbytes = 0
    with h5py.File(root / "train.h5") as f:
        for key in f:
            ds = f[key]["images"]
            for s in range(0, ds.shape[0], 64):
                block = ds[s : s + 64]
                frames += block.shape[0]
                nbytes += block.nbytes
    return frames, nbytes


class H5Windows:
    """Map-style torch dataset: each item opens (once per worker) the file and reads one window."""

    def __init__(self, path: Path, mean: np.ndarray, std: np.ndarray):
        self.path = str(path)
        self.mean, self.std = mean[:, None, None], std[:, None, None]
        with h5py.File(path) as f:
            self.index = [(k, t) for k in f for t in range(f[k]["images"].shape[0] - 1)]
        self._f: h5py.File | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        k, t = self.index[i]
        pair = (self._f[k]["images"][t : t + 2] - self.mean) / self.std
        return pair[0].astype(np.float32), pair[1].astype(np.float32)


def _steady(batches: Any) -> dict[str, float]:
    """Samples, seconds to the first batch, samples/s after it (the steady state the targets name) and over
    the whole pass. A pass of a few blocks has no steady state: its first block brings many batches at once."""
    t0 = time.perf_counter()
    n = n_first = 0
    t_first = t0
    for b in batches:
        if n == 0:
            t_first, n_first = time.perf_counter(), len(b)
        n += len(b)
    t_end = time.perf_counter()
    return {"samples": n, "first_batch_s": t_first - t0,
            "samples_per_s": (n - n_first) / max(t_end - t_first, 1e-9),
            "pass_samples_per_s": n / max(t_end - t0, 1e-9)}


def dataloader_read(root: Path, batch_size: int) -> dict[str, float]:
    import torch

    with h5py.File(root / "train.h5") as f:
        mean, std = f.attrs["channel_mean"], f.attrs["channel_std"]
    loader = torch.utils.data.DataLoader(H5Windows(root / "train.h5", mean, std), batch_size=batch_size,
                                         shuffle=True, num_workers=os.cpu_count() or 1, persistent_workers=False)
    return _steady(x for x, _ in loader)


def _ray_cpu_s() -> dict[int, float]:
    """CPU seconds so far of each Ray worker process (read tasks run there) and of the raylet (object store)."""
    out = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        name, argv0 = proc.info.get("name") or "", (proc.info["cmdline"] or [""])[0]
        if name.startswith("ray::") or name == "raylet" or argv0.endswith("/raylet"):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
    return out


def spilled_mb() -> float:
    """MiB the local object store has spilled to disk so far (Ray's own `ray memory` figure), 0 if none."""
    import re

    from ray._private.internal_api import memory_summary

    try:
        found = re.search(r"Spilled (\d+) MiB", memory_summary(stats_only=True))
    except Exception:  # a statistic, not worth failing the bench for
        return float("nan")
    return float(found.group(1)) if found else 0.0


def ray_read(cfg_root: Path, batch_size: int, overrides: tuple[str, ...] = ()) -> dict[str, float]:
    """One pass of the Ray Data pipeline into torch batches, with the CPU it cost: the read side (Ray's
    worker processes and raylet) and the consumer (this process), each per sample."""
    from rs.data.source import build_split, iterate

    with h5py.File(cfg_root / "train.h5") as f:
        fields = [str(x) for x in f.attrs["fields"]]
    cfg = load_config(None, [f"data.root={cfg_root}", "data.read_block_frames=64", f"data.fields={fields}",
                             *overrides], env={})
    me = psutil.Process()
    before, mine = _ray_cpu_s(), sum(me.cpu_times()[:2])
    ds = build_split(cfg, "train").datasets["train"]
    r = _steady(iterate(ds, batch_size))
    after, mine = _ray_cpu_s(), sum(me.cpu_times()[:2]) - mine
    read_s = sum(t - before.get(pid, 0.0) for pid, t in after.items())
    n = max(r["samples"], 1)
    return {**r, "read_cpu_ms_per_sample": 1e3 * read_s / n, "consumer_cpu_ms_per_sample": 1e3 * mine / n}


def _measure(fn: Callable[[], Any], passes: int) -> tuple[float, Any, int]:
    """Median wall time and result (by wall time, or by samples/s where the result has it) of `passes`
    runs after a warm-up run, then the peak memory of one more run above what was held before the first."""
    import gc

    fn()
    baseline = PeakRSS.total()
    runs = []
    for _ in range(passes):
        gc.collect()  # a finished Ray Data execution holds its blocks until its iterator is collected
        t0 = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - t0, result))
    gc.collect()
    with PeakRSS() as rss:
        fn()
    key = (lambda r: -r[1]["samples_per_s"]) if isinstance(runs[0][1], dict) else (lambda r: r[0])
    wall, result = sorted(runs, key=key)[len(runs) // 2]
    return wall, result, max(rss.peak - baseline, 0)


def run(work: Path, copies: tuple[int, ...] = (2, 64), batch_size: int = 32, object_store_mb: int = 256,
        passes: int = 3, compressions: tuple[str, ...] = ("lzf", "none"), grid: int | None = None,
        fields: int | None = None, dataloader: bool = True, sets: tuple[str, ...] = ()) -> dict:
    """Generate the debug dataset once, then measure every loader at each size and compression."""
    from rs.cluster import auth
    from rs.cluster.env import apply_ray_env

    apply_ray_env()
    import ray

    from rs.data.generate.write import generate

    if any(not x.startswith("data.") for x in sets):
        raise ValueError(f"--set {', '.join(sets)}: the data bench takes data.* settings only")
    bad = [c for c in compressions if c not in COMPRESSIONS]
    if bad:
        raise ValueError(f"--compression {','.join(bad)}: choose from {', '.join(COMPRESSIONS)}")
    src = work / "source"
    if not (src / "train.h5").is_file():
        cfg = load_config(Path(__file__).resolve().parents[2] / "configs/data/debug.yaml", env={})
        generate(cfg.data.generate, src, cfg.data.fields)
    cpus = os.cpu_count() or 1
    if not ray.is_initialized():
        auth.for_new_cluster()
        ray.init(num_cpus=cpus, object_store_memory=object_store_mb * 1024**2, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    out: dict[str, Any] = {"machine": machine(), "batch_size": batch_size, "object_store_mb": object_store_mb,
                           "passes": passes, "read_cores": cpus, "sets": list(sets), "sizes": []}
    for n in copies:
        for compression in compressions:
            root = make_files(src, work / f"x{n}-{compression}", n, compression, grid, fields)
            with h5py.File(root / "train.h5") as f:
                names = [str(x) for x in f.attrs["fields"]]
                frame_shape = f[next(iter(f))]["images"].shape[1:]
            size_mb = (root / "train.h5").stat().st_size / 1e6
            raw_s, (frames, nbytes), raw_rss = _measure(lambda r=root: raw_read(r), passes)
            dl = {"samples_per_s": float("nan"), "first_batch_s": float("nan")}
            dl_rss = 0
            if dataloader:
                _, dl, dl_rss = _measure(lambda r=root: dataloader_read(r, batch_size), passes)
            spilled = spilled_mb()
            _, ray_, ray_rss = _measure(lambda r=root: ray_read(r, batch_size, sets), passes)
            spilled = spilled_mb() - spilled
            raw_fps = frames / raw_s
            out["sizes"].append({
                "copies": n, "compression": compression, "grid": list(frame_shape[1:]), "fields": len(names),
                "file_mb": size_mb, "in_memory_mb": nbytes / 1e6, "compression_ratio": nbytes / 1e6 / size_mb,
                "raw_frames_per_s": raw_fps, "raw_mb_per_s": nbytes / 1e6 / raw_s,
                "dataloader_samples_per_s": dl["samples_per_s"], "ray_samples_per_s": ray_["samples_per_s"],
                # raw h5py reads in one process: its figure is per core already. Ray's per read core: samples
                # over the CPU seconds its read side spent (the consumer's apart: here it shares the cores).
                "ray_samples_per_s_per_core": 1e3 / ray_["read_cpu_ms_per_sample"],
                "read_cpu_ms_per_sample": ray_["read_cpu_ms_per_sample"],
                "consumer_cpu_ms_per_sample": ray_["consumer_cpu_ms_per_sample"],
                "dataloader_first_batch_s": dl["first_batch_s"], "ray_first_batch_s": ray_["first_batch_s"],
                "ray_over_raw": ray_["samples_per_s"] / raw_fps,
                "ray_per_core_over_raw": 1e3 / ray_["read_cpu_ms_per_sample"] / raw_fps,
                "ray_pass_samples_per_s": ray_["pass_samples_per_s"],
                "ray_over_raw_pass": ray_["pass_samples_per_s"] / raw_fps,
                "ray_over_dataloader": ray_["samples_per_s"] / dl["samples_per_s"],
                "peak_rss_mb": {"raw": raw_rss / 1e6, "dataloader": dl_rss / 1e6, "ray": ray_rss / 1e6},
                "ray_spilled_mb": spilled,  # over all of Ray's passes: the object store overflowed to disk
            })
            shutil.rmtree(root, ignore_errors=True)
    last = {s["compression"]: s for s in out["sizes"]}  # the largest size of each compression
    for c, s in last.items():
        out[f"ray_over_raw_{c}"] = s["ray_over_raw"]
        out[f"ray_samples_per_s_per_core_{c}"] = s["ray_samples_per_s_per_core"]
    if "lzf" in last:  # the names the committed table and the tests have always read
        out["ray_over_raw"] = last["lzf"]["ray_over_raw"]
        out["ray_over_dataloader"] = last["lzf"]["ray_over_dataloader"]
    if "none" in last:
        out["ray_over_raw_uncompressed"] = last["none"]["ray_over_raw"]
    out["peak_rss_mb"] = max(s["peak_rss_mb"]["ray"] for s in out["sizes"])
    return out


def table(r: dict) -> str:
    lines = [f"data bench: batch {r['batch_size']}, object store {r['object_store_mb']} MB, median of "
             f"{r['passes']} passes, Ray on {r['read_cores']} read cores{''.join(' ' + x for x in r['sets'])}; "
             f"{r['machine']}",
             f"{'copies':>6} {'grid':>9} {'file':>5} {'MB in mem':>9} {'ratio':>5} {'raw fr/s':>9} {'raw MB/s':>8} "
             f"{'DL smp/s':>8} {'Ray smp/s':>9} {'/core':>6} {'cons ms':>7} {'Ray/raw':>7} {'/core':>5} {'pass':>5} "
             f"{'Ray/DL':>6} "
             f"{'1st batch DL/Ray s':>18} {'+RSS MB raw/DL/Ray':>18}"]
    for s in r["sizes"]:
        rss = s["peak_rss_mb"]
        grid = f"{s['fields']}×{s['grid'][0]}²"
        lines.append(
            f"{s['copies']:>6} {grid:>9} {s['compression']:>5} {s['in_memory_mb']:>9.0f} "
            f"{s['compression_ratio']:>5.1f} "
            f"{s['raw_frames_per_s']:>9.0f} {s['raw_mb_per_s']:>8.0f} {s['dataloader_samples_per_s']:>8.0f} "
            f"{s['ray_samples_per_s']:>9.0f} {s['ray_samples_per_s_per_core']:>6.0f} "
            f"{s['consumer_cpu_ms_per_sample']:>7.2f} {s['ray_over_raw']:>7.2f} "
            f"{s['ray_per_core_over_raw']:>5.2f} {s['ray_over_raw_pass']:>5.2f} {s['ray_over_dataloader']:>6.2f} "
            f"{s['dataloader_first_batch_s']:>12.2f}/{s['ray_first_batch_s']:.2f} "
            f"{rss['raw']:>7.0f}/{rss['dataloader']:.0f}/{rss['ray']:.0f}")
    lines.append("; ".join(f"{c}: Ray/raw {r[f'ray_over_raw_{c}']:.2f}, "
                           f"{r[f'ray_samples_per_s_per_core_{c}']:.0f} samples/s per read core"
                           for c in COMPRESSIONS if f"ray_over_raw_{c}" in r)
                 + f"; Ray peak RSS above idle {r['peak_rss_mb']:.0f} MB")
    spills = [f"{s['copies']}× {s['compression']} {s['ray_spilled_mb']:.0f} MiB" for s in r["sizes"]
              if s.get("ray_spilled_mb")]
    if spills:
        lines.append("object store spilled to disk (reads then pay for it; raise --object-store-mb): "
                     + ", ".join(spills))
    lines.append("raw: one process reading 64-frame slices with h5py (frames/s: per core). Ray /core: samples per "
                 "CPU second of its read side (workers + raylet); cons ms: the consumer's CPU per sample (rebatch, "
                 "torch); Ray smp/s: wall rate, {} cores shared by both".format(r["read_cores"]))
    return "\n".join(lines)
