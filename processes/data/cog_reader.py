"""Reading COG windows for stackstac: direct window reads when the grids line up.

stackstac's default reader wraps every asset in a GDAL ``WarpedVRT`` unless the requested grid is
the asset's whole grid — so reading a window of a COG on its own grid still goes through the
warper, which costs several times a plain read. :class:`AlignedReader` (stackstac's ``Reader``
protocol) checks once per asset whether the output grid is the asset's grid shifted by whole
pixels (same CRS and pixel size, or a whole multiple of it: a map's overview grid, read decimated
from the matching overview); then it reads the overlapping window directly and fills the rest
with the fill value. Anything else (other CRS, other resolution — e.g. 20 m bands on a 10 m
cube) and every remote asset is delegated to stackstac's reader, unchanged.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window
from stackstac.rio_reader import AutoParallelRioReader


class _DatasetPool:
    """Open datasets of local files, shared by all readers and threads, one user at a time each.

    stackstac makes new readers for every ``compute`` (the writers compute block by block), and the
    threads running Dask tasks change between requests, so datasets cached per reader or per thread
    would be reopened again and again — opening a COG costs more than reading one of its blocks.
    At most ``max_files`` files stay open; the least recently used idle ones are closed.
    """

    def __init__(self, max_files: int = 256):
        self._max_files = max_files
        self._idle: OrderedDict[str, list] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, url: str):
        with self._lock:
            idle = self._idle.get(url)
            if idle:
                self._idle.move_to_end(url)
                return idle.pop()
        return rasterio.open(url)

    def release(self, url: str, dataset) -> None:
        evicted = []
        with self._lock:
            self._idle.setdefault(url, []).append(dataset)
            self._idle.move_to_end(url)
            while len(self._idle) > self._max_files:
                _, datasets = self._idle.popitem(last=False)
                evicted.extend(datasets)
        for old in evicted:
            old.close()


_POOL = _DatasetPool()


def _is_local(url: str) -> bool:
    # Remote assets keep stackstac's reader: it opens them inside its GDAL environment (HTTP
    # settings, retries, no directory listing), which one dataset per thread here would bypass.
    return "://" not in url or url.startswith("file://")


class AlignedReader:
    """A thread-safe, lazily opened reader of one single-band asset (stackstac ``Reader`` protocol)."""

    def __init__(self, *, url: str, spec: Any, resampling: Any, dtype: np.dtype, fill_value: Any,
                 scale_offset: tuple[float, float], gdal_env: Any = None, errors_as_nodata: tuple = ()):
        self._args = dict(url=url, spec=spec, resampling=resampling, dtype=dtype, fill_value=fill_value,
                          scale_offset=scale_offset, gdal_env=gdal_env, errors_as_nodata=errors_as_nodata)
        self.url = url
        self.spec = spec
        self.dtype = np.dtype(dtype)
        self.fill_value = fill_value
        self.scale, self.offset = scale_offset
        self._fallback: AutoParallelRioReader | None = None
        self._shift: tuple[int, int] | None = None  # (row, col) of the output origin in the asset's grid
        self._factor = 1  # output pixels are factor × factor asset pixels (a map's overview grid)
        self._checked = False
        self._lock = threading.Lock()

    # --- the decision, once per asset ----------------------------------------------------------------
    def _plan(self) -> None:
        with self._lock:
            if self._checked:
                return
            aligned = None
            if _is_local(self.url):
                src = _POOL.acquire(self.url)
                try:
                    aligned = self._aligned(src)
                finally:
                    _POOL.release(self.url, src)
            if aligned is None:
                self._fallback = AutoParallelRioReader(**self._args)
            self._shift = aligned
            self._checked = True

    def _aligned(self, src) -> tuple[int, int] | None:
        if src.count != 1 or src.crs is None or src.crs.to_epsg() != self.spec.epsg:
            return None
        out = self.spec.transform
        mine = src.transform
        factor = out.a / mine.a if mine.a > 0 else 0.0
        if not (round(factor) >= 1 and np.isclose(factor, round(factor)) and np.isclose(out.e, factor * mine.e)
                and out.b == 0 and out.d == 0 and mine.b == 0 and mine.d == 0):
            return None
        self._factor = int(round(factor))
        col = (out.c - mine.c) / mine.a
        row = (out.f - mine.f) / mine.e
        if not (np.isclose(col, round(col)) and np.isclose(row, round(row))):
            return None
        return int(round(row)), int(round(col))

    def _acquire(self):
        return _POOL.acquire(self.url)

    def _release(self, dataset) -> None:
        _POOL.release(self.url, dataset)

    # --- the protocol ----------------------------------------------------------------------------------
    def read(self, window: Window, **kwargs) -> np.ndarray:
        self._plan()
        if self._fallback is not None:
            return self._fallback.read(window, **kwargs)
        src = self._acquire()
        try:
            return self._read(src, window)
        finally:
            self._release(src)

    def _read(self, src, window: Window) -> np.ndarray:
        # read() takes the fallback unless _plan found the grids aligned, and then it set the shift.
        assert self._shift is not None
        k = self._factor
        rows, cols = int(window.height), int(window.width)
        row0 = int(window.row_off) * k + self._shift[0]  # in the asset's pixels
        col0 = int(window.col_off) * k + self._shift[1]
        # the output pixels that lie wholly on the asset (all of them at factor 1)
        top, bottom = max(0, -(row0 // k)), min(rows, (src.height - row0) // k)  # -(a // k): ceil(-a / k)
        left, right = max(0, -(col0 // k)), min(cols, (src.width - col0) // k)
        if top >= bottom or left >= right:
            return np.full((rows, cols), self.fill_value, dtype=self.dtype)
        source = Window(col0 + left * k, row0 + top * k, (right - left) * k, (bottom - top) * k)
        if k == 1:
            values = src.read(1, window=source)
        else:  # nearest decimation: GDAL reads the overview of factor k, no full-resolution block
            values = src.read(1, window=source, out_shape=(bottom - top, right - left), resampling=Resampling.nearest)
        block = values.astype(self.dtype)  # the one copy: stored type → float
        if self.scale != 1:
            block *= self.scale
        if self.offset != 0:
            block += self.offset
        nodata = src.nodata
        if nodata is not None and not np.isnan(nodata):
            block[values == nodata] = self.fill_value
        if (top, bottom, left, right) == (0, rows, 0, cols):  # the window lies inside the asset
            return block
        out = np.full((rows, cols), self.fill_value, dtype=self.dtype)
        out[top:bottom, left:right] = block
        return out

    def close(self) -> None:
        if self._fallback is not None:
            self._fallback.close()

    def __getstate__(self) -> dict[str, Any]:
        return self._args

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, **state)


def acquire_dataset(url: str):
    """An open dataset of the local file ``url`` from the shared pool; give it back with :func:`release_dataset`."""
    return _POOL.acquire(url)


def release_dataset(url: str, dataset) -> None:
    _POOL.release(url, dataset)


def is_local(url: str) -> bool:
    return _is_local(url)
