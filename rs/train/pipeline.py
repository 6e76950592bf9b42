"""Opening a training epoch's data, and opening the first one while the worker is still being built.

A worker's first epoch waits for its data pipeline to start (the split coordinator's process, the first read
task: ~2.5 s on 2 cores) and, before that, for the model, optimizer, checkpoint and DDP wrap (~1 s). They need
nothing from each other, so the first epoch's pipeline starts in a thread when the worker function starts and
the build runs beside it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import ray
import ray.train

from rs.data.source import Batch, iterate


def open_epoch(config: dict[str, Any], key: str, epoch: int, batch_size: int, rank: int, *,
               first_key: bool) -> Iterator[Batch]:
    """The batches of one train dataset for `epoch`. Rank 0 advances the epoch clock first: the split plans the
    epoch after every rank reaches its barrier, so every rank then sees the same epoch's order."""
    if first_key and rank == 0 and config.get("clock") is not None:
        ray.get(config["clock"].set.remote(epoch))
    return iterate(ray.train.get_dataset_shard(key), batch_size, drop_last=False)


class EarlyEpoch:
    """`epoch`'s first train dataset, opened in a thread and waited on (up to its first batch) only when the
    loop reaches it. If the loop starts at another epoch (the planned checkpoint did not load), the early
    iterator is closed unread: every rank reads the same files, so every rank does the same."""

    def __init__(self, config: dict[str, Any], key: str, epoch: int, batch_size: int, rank: int):
        self.key, self.epoch = key, epoch
        self._batches: Iterator[Batch] | None = None
        self._first: list[Batch] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._open, args=(config, batch_size, rank), daemon=True,
                                        name="rs-early-epoch")
        self._thread.start()

    def _open(self, config: dict[str, Any], batch_size: int, rank: int) -> None:
        try:
            self._batches = open_epoch(config, self.key, self.epoch, batch_size, rank, first_key=True)
            self._first = list(itertools.islice(self._batches, 1))
        except BaseException as err:  # handed to the training thread, which raises it where the epoch starts
            self._error = err

    def take(self, key: str, epoch: int) -> Iterator[Batch] | None:
        """The opened batches when (key, epoch) is what was opened early, else None (once: later calls get None)."""
        self._thread.join()
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if self._batches is None or (key, epoch) != (self.key, self.epoch):
            self.close()
            return None
        batches, first = self._batches, self._first
        self._batches, self._first = None, []
        return _chained(first, batches)

    def close(self) -> None:
        self._thread.join()
        if self._batches is not None and hasattr(self._batches, "close"):
            self._batches.close()  # tells the split coordinator this rank is done with the epoch
        self._batches, self._first = None, []


def _chained(first: list[Batch], rest: Iterator[Batch]) -> Iterator[Batch]:
    """`first`, then `rest`; closing it closes `rest` (Ray's iterator), wherever iteration stopped."""
    try:
        yield from first
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()
