"""Pausing Python's cyclic garbage collector around allocation bursts.

Decoding a 3 MB process graph (10,000 inline parcels) and turning its GeoJSON into geometries create
hundreds of thousands of containers in a few tens of milliseconds. The collector starts a pass every
700 new containers and walks the older generations again and again while the burst lasts, although
nothing of what is created is garbage yet: ``json.loads`` of such a body takes 0.12–0.15 s with the
collector running and 0.04 s without. So the collector is paused while a request is decoded and its
graph evaluated (evaluation only builds the lazy computation; no pixel is computed there), and
resumes afterwards, when its normal thresholds collect whatever cycles the burst left.

The pause is process-wide (that is how ``gc`` works) and counted, so that overlapping pauses of
concurrent requests end when the last one ends. It sets the first threshold to 0 (no automatic
passes) rather than calling ``gc.disable()``: dask's slicing runs under a ``disable_gc`` decorator
that calls ``gc.enable()`` on every exit, whatever the state before, which would end the pause at
the first ``cube.sel``.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_thresholds: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Run the body without automatic garbage collection passes (reference counting still frees memory)."""
    global _pauses, _thresholds
    with _lock:
        if _pauses == 0:
            _thresholds = gc.get_threshold()
            gc.set_threshold(0, *_thresholds[1:])
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0:
                gc.set_threshold(*_thresholds)


def freeze_startup_objects() -> None:
    """Move everything alive now (imported modules, the app and its services) out of the collector's sight.

    A full collection walks every tracked object: about 190,000 once the app and the graph parser
    are imported, 0.09 s per pass, which lands in whatever request happens to trigger it. What
    exists at start-up lives as long as the process, so it is frozen (CPython's advice before a
    pre-forking server forks its workers, which also keeps those pages shared) and full passes
    walk only what requests create.
    """
    import openeo_pg_parser_networkx  # noqa: F401  (imported by the first graph anyway)

    gc.freeze()
