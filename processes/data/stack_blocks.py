"""The Dask blocks of a stacked collection: their layout and the same-day mosaic inside each.

Blocks hold a whole day and a group of bands and are cut on the assets' 1024-pixel grid, so every
COG tile is decompressed once. Items of the same day (neighbouring tiles) become one mosaic, first
valid pixel wins, in one block-local task per day.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from processes.data.stac_items import Item, asset_field, item_datetime
from processes.model.geometry import (
    BoundingBox,
)

CHUNK_SIZE = 1024

def mosaic_same_day(stacked: xr.DataArray) -> xr.DataArray:
    """One time step per day: items of one day (neighbouring tiles) are mosaicked, first valid wins."""
    times = pd.DatetimeIndex(stacked["time"].values)
    days = times.normalize()
    if not days.has_duplicates:
        return stacked.drop_vars([c for c in stacked.coords if c not in ("time", "band", "y", "x")])
    per_block = _mosaic_per_block(stacked, times, days)
    if per_block is not None:
        return per_block
    labels = []
    layers = []
    for day in days.unique():
        positions = np.flatnonzero(days == day)
        contiguous = positions[-1] - positions[0] == len(positions) - 1
        # a slice keeps whole chunks; an index array would copy every block through ``take``
        group = stacked.isel(time=slice(positions[0], positions[-1] + 1) if contiguous else positions)
        labels.append(times[positions].min())
        layers.append(_first_valid(group))
    mosaic = xr.concat(layers, dim="time", coords="minimal", compat="override", join="override")
    mosaic = mosaic.assign_coords(time=pd.DatetimeIndex(labels))
    return mosaic.drop_vars([c for c in mosaic.coords if c not in ("time", "band", "y", "x")])


CHUNK_SIZE = 1024
MAX_ASSETS_PER_CHUNK = 8
"""Most assets (items × bands) one Dask block reads: 8 × 1024² float32 values are 32 MB."""


def spatial_chunks(items: list[Item], assets: list[str], resolution: float,
                    bounds: tuple[float, float, float, float] | None) -> tuple[Any, Any]:
    """Chunks along y and x whose edges fall on multiples of CHUNK_SIZE pixels of an asset's grid.

    COGs are stored in internal tiles (typically 256 or 512 px) counted from the asset's origin.
    Blocks cut at the same places read whole tiles; blocks offset from them decompress the tiles
    along their edges twice (once for each neighbouring block) — up to twice the work.
    """
    if bounds is None:
        return CHUNK_SIZE, CHUNK_SIZE
    origin = None
    for item in items:
        transform = asset_field(item, assets[0], "proj:transform")
        if transform and np.isclose(abs(float(transform[0])), resolution):
            origin = float(transform[2]), float(transform[5])
            break
    if origin is None:
        return CHUNK_SIZE, CHUNK_SIZE
    west, south, east, north = bounds
    width, height = round((east - west) / resolution), round((north - south) / resolution)

    def split(offset: float, length: int) -> tuple[int, ...]:
        first = (CHUNK_SIZE - round(offset / resolution) % CHUNK_SIZE) or CHUNK_SIZE
        if first >= length:
            return (length,)
        rest = length - first
        return (first,) + (CHUNK_SIZE,) * (rest // CHUNK_SIZE) + ((rest % CHUNK_SIZE,) if rest % CHUNK_SIZE else ())

    return split(origin[1] - north, height), split(west - origin[0], width)


def block_chunks(items: list[Item], n_assets: int, spatial: tuple[Any, Any] = (CHUNK_SIZE, CHUNK_SIZE),
                 *, temporal: bool = True) -> tuple[Any, ...]:
    """Dask chunks (time, band, y, x) of the stack: one block reads a whole day's items and bands.

    Items of one day (neighbouring tiles) are mosaicked together, so reading them in the same block
    makes the mosaic a cheap block-local operation; reading several bands per block divides the
    number of tasks (and their overhead) further. Blocks stay under :data:`MAX_ASSETS_PER_CHUNK`.
    Without ``temporal`` (a collection without time dimension) all items are one mosaic, as one day.
    """
    stamps = [item_datetime(item) for item in items] if temporal else []
    if not temporal:
        sizes = [len(items)]
    elif any(stamp is None for stamp in stamps):
        return (1, 1, *spatial)
    else:  # items per UTC day, in date order (plain Python: pandas costs more than a map tile's read)
        days = sorted(d.astimezone(dt.UTC).date() for d in stamps if d is not None)
        sizes = [len(list(group)) for _, group in itertools.groupby(days)]
    per_day = min(max(sizes), MAX_ASSETS_PER_CHUNK)
    time_chunks = [min(per_day, size - start) for size in sizes for start in range(0, size, per_day)]
    band_chunk = max(1, min(n_assets, MAX_ASSETS_PER_CHUNK // per_day))
    return (tuple(time_chunks), band_chunk, *spatial)


def _mosaic_per_block(stacked: xr.DataArray, times: pd.DatetimeIndex, days: pd.DatetimeIndex) -> xr.DataArray | None:
    """The same-day mosaic as one block-local operation, when every time block holds exactly one day.

    That is how :func:`chunks` cuts the stack; each block of k items becomes one time step (first
    valid value wins, in place), with no per-day slicing, ``where`` and concatenation tasks.
    """
    if not isinstance(stacked.data, da.Array):
        return None
    edges = np.cumsum((0,) + stacked.data.chunks[0])
    starts, ends = edges[:-1], edges[1:]
    day_starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    if len(day_starts) != len(starts) or not np.array_equal(day_starts, starts):
        return None
    # da.map_blocks, not the method: functools.wraps gives Array.map_blocks the function's signature,
    # so mypy takes the array for ``func`` (the method only calls this very function).
    data = da.map_blocks(
        _first_valid_block, stacked.data, chunks=((1,) * len(starts),) + stacked.data.chunks[1:],
        dtype=stacked.dtype,
    )
    labels = pd.DatetimeIndex([times[a:b].min() for a, b in zip(starts, ends, strict=True)])
    coords = {"time": labels, "band": stacked["band"].values, "y": stacked["y"], "x": stacked["x"]}
    mosaic = xr.DataArray(data, dims=stacked.dims, coords=coords, attrs=stacked.attrs, name=stacked.name)
    return mosaic.drop_vars([c for c in mosaic.coords if c not in ("time", "band", "y", "x")])


def _first_valid_block(block: np.ndarray) -> np.ndarray:
    out = np.array(block[0], copy=True)
    for layer in block[1:]:
        np.copyto(out, layer, where=np.isnan(out))
    return out[np.newaxis]


def _first_valid(group: xr.DataArray) -> xr.DataArray:
    """Mosaic along ``time``: the first item's valid pixels win (one ``where`` per further item)."""
    result = group.isel(time=0)
    for i in range(1, group.sizes["time"]):
        result = result.fillna(group.isel(time=i))
    return result


def pixel_edges(box: BoundingBox, resolution: float,
                anchor: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float, float, float]:
    """Edges of the pixels (of a grid aligned to ``anchor`` + multiples of ``resolution``) whose centres lie
    in ``box``.

    Stacking exactly these keeps Dask chunks aligned with the window; the cut by pixel centre that
    follows is then a no-op instead of splitting chunks into slivers. A coarser-than-native grid (a
    map's overview read) is anchored on an asset's corner, so its pixels are whole blocks of the
    asset's pixels, as the overview's are.
    """
    ax, ay = anchor
    half = resolution / 2
    west = np.ceil((box.west - ax - half) / resolution) * resolution + ax
    east = np.floor((box.east - ax - half) / resolution) * resolution + resolution + ax
    south = np.ceil((box.south - ay - half) / resolution) * resolution + ay
    north = np.floor((box.north - ay - half) / resolution) * resolution + resolution + ay
    if east <= west or north <= south:  # smaller than a pixel: stack the pixel around its centre
        return (float(west - resolution), float(south - resolution), float(west), float(south))
    return (float(west), float(south), float(east), float(north))
