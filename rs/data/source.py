"""The Ray Data source: HDF5 simulations -> blocks of normalized samples, reshuffled per epoch.

Ray has no HDF5 reader. `PhaseFieldDatasource` plans one read task per chunk of windows (so one large file
still reads in parallel); each task opens its file itself (h5py objects never cross processes), cuts the
windows, and returns one large Arrow block with tensor columns. The chunk order is a permutation of
(data.seed, epoch) and rows inside a chunk are shuffled by (seed, epoch, chunk): a cheap, deterministic
per-epoch reshuffle with no global materializing shuffle.

The epoch comes from an `EpochClock` actor that rank 0 advances before each epoch; Ray's streaming split
plans the dataset anew after all ranks reach its epoch barrier, so every rank sees the same epoch's plan.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray.data import Dataset
from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from rs.config.schema import ExperimentConfig
from rs.data import layouts
from rs.data.normalize import Stats, compute_stats
from rs.data.ray_compat import wait_for_first_reservation
from rs.data.samples import Chunk, SampleSpec, Slabs, allocate, build_index, read_chunk, row_bytes, rows_within

log = logging.getLogger(__name__)
wait_for_first_reservation()
ORDER_STRIDE = 1 << 20  # position = chunk position · stride + row: the global order, recoverable from rows


@ray.remote(num_cpus=0)
class EpochClock:
    """The current epoch of a training run, read by the datasource when Ray plans an epoch."""

    def __init__(self, epoch: int = 0):
        self.epoch = epoch

    def set(self, epoch: int) -> None:
        self.epoch = epoch

    def get(self) -> int:
        return self.epoch


def epoch_seed(seed: int, epoch: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, *more])


def _read(chunks: list[tuple[int, Chunk]], spec: SampleSpec, stats: Stats, seed: int | None, epoch: int,
          block_rows: int) -> Iterator[Any]:
    """One read task: its chunks in epoch order, yielded as blocks of `block_rows` rows or up to a chunk
    more. A task spans several blocks because Ray Data polls tasks every 0.1 s; a block stays small so memory
    stays bounded. A block reaching `block_rows` leaves the task at once: Ray Data holds back (and then
    copies together) blocks smaller than the dataset's `target_max_block_size`."""
    group: list[tuple[int, Chunk]] = []
    slabs = Slabs([c for _, c in chunks])
    for item in chunks:
        group.append(item)
        if sum(c.rows for _, c in group) >= block_rows:
            yield _block(group, spec, stats, seed, epoch, slabs)
            group = []
    if group:
        yield _block(group, spec, stats, seed, epoch, slabs)


def _block(group: list[tuple[int, Chunk]], spec: SampleSpec, stats: Stats, seed: int | None, epoch: int,
           slabs: Slabs) -> Any:
    """One Arrow block of every window of `group`, gathered straight into the block's arrays (the frame
    arrays are most of the bytes: a concatenation of per-chunk arrays cost as much as cutting them)."""
    buf = allocate(sum(c.rows for _, c in group), group[0][1].meta, spec, len(stats.cond_names))
    small: list[dict[str, np.ndarray]] = []
    filled = 0
    for position, chunk in group:
        rng = epoch_seed(seed, epoch, chunk.chunk_id) if seed is not None else None
        part = read_chunk(chunk, spec, stats, rng, out={k: v[filled:] for k, v in buf.items()}, slabs=slabs)
        n = part["input"].shape[0]  # fewer than chunk.rows when windows touching bad frames are skipped
        small.append({k: v for k, v in part.items() if k not in buf})
        small[-1]["order"] = position * ORDER_STRIDE + np.arange(n, dtype=np.int64)
        filled += n
    block = {k: v[:filled] for k, v in buf.items()}
    block.update({k: np.concatenate([p[k] for p in small]) for k in small[0]})
    return BlockAccessor.batch_to_block(block)


