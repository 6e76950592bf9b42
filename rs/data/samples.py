"""Cutting samples out of simulations: the index of read units and the reader of one unit.

A `Chunk` is a run of consecutive windows of one simulation, sized so its samples fit a block; chunks lie
in slabs (runs of up to `windows_per_chunk` windows whose frames fit `max_slab_bytes`), and a slab's frames
are read once for all of its chunks (`Slabs`): every window needs `span` frames past its own, so reading
each small chunk alone would decompress `span` frames twice per chunk (25% more at 512², 4 rows a chunk).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rs.config.data_schema import DataConfig
from rs.data import layouts, window
from rs.data.meta import DataError, SimulationMeta
from rs.data.normalize import Stats, channel_indices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleSpec:
    """How windows are cut (the sample contract of DESIGN: input K·C(+1)×H×W, target C or S×C)."""

    fields: tuple[str, ...]
    history: int
    stride: int
    unroll: int
    thermal: bool
    shape_policy: str
    crop_size: tuple[int, int] | None
    on_bad: str
    align: bool = False

    @classmethod
    def from_config(cls, d: DataConfig) -> SampleSpec:
        return cls(tuple(d.fields), d.history, d.stride, d.unroll_steps, d.thermal_input, d.shape_policy,
                   d.crop_size, d.on_bad_simulation, d.align_window)

    @property
    def span(self) -> int:
        """Frames after the first input frame that one window needs."""
        return self.history - 1 + self.stride * self.unroll


@dataclass(frozen=True)
class Chunk:
    meta: SimulationMeta
    start: int  # first window (index of its first input frame)
    stop: int  # one past the last window
    chunk_id: int
    slab: tuple[int, int]  # the windows of the slab holding it (its own where a slab is one chunk)

    @property
    def rows(self) -> int:
        return self.stop - self.start

    @property
    def slab_key(self) -> tuple:
        return (self.meta.file, self.meta.key, *self.slab)


def row_bytes(meta: SimulationMeta, spec: SampleSpec) -> int:
    """Bytes of one sample cut from `meta`: its input and target frames, float32."""
    H, W = out_grid(meta, spec)
    return 4 * H * W * (len(spec.fields) * (spec.history + spec.unroll) + int(spec.thermal))


def rows_within(meta: SimulationMeta, spec: SampleSpec, max_bytes: int) -> int:
    """How many of `meta`'s samples fit in `max_bytes` (at least one)."""
    return max(1, max_bytes // row_bytes(meta, spec))


def frame_bytes(meta: SimulationMeta, spec: SampleSpec) -> int:
    H, W = out_grid(meta, spec)
    return 4 * H * W * len(spec.fields)


def build_index(metas: list[SimulationMeta], spec: SampleSpec, windows_per_chunk: int,
                max_chunk_bytes: int | None = None, max_slab_bytes: int | None = None) -> list[Chunk]:
    """Chunks over every simulation with enough frames; bad simulations fail or are skipped (logged).
    A chunk holds at most `windows_per_chunk` windows and, at least one aside, `max_chunk_bytes` of samples;
    consecutive chunks share a slab of at most `windows_per_chunk` windows whose frames fit `max_slab_bytes`
    (without it, every chunk is its own slab)."""
    chunks: list[Chunk] = []
    skipped = 0
    for m in metas:
        try:
            channel_indices(m, list(spec.fields))
            n = m.n_windows(spec.history, spec.stride, spec.unroll)
            if n <= 0:
                raise DataError(f"{m.file}:/{m.key}: {m.n_frames} frames, fewer than one window needs "
                                f"({spec.span + 1}); lower data.history/stride/unroll_steps")
        except DataError as err:
            if spec.on_bad == "fail":
                raise
            log.warning("skipping simulation: %s", err)
            skipped += 1
            continue
        per = windows_per_chunk if max_chunk_bytes is None else min(windows_per_chunk,
                                                                    rows_within(m, spec, max_chunk_bytes))
        slab = per if max_slab_bytes is None else max(
            per, min(windows_per_chunk, max_slab_bytes // frame_bytes(m, spec) - spec.span))
        for a in range(0, n, slab):
            b = min(a + slab, n)
            for s in range(a, b, per):
                chunks.append(Chunk(m, s, min(s + per, b), len(chunks), (a, b)))
    if skipped:
        log.warning("skipped %d bad simulation(s) (data.on_bad_simulation: skip)", skipped)
    return chunks


def _fit(x: np.ndarray, spec: SampleSpec) -> np.ndarray:
    """Centre-crop or edge-pad the last two axes to `crop_size` under the crop/pad policies."""
    if spec.shape_policy == "group" or spec.crop_size is None:
        return x
    H, W = x.shape[-2:]
    th, tw = spec.crop_size
    if spec.shape_policy == "crop" or (H >= th and W >= tw):
        y0, x0 = max((H - th) // 2, 0), max((W - tw) // 2, 0)
        x = x[..., y0 : y0 + th, x0 : x0 + tw]
    H, W = x.shape[-2:]
    if H < th or W < tw:
        pad = [(0, 0)] * (x.ndim - 2) + [(0, th - H), (0, tw - W)]
        x = np.pad(x, pad, mode="edge")
    return x


def out_grid(meta: SimulationMeta, spec: SampleSpec) -> tuple[int, int]:
    """H×W of the samples cut from a simulation (its own grid, or `crop_size` under crop/pad)."""
    if spec.shape_policy != "group" and spec.crop_size is not None:
        return spec.crop_size
    return meta.grid


def allocate(rows: int, meta: SimulationMeta, spec: SampleSpec, n_cond: int) -> dict[str, np.ndarray]:
    """Empty sample arrays for `rows` windows cut like `meta`'s (every array `read_chunk` fills)."""
    H, W = out_grid(meta, spec)
    C = len(spec.fields)
    target = (rows, C, H, W) if spec.unroll == 1 else (rows, spec.unroll, C, H, W)
    return {"input": np.empty((rows, spec.history * C + int(spec.thermal), H, W), np.float32),
            "target": np.empty(target, np.float32), "cond": np.empty((rows, n_cond + 1), np.float32)}


def _align(x: np.ndarray, target: np.ndarray, off: np.ndarray, newest: np.ndarray, spec: SampleSpec,
           C: int) -> None:
    """Re-express each row's history and target frames in the window of its newest input frame, in place
    (a frame moves from window a to window b by shift(x, off[a] − off[b])); rows moved alike move at once."""
    K, S, s = spec.history, spec.unroll, spec.stride
    slots = [(x[:, j * C : (j + 1) * C], newest - (K - 1 - j)) for j in range(K - 1)]
    slots += [(target if S == 1 else target[:, k], newest + s * (k + 1)) for k in range(S)]
    for arr, frame in slots:
        d = off[frame] - off[newest]
        for v in np.unique(d[d != 0]):
            rows = np.flatnonzero(d == v)
            arr[rows] = window.shift(arr[rows], int(v))


class Slabs:
    """The frames of the slab last asked for, read and normalized once for all of its chunks (one slab is
    held at a time: a read task takes a slab's chunks one after another). Given the task's chunks, only the
    part of a slab they cover is read: a slab split between tasks (many CPUs, few rows) is not read whole
    by each."""

    def __init__(self, chunks: list[Chunk] | None = None) -> None:
        self.key: tuple | None = None
        self.first = 0
        self.frames = self.finite = np.empty(0)
        self.cover: dict[tuple, tuple[int, int]] = {}
        for c in chunks or []:
            lo, hi = self.cover.get(c.slab_key, (c.start, c.stop))
            self.cover[c.slab_key] = (min(lo, c.start), max(hi, c.stop))

    def frames_of(self, chunk: Chunk, spec: SampleSpec, stats: Stats, idx: list[int]
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(normalized frames, finite per frame) of the frames `chunk`'s windows need."""
        m, key = chunk.meta, chunk.slab_key
        if self.key != key:
            self.key = None
            a, b = self.cover.get(key, chunk.slab)
            raw = layouts.read_frames(m, a, b + spec.span)
            self.finite = np.isfinite(raw).all(axis=(1, 2, 3))
            self.frames = _fit(stats.frames(raw, m.normalized, idx, inplace=True), spec)
            self.key, self.first = key, a
        lo, hi = chunk.start - self.first, chunk.stop + spec.span - self.first
        return self.frames[lo:hi], self.finite[lo:hi]


def read_chunk(chunk: Chunk, spec: SampleSpec, stats: Stats, rng: np.random.Generator | None,
               out: dict[str, np.ndarray] | None = None, slabs: Slabs | None = None) -> dict[str, np.ndarray]:
    """All windows of one chunk as a dict of arrays, rows locally shuffled when `rng` is given.

    With `out` (arrays from `allocate` with at least `chunk.rows` rows) the windows are gathered straight
    into it, so a block of many chunks is built with one copy instead of a copy and a concatenation; the
    returned arrays are then views of its first rows. `slabs` keeps the frames of its slab for the next
    chunk of the same slab; without it only the chunk's own frames are read."""
    m = chunk.meta
    idx = channel_indices(m, list(spec.fields))
    first, last = chunk.start, chunk.stop - 1 + spec.span
    frames, finite = (slabs or Slabs([chunk])).frames_of(chunk, spec, stats, idx)  # (F, C, H, W)
    n, K, C = chunk.rows, spec.history, len(idx)
    ok = np.ones(n, bool)
    if not finite.all():
        bad = int(first + np.argmin(finite))
        if spec.on_bad == "fail":
            raise DataError(f"{m.file}:/{m.key}/images: non-finite values in frame {bad}; "
                            f"fix the file or set data.on_bad_simulation: skip")
        touch = np.array([~finite[i : i + spec.span + 1].all() for i in range(n)])
        ok &= ~touch
        log.warning("%s:/%s: skipped %d window(s) touching non-finite frames", m.file, m.key, int(touch.sum()))
    # Shuffle the window index first so each array is gathered once, already in its final order.
    order = rng.permutation(n) if rng is not None else np.arange(n)
    w = order[ok[order]]
    buf = out if out is not None else allocate(w.size, m, spec, len(stats.cond_names))
    x = buf["input"][: w.size]
    H, W = frames.shape[-2:]
    history = w[:, None] + np.arange(K)[None, :]
    if not spec.thermal:
        # mode="clip": the indices are in range by construction, and numpy buffers `out` under "raise" (3x)
        np.take(frames, history, axis=0, out=x.reshape(w.size, K, C, H, W), mode="clip")
    else:  # the history slots are then not one contiguous block: gather, then place
        x[:, : K * C] = frames[history].reshape(w.size, K * C, H, W)
        th = layouts.read_thermal(m, first, last + 1)[:, 0] / stats.thermal_scale
        x[:, K * C] = _fit(th, spec)[w + K - 1]
    tgt_idx = w[:, None] + K - 1 + spec.stride * np.arange(1, spec.unroll + 1)[None, :]
    target = buf["target"][: w.size]
    np.take(frames, tgt_idx[:, 0] if spec.unroll == 1 else tgt_idx, axis=0, out=target, mode="clip")
    frame = w + first + K - 1  # the last input frame
    off = window.offsets(m) if spec.align else None
    if off is not None:
        _align(x, target, off, frame, spec, C)
    times = layouts.LAYOUTS[m.layout].read_series(m, "time_phys_norm") if m.layout == "A" else None
    t_feat = times[frame] if times is not None else frame / max(m.n_frames - 1, 1)
    cond = buf["cond"][: w.size]
    cond[:, :-1] = stats.cond(m)
    cond[:, -1] = t_feat
    return {
        "input": x,
        "target": target,
        "cond": cond,
        "meta_file": np.full(w.size, m.file),
        "meta_sim": np.full(w.size, m.key),
        "meta_frame": frame.astype(np.int64),
    }
