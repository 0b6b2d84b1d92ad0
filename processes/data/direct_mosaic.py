"""Reading a stack straight into same-day mosaics, when every asset lies on the cube's own grid.

The common case of ``load_collection`` — COGs in the collection's native CRS and resolution,
tiles of one grid (Sentinel-2 tiles of one UTM zone, the demo collection) — needs no warping. So
does a map's coarser grid (:func:`processes.data.plan.view_grid_resolution`): its pixels are
whole blocks of k × k asset pixels, read decimated from the COG overview of factor k. Then
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

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from processes.data.cog_reader import acquire_dataset, is_local, release_dataset


@dataclass(frozen=True)
class _Asset:
    url: str
    row: int  # the asset's top-left pixel, counted in the asset's pixels from the cube's corner
    col: int
    height: int
    width: int
    factor: int = 1  # cube pixels are factor × factor asset pixels (a map's overview grid)


def _near(a: float, b: float) -> bool:
    """``np.isclose`` for two numbers, without numpy's per-call cost (tens of thousands of calls a load)."""
    return abs(a - b) <= 1e-8 + 1e-5 * abs(b)


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
    factor = resolution / a if a > 0 else 0.0
    if b != 0 or d != 0 or not _near(e, -a) or round(factor) < 1 or not _near(factor, round(factor)):
        return None
    col, row = (c - origin[0]) / a, (origin[1] - f) / a
    if not (_near(col, round(col)) and _near(row, round(row))):
        return None
    return _Asset(asset["href"], int(round(row)), int(round(col)), int(shape[0]), int(shape[1]), int(round(factor)))


def direct_stack(items: Sequence[Mapping[str, Any]], assets: list[str], epsg: int | None, resolution: float,
                 bounds: tuple[float, float, float, float], chunks: tuple[Any, Any, Any, Any]) -> xr.DataArray | None:
    """The same-day mosaic of ``items`` on the grid of ``bounds`` (pixel edges) and ``resolution``, without
    stackstac: the labels stackstac would give (pixel-centre x/y, items sorted by time), built here from
    the STAC metadata — for a map tile, building stackstac's per-item arrays costs more than the read."""
    west, south, east, north = bounds
    width, height = round((east - west) / resolution), round((north - south) / resolution)
    if width <= 0 or height <= 0:
        return None
    try:
        # STAC date-times are RFC 3339: parsed as ISO 8601 without guessing a format per call
        times = pd.to_datetime([item["properties"]["datetime"] for item in items], utc=True,
                               format="ISO8601").tz_localize(None)
    except (KeyError, TypeError, ValueError):
        return None
    order = np.argsort(times.values, kind="stable")
    x = west + resolution * (np.arange(width) + 0.5)
    y = north - resolution * (np.arange(height) + 0.5)
    return _mosaic([items[i] for i in order], pd.DatetimeIndex(times[order]), assets, epsg, resolution, chunks,
                   x, y, {"band": np.asarray(assets)})


def direct_mosaic(stacked: xr.DataArray, items: Sequence[Mapping[str, Any]], assets: list[str],
                  epsg: int | None, resolution: float,
                  chunks: tuple[Any, Any, Any, Any]) -> xr.DataArray | None:
    """The same-day mosaic of ``stacked`` (stackstac's lazy stack, used for its labels and grid)."""
    if "id" not in stacked.coords or stacked.sizes["x"] == 0 or stacked.sizes["y"] == 0:
        return None
    by_id = {item["id"]: item for item in items}
    ordered = [by_id.get(i) for i in stacked["id"].values]
    if any(item is None for item in ordered):
        return None
    mosaic = _mosaic(ordered, pd.DatetimeIndex(stacked["time"].values), assets, epsg, resolution, chunks,
                     stacked["x"].values, stacked["y"].values, {"band": stacked["band"].values})
    if mosaic is not None:
        mosaic.attrs.update(stacked.attrs)
        mosaic.name = stacked.name
    return mosaic


