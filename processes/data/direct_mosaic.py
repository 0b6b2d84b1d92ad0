"""Reading a stack straight into same-day mosaics, when every asset lies on the cube's own grid.

The common case of ``load_collection`` — COGs in the collection's native CRS and resolution,
tiles of one grid (Sentinel-2 tiles of one UTM zone, the demo collection) — needs no warping. Then
one task per output block (one day, a group of bands, a spatial window) opens each of the day's
assets once (through the shared dataset pool of :mod:`processes.data.cog_reader`), reads exactly the
window it covers, and writes it into the block: the first item holding a valid value wins, as in
the same-day mosaic of :func:`processes.data.load.stack_collection`. Compared with stackstac's generic
fetch (one task per item and band, each a full-size window, then a mosaic), this reads the same
bytes with one copy instead of four and far fewer tasks.

:func:`direct_mosaic` decides from STAC metadata alone (``proj:transform``, ``proj:shape``,
``proj:epsg``; no file is opened) and answers None whenever any asset is not on the grid, is
remote, or lacks the metadata; the caller then keeps stackstac's stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from processes.data.cog_reader import acquire_dataset, is_local, release_dataset


@dataclass(frozen=True)
class _Asset:
    url: str
    row: int  # the asset's top-left pixel in the cube's grid
    col: int
    height: int
    width: int


def _field(item: Mapping[str, Any], asset: Mapping[str, Any], name: str) -> Any:
    return asset.get(name) if asset.get(name) is not None else item.get("properties", {}).get(name)


def _placed(item: Mapping[str, Any], key: str, epsg: int, origin: tuple[float, float],
            resolution: float) -> _Asset | None:
    asset = item.get("assets", {}).get(key)
    if not asset or not is_local(asset.get("href", "")):
        return None
    transform, shape = _field(item, asset, "proj:transform"), _field(item, asset, "proj:shape")
    if not transform or not shape or _field(item, asset, "proj:epsg") != epsg:
        return None
    a, b, c, d, e, f = (float(v) for v in transform[:6])
    if b != 0 or d != 0 or not np.isclose(a, resolution) or not np.isclose(e, -resolution):
        return None
    col, row = (c - origin[0]) / resolution, (origin[1] - f) / resolution
    if not (np.isclose(col, round(col)) and np.isclose(row, round(row))):
        return None
    return _Asset(asset["href"], int(round(row)), int(round(col)), int(shape[0]), int(shape[1]))


def direct_mosaic(stacked: xr.DataArray, items: Sequence[Mapping[str, Any]], assets: list[str],
                  epsg: int | None, resolution: float,
                  chunks: tuple[Any, Any, Any, Any]) -> xr.DataArray | None:
    """The same-day mosaic of ``stacked`` (stackstac's lazy stack, used for its labels and grid)."""
    # A CRS without EPSG code: no asset can be matched to the grid by its ``proj:epsg``.
    if epsg is None:
        return None
    if "id" not in stacked.coords or stacked.sizes["x"] == 0 or stacked.sizes["y"] == 0:
        return None
    x, y = stacked["x"].values, stacked["y"].values
    origin = (float(x[0]) - resolution / 2, float(y[0]) + resolution / 2)
    by_id = {item["id"]: item for item in items}
    ids = stacked["id"].values
    times = pd.DatetimeIndex(stacked["time"].values)
    days = times.normalize()
    table: list[list[list[_Asset | None]]] = []  # day → item → band
    labels = []
    for day in days.unique():
        positions = np.flatnonzero(days == day)
        labels.append(times[positions].min())
        row = []
        for position in positions:
            item = by_id.get(ids[position])
            if item is None:
                return None
            placed = [_placed(item, key, epsg, origin, resolution) for key in assets]
            if any(p is None and key in item.get("assets", {}) for p, key in zip(placed, assets, strict=True)):
                return None
            row.append(placed)
        table.append(row)

    band_chunks, y_chunks, x_chunks = da.core.normalize_chunks(
        chunks[1:], (len(assets), len(y), len(x)), dtype=np.float32)
    name = "direct-read-" + tokenize(table, origin, band_chunks, y_chunks, x_chunks)
    graph = {}
    b_edges, y_edges, x_edges = (np.cumsum((0,) + c) for c in (band_chunks, y_chunks, x_chunks))
    for t, day_items in enumerate(table):
        for bi in range(len(band_chunks)):
            for yi in range(len(y_chunks)):
                for xi in range(len(x_chunks)):
                    window = (int(y_edges[yi]), int(y_edges[yi + 1]), int(x_edges[xi]), int(x_edges[xi + 1]))
                    sources = [[item[b] for b in range(b_edges[bi], b_edges[bi + 1])] for item in day_items]
                    graph[(name, t, bi, yi, xi)] = (_read_block, sources, window)
    data = da.Array(graph, name, ((1,) * len(table), band_chunks, y_chunks, x_chunks), dtype=np.float32,
                    meta=np.empty((0, 0, 0, 0), dtype=np.float32))
    coords = {"time": pd.DatetimeIndex(labels), "band": stacked["band"].values, "y": stacked["y"], "x": stacked["x"]}
    mosaic = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, attrs=stacked.attrs,
                          name=stacked.name)
    return mosaic.drop_vars([c for c in mosaic.coords if c not in ("time", "band", "y", "x")])


def _read_block(sources: list[list[_Asset | None]], window: tuple[int, int, int, int]) -> np.ndarray:
    """One day's block: for each band, the items' windows in order, first valid value wins."""
    r0, r1, c0, c1 = window
    out = np.full((1, len(sources[0]) if sources else 0, r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    touched = np.zeros(out.shape[1], dtype=bool)
    for bands in sources:
        for b, asset in enumerate(bands):
            if asset is None:
                continue
            top, bottom = max(r0, asset.row), min(r1, asset.row + asset.height)
            left, right = max(c0, asset.col), min(c1, asset.col + asset.width)
            if top >= bottom or left >= right:
                continue
            values = _read(asset, top - asset.row, bottom - asset.row, left - asset.col, right - asset.col)
            target = out[0, b, top - r0:bottom - r0, left - c0:right - c0]
            if touched[b]:
                np.copyto(target, values, where=np.isnan(target))
            else:  # the first item of this band: the target is all no-data
                target[...] = values
                touched[b] = True
    return out


def _read(asset: _Asset, row0: int, row1: int, col0: int, col1: int) -> np.ndarray:
    from rasterio.windows import Window

    src = acquire_dataset(asset.url)
    try:
        raw = src.read(1, window=Window(col0, row0, col1 - col0, row1 - row0))
        nodata = src.nodata
    finally:
        release_dataset(asset.url, src)
    values = raw.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        values[raw == nodata] = np.nan
    return values
