"""Computing a Dask array block by block, with a bounded number of blocks in flight.

Writers use :func:`iter_blocks` to receive computed blocks one at a time and write them where
they belong, so memory stays bounded by ``in_flight × block size`` — on the local threaded
scheduler and on a Dask distributed cluster alike (with a cluster the blocks are computed on its
workers and only the finished blocks travel to the writer). Progress is reported to the callback
set in :data:`progress_callback` (the batch job runner sets it).
"""

from __future__ import annotations

import contextvars
import itertools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import dask
import dask.array as da
import numpy as np

progress_callback: contextvars.ContextVar[Callable[[float], None] | None] = contextvars.ContextVar(
    "progress_callback", default=None
)


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
    report = progress_callback.get()

    def where(pos: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(int(s[i]), int(s[i + 1])) for s, i in zip(starts, pos, strict=True))

    blocks = array.to_delayed().ravel()
    client = _distributed_client()
    done = 0
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
            done += 1
            if report:
                report(100.0 * done / total)
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
                done += 1
                if report:
                    report(100.0 * done / total)
                nxt = next(pending, None)
                if nxt is not None:
                    running[pool.submit(_compute_sync, blocks[nxt])] = nxt


def _compute_sync(block) -> np.ndarray:
    return np.asarray(dask.compute(block, scheduler="synchronous")[0])