def _mosaic(items: Sequence[Mapping[str, Any] | None], times: pd.DatetimeIndex, assets: list[str], epsg: int | None,
            resolution: float, chunks: tuple[Any, Any, Any, Any], x: np.ndarray, y: np.ndarray,
            band: dict[str, Any]) -> xr.DataArray | None:
    """The lazy (time, band, y, x) mosaic of ``items`` (in time order) on the grid of pixel centres ``x``/``y``;
    None when an asset is not on the grid (then stackstac's generic stack reads it)."""
    # A CRS without EPSG code: no asset can be matched to the grid by its ``proj:epsg``.
    if epsg is None:
        return None
    origin = (float(x[0]) - resolution / 2, float(y[0]) + resolution / 2)
    days = times.normalize()
    table: list[list[list[_Asset | None]]] = []  # day → item → band
    labels = []
    for day in days.unique():
        positions = np.flatnonzero(days == day)
        labels.append(times[positions].min())
        row = []
        for position in positions:
            item = items[int(position)]
            assert item is not None
            placed = [_placed(item, key, epsg, origin, resolution) for key in assets]
            if any(p is None and key in item.get("assets", {}) for p, key in zip(placed, assets, strict=True)):
                return None
            row.append(placed)
        table.append(row)

    band_chunks, y_chunks, x_chunks = da.core.normalize_chunks(
        chunks[1:], (len(assets), len(y), len(x)), dtype=np.float32)
    # a digest of the plain description: tokenize() would pickle every placement (a year of items: seconds)
    description = repr(([[[None if a is None else tuple(vars(a).values()) for a in bands] for bands in day]
                         for day in table], origin, band_chunks, y_chunks, x_chunks))
    name = "direct-read-" + hashlib.sha1(description.encode()).hexdigest()[:32]  # as long as a dask token
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
    coords = {"time": pd.DatetimeIndex(labels), **band, "y": y, "x": x}
    return xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords)


def _read_block(sources: list[list[_Asset | None]], window: tuple[int, int, int, int]) -> np.ndarray:
    """One day's block: for each band, the items' windows in order, first valid value wins."""
    r0, r1, c0, c1 = window
    out = np.full((1, len(sources[0]) if sources else 0, r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    touched = np.zeros(out.shape[1], dtype=bool)
    for bands in sources:
        for b, asset in enumerate(bands):
            if asset is None:
                continue
            k = asset.factor
            # the cube pixels that lie wholly on the asset (all of them at factor 1)
            top, bottom = max(r0, -(-asset.row // k)), min(r1, (asset.row + asset.height) // k)
            left, right = max(c0, -(-asset.col // k)), min(c1, (asset.col + asset.width) // k)
            if top >= bottom or left >= right:
                continue
            values = _read(asset, top * k - asset.row, bottom * k - asset.row, left * k - asset.col,
                           right * k - asset.col, (bottom - top, right - left))
            target = out[0, b, top - r0:bottom - r0, left - c0:right - c0]
            if touched[b]:
                np.copyto(target, values, where=np.isnan(target))
            else:  # the first item of this band: the target is all no-data
                target[...] = values
                touched[b] = True
    return out


def _read(asset: _Asset, row0: int, row1: int, col0: int, col1: int, shape: tuple[int, int]) -> np.ndarray:
    """The asset's pixels ``[row0, row1) × [col0, col1)`` as ``shape``: exactly (factor 1), or decimated by
    nearest neighbour, which GDAL serves from the overview level of that factor without touching the
    full-resolution blocks."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    src = acquire_dataset(asset.url)
    try:
        window = Window(col0, row0, col1 - col0, row1 - row0)
        if asset.factor == 1:
            raw = src.read(1, window=window)
        else:
            raw = src.read(1, window=window, out_shape=shape, resampling=Resampling.nearest)
        nodata = src.nodata
    finally:
        release_dataset(asset.url, src)
    values = raw.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        values[raw == nodata] = np.nan
    return values
