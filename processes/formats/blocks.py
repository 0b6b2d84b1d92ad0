"""Computing a Dask array block by block, with a bounded number of blocks in flight.

Writers use :func:`iter_blocks` to receive computed blocks one at a time and write them where
they belong, so memory stays bounded by ``in_flight × block size`` — on the local threaded
scheduler and on a Dask distributed cluster alike (with a cluster the blocks are computed on its
workers and only the finished blocks travel to the writer). Progress goes to the
:class:`ProgressMeter` set in :data:`progress_meter` (a batch job sets one for its whole run).
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import dask
import dask.array as da
import numpy as np


class ProgressMeter:
    """One monotonic progress figure for a whole job that writes one or several outputs.

    Progress is blocks done over blocks planned across all outputs. A job announces how many outputs
    it will write (:meth:`expect_outputs`); each writer announces its blocks when it starts
    (:meth:`start_output`), and the outputs not started yet are planned like the last one started.
    The figure never goes back (a later output with more blocks than planned only slows it down)
    and stops at 99 % until the job has really finished. ``report`` receives percentages.
    """

    def __init__(self, report: Callable[[float], None]):
        self._report = report
        self._lock = threading.Lock()
        self._outputs_left = 1
        self._done = 0
        self._planned = 0
        self._shown = 0.0

    def expect_outputs(self, count: int) -> None:
        with self._lock:
            self._outputs_left = max(1, count)

    def start_output(self, blocks: int) -> None:
        with self._lock:
            # outputs are written one after the other: what is done belongs to the earlier ones
            self._planned = self._done + blocks * self._outputs_left
            self._outputs_left = max(1, self._outputs_left - 1)

    def block_done(self) -> None:
        with self._lock:
            self._done += 1
            figure = min(99.0, 100.0 * self._done / max(self._planned, self._done))
            if figure <= self._shown:
                return
            self._shown = figure
        self._report(figure)


progress_meter: contextvars.ContextVar[ProgressMeter | None] = contextvars.ContextVar("progress_meter", default=None)


def _distributed_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def iter_blocks(array: da.Array, in_flight: int | None = None) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
    """Yield ``(index, block)`` for every block of ``array``; ``index`` are the block's slices."""
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in array.chunks]
    positions = list(itertools.product(*[range(len(c)) for c in array.chunks]))
    total = len(positions)
    in_flight = in_flight or max(2, 2 * (os.cpu_count() or 2))
    meter = progress_meter.get()
    if meter is not None:
        meter.start_output(total)

    def where(pos: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(int(s[i]), int(s[i + 1])) for s, i in zip(starts, pos, strict=True))

    blocks = array.to_delayed().ravel()
    client = _distributed_client()
    if client is not None:
        from distributed import as_completed

        pending = iter(range(total))
        futures = {}
        for i in itertools.islice(pending, in_flight):
            futures[client.compute(blocks[i])] = i
        completed = as_completed(list(futures))
        for future in completed:
            i = futures.pop(future)
            yield where(positions[i]), future.result()
            future.release()
            if meter is not None:
                meter.block_done()
            nxt = next(pending, None)
            if nxt is not None:
                new = client.compute(blocks[nxt])
                futures[new] = nxt
                completed.add(new)
        return
    # Local: a pool of threads, each computing whole blocks with the synchronous scheduler; blocks
    # are handed out as threads free up, so the pool never idles waiting for a batch to finish.
    workers = max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers, thread_name_prefix="block") as pool:
        pending = iter(range(total))
        running = {pool.submit(_compute_sync, blocks[i]): i for i in itertools.islice(pending, in_flight)}
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i = running.pop(future)
                yield where(positions[i]), future.result()
                if meter is not None:
                    meter.block_done()
                nxt = next(pending, None)
                if nxt is not None:
                    running[pool.submit(_compute_sync, blocks[nxt])] = nxt


def _compute_sync(block) -> np.ndarray:
    return np.asarray(dask.compute(block, scheduler="synchronous")[0])