class PhaseFieldDatasource(Datasource):
    def __init__(self, chunks: list[Chunk], spec: SampleSpec, stats: Stats, seed: int | None,
                 clock: Any = None, epoch: int = 0, block_rows: int = 256, task_blocks: int = 64):
        super().__init__()
        self.chunks, self.spec, self.stats, self.seed = chunks, spec, stats, seed
        self.clock, self.fixed_epoch = clock, epoch
        self.block_rows, self.task_blocks = block_rows, task_blocks

    def get_name(self) -> str:
        return "PhaseFieldHDF5"

    def current_epoch(self) -> int:
        return int(ray.get(self.clock.get.remote())) if self.clock is not None else self.fixed_epoch

    def _row_bytes(self, c: Chunk) -> int:
        return row_bytes(c.meta, self.spec)

    def rows_per_read(self) -> int:
        """Rows per read task: long tasks amortize Ray's per-task cost (Ray's suggested `parallelism` is
        sized for small blocks and is ignored), while two tasks per cluster CPU keep every core reading."""
        total = sum(c.rows for c in self.chunks)
        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else 1
        return max(1, self.block_rows, min(self.block_rows * self.task_blocks, -(-total // (2 * cpus))))

    def _slabs(self) -> list[list[Chunk]]:
        units: dict[tuple, list[Chunk]] = {}
        for c in self.chunks:
            units.setdefault(c.slab_key, []).append(c)
        return list(units.values())

    def num_reads(self) -> int:
        """About how many read tasks `get_read_tasks` plans: packing in the epoch's order can differ by a task
        or two when chunk sizes differ, and Ray re-splits blocks only when it gets fewer than asked for."""
        return len(_pack(self._slabs(), self.rows_per_read()))

    def block_bytes(self) -> int:
        return self.block_rows * max(self._row_bytes(c) for c in self.chunks)

    def estimate_inmemory_data_size(self) -> int:
        return sum(c.rows * self._row_bytes(c) for c in self.chunks)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        epoch = self.current_epoch()
        # The unit of reordering is the slab (its frames are read once): slabs in a new order every epoch,
        # and the chunks of each in a new order within it.
        units = self._slabs()
        if self.seed is not None:
            rng = epoch_seed(self.seed, epoch)
            units = [[unit[int(j)] for j in rng.permutation(len(unit))] for unit in
                     (units[int(i)] for i in rng.permutation(len(units)))]
        packs = _pack(units, self.rows_per_read())
        tasks = []
        for pack in packs:
            rows = sum(c.rows for _, c in pack)
            meta = BlockMetadata(num_rows=rows, size_bytes=sum(c.rows * self._row_bytes(c) for _, c in pack),
                                 input_files=tuple(sorted({c.meta.file for _, c in pack})), exec_stats=None)
            fn = functools.partial(_read, pack, self.spec, self.stats, self.seed, epoch, self.block_rows)
            tasks.append(ReadTask(fn, meta, per_task_row_limit=per_task_row_limit))
        return tasks


def _pack(units: list[list[Chunk]], per_task: int) -> list[list[tuple[int, Chunk]]]:
    """Chunks in order (with their positions) into read tasks of about `per_task` rows; a slab goes whole to
    one task where it fits, so its frames are read once (one larger than a task is split)."""
    packs: list[list[tuple[int, Chunk]]] = [[]]
    rows = position = 0
    for unit in units:
        for k, c in enumerate(unit):
            need = sum(u.rows for u in unit) if k == 0 else c.rows
            if packs[-1] and rows + need > per_task:
                packs.append([])
                rows = 0
            packs[-1].append((position, c))
            rows += c.rows
            position += 1
    return packs


def quiet_progress() -> None:
    """No Ray Data progress bars: they flood worker logs, and tqdm's lock can deadlock the driver at exit.
    The setting is captured by every dataset created afterwards (and by its split coordinator)."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False


@dataclass
class SplitData:
    datasets: dict[str, Dataset]  # one per H×W group: "train" or "train@48x64"
    stats: Stats
    samples: int


def _groups(chunks: list[Chunk], spec: SampleSpec) -> dict[tuple[int, int] | None, list[Chunk]]:
    if spec.shape_policy != "group":
        return {None: chunks}
    out: dict[tuple[int, int] | None, list[Chunk]] = {}
    for c in chunks:
        out.setdefault(c.meta.grid, []).append(c)
    return out


def build_split(cfg: ExperimentConfig, split: str, stats: Stats | None = None, *, shuffle: bool = True,
                clock: Any = None, epoch: int = 0) -> SplitData:
    """Datasets of one split. Train statistics normalize every split; pass them for val/test."""
    d = cfg.data
    quiet_progress()
    spec = SampleSpec.from_config(d)
    if stats is None:
        stats = compute_stats(layouts.open_split(d.root, "train", d.layout), list(d.fields), list(d.cond_params))
    metas = layouts.open_split(d.root, split, d.layout)
    max_bytes = int(d.read_block_mb * 2**20)
    chunks = build_index(metas, spec, d.read_block_frames, max_bytes, int(d.read_slab_mb * 2**20))
    groups = _groups(chunks, spec)
    datasets = {}
    for grid, members in groups.items():
        name = split if len(groups) == 1 or grid is None else f"{split}@{grid[0]}x{grid[1]}"
        rows = min(d.read_block_rows, min(rows_within(c.meta, spec, max_bytes) for c in members))
        source = PhaseFieldDatasource(members, spec, stats, d.seed if shuffle else None, clock, epoch,
                                      rows, d.read_task_blocks)
        # As many "blocks" asked for as read tasks: otherwise Ray re-splits each task's output.
        ds = ray.data.read_datasource(source, num_cpus=d.read_cpus, override_num_blocks=source.num_reads())
        # Ray coalesces a task's yields up to 128 MiB blocks, several of which would fill a small object
        # store; this dataset's blocks are capped at `read_block_rows` rows and `read_block_mb` instead.
        ds.context.target_max_block_size = source.block_bytes()
        datasets[name] = ds
    return SplitData(datasets, stats, sum(c.rows for c in chunks))


@dataclass
class Batch:
    input: Any  # torch (B, K·C[+1], H, W)
    target: Any  # torch (B, C, H, W) or (B, S, C, H, W)
    cond: Any  # torch (B, P)
    meta: dict[str, np.ndarray]  # file, sim, frame, order

    def __len__(self) -> int:
        return int(self.input.shape[0])

    def to(self, device: Any, channels_last: bool = False) -> Batch:
        """On `device`; 4-D tensors channels-last when asked (what a channels-last model convolves fastest)."""
        import torch

        if device.type == "cpu" and not channels_last:
            return self

        def move(x: Any) -> Any:
            x = x.to(device, non_blocking=True)
            return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x

        target = None if self.target is None else move(self.target)
        return Batch(move(self.input), target, move(self.cond), self.meta)


def rebatch(blocks: Iterator[dict[str, np.ndarray]], batch_size: int, drop_last: bool = False
            ) -> Iterator[dict[str, np.ndarray]]:
    """Batches of `batch_size` rows cut from whole blocks: views inside a block, one concatenation where a
    batch spans blocks. Ray's own batcher costs ~4x as much per batch (it slices and converts every Arrow
    column per batch), which is most of a training driver's data cost at small batch sizes. A batch spanning
    many small blocks (large frames: 4 rows a block at 512²) is gathered once from all its pieces; growing it
    block by block copied each row up to batch/rows times (the consumer's whole time at 512², measured)."""
    def rows(cols: dict[str, np.ndarray]) -> int:
        return len(next(iter(cols.values())))

    def joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    pending: list[dict[str, np.ndarray]] = []  # pieces of the next batch: fewer than batch_size rows in all
    have = 0
    for block in blocks:
        n, start = rows(block), 0
        if pending:
            start = min(batch_size - have, n)
            pending.append({k: v[:start] for k, v in block.items()})
            have += start
            if have < batch_size:
                continue
            yield joined(pending)
            pending, have = [], 0
        for lo in range(start, n - batch_size + 1, batch_size):
            yield {k: v[lo : lo + batch_size] for k, v in block.items()}
        rest = start + (n - start) // batch_size * batch_size
        if rest < n:
            pending, have = [{k: v[rest:] for k, v in block.items()}], n - rest
    if pending and not drop_last:
        yield joined(pending)


def iterate(it: Any, batch_size: int, *, drop_last: bool = False, prefetch: int = 2) -> Iterator[Batch]:
    """Torch batches from a Dataset or a Train shard (`DataIterator`), zero-copy from the Arrow blocks
    (except a batch that spans two blocks). Every rank of an equal split gets the same number of batches."""
    import warnings

    import torch

    # Blocks are read-only shared memory; batches are never written in place, so zero-copy is safe.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    blocks = it.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=prefetch)
    try:
        for b in rebatch(blocks, batch_size, drop_last):
            yield Batch(torch.from_numpy(b["input"]), torch.from_numpy(b["target"]), torch.from_numpy(b["cond"]),
                        {"file": b["meta_file"], "sim": b["meta_sim"], "frame": b["meta_frame"],
                         "order": b["order"]})
    finally:
        if hasattr(blocks, "close"):
            blocks.close()
