"""GTiff: raster cubes as Cloud-Optimized GeoTIFF.

Strategy: the cube is flattened to layers × y × x (one layer per band, or per (date, band) when a
time dimension with several dates is left) and stored chunk by chunk with ``dask.array.store`` into
an intermediate tiled GeoTIFF — Dask computes chunks in parallel and each is written as it arrives,
so memory is bounded by the chunk size, not the raster size. Per-layer statistics are accumulated
on the way. GDAL's COG driver then copies it into the final file with compression and overviews.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from processes.cube import band_dim, dimension_type, is_raster_cube, spatial_dims, time_dim
from processes.errors import FormatArgumentInvalid

from . import OutputFormat
from .blocks import iter_blocks

PARAMETERS = {
    "compression": {
        "type": "string",
        "description": "Compression of the tiles.",
        "enum": ["deflate", "lzw", "zstd", "none"],
        "default": "deflate",
    },
    "overviews": {"type": "boolean", "description": "Add overviews (reduced resolutions).", "default": True},
    "tile_size": {"type": "integer", "description": "Internal tile size in pixels (power of two).",
                  "default": 256},
    "overview_resampling": {
        "type": ["string", "null"],
        "description": "Resampling for overviews; default: average for float data, nearest for integers.",
        "enum": ["nearest", "average", "bilinear", "cubic", "mode", None],
        "default": None,
    },
}


def _accepts(value: Any) -> str | None:
    if not is_raster_cube(value) or spatial_dims(value) is None:
        return "GTiff holds raster data cubes with spatial dimensions x and y; reduce or convert the data first."
    y, x = spatial_dims(value)
    extra = [d for d in value.dims if d not in (y, x, band_dim(value), time_dim(value))]
    if extra:
        return (
            f"GTiff can't hold the dimension(s) {', '.join(f'{d} ({dimension_type(value, d)})' for d in extra)}; "
            "reduce them (reduce_dimension) or use netCDF."
        )
    if value.sizes[x] == 0 or value.sizes[y] == 0:
        return "the data cube is empty (no pixels)."
    return None


def _iso(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _layers(cube: xr.DataArray) -> tuple[xr.DataArray, list[str], list[dict[str, str]], dict[str, str]]:
    """Cube as (layer, y, x), with a description and tags per layer and dataset tags."""
    y, x = spatial_dims(cube)
    t, b = time_dim(cube), band_dim(cube)
    dataset_tags: dict[str, str] = {}
    if t is not None and cube.sizes[t] == 1:
        dataset_tags["datetime"] = _iso(pd.Timestamp(cube[t].values[0]))
        cube = cube.isel({t: 0}, drop=True)
        t = None
    bands = [str(label) for label in cube[b].values] if b else [str(cube.name or "band_1")]
    if b is None:
        cube = cube.expand_dims("__bands__")
        b = "__bands__"
    if t is None:
        stacked = cube.transpose(b, y, x)
        return stacked, bands, [{"band": band} for band in bands], dataset_tags
    dates = pd.DatetimeIndex(cube[t].values)
    all_midnight = bool((dates == dates.normalize()).all())
    descriptions, tags = [], []
    for date in dates:
        label = date.strftime("%Y-%m-%d") if all_midnight else _iso(date)
        for band in bands:
            descriptions.append(f"{band}_{label}")
            tags.append({"band": band, "datetime": _iso(date)})
    ordered = cube.transpose(t, b, y, x)
    data = ordered.data if isinstance(ordered.data, da.Array) else da.from_array(ordered.data)
    flat = data.reshape((-1, ordered.sizes[y], ordered.sizes[x]), merge_chunks=False)
    return xr.DataArray(flat, dims=("layer", y, x), coords={y: cube[y], x: cube[x]}), descriptions, tags, dataset_tags


def _dtype(dtype: np.dtype) -> np.dtype:
    if dtype.kind == "b":
        return np.dtype("uint8")
    if dtype == np.float16:
        return np.dtype("float32")
    if dtype.kind not in "uif":
        raise FormatArgumentInvalid(f"GTiff can't store values of type {dtype}.")
    return dtype


def _transform(cube: xr.DataArray, y: str, x: str) -> Affine:
    xs, ys = cube[x].values.astype(float), cube[y].values.astype(float)
    try:
        res_x, res_y = cube.rio.resolution()
    except Exception:  # one pixel wide: rioxarray can't infer it from coordinates
        res_x, res_y = 1.0, -1.0
    if len(xs) > 1:
        res_x = float(xs[1] - xs[0])
    if len(ys) > 1:
        res_y = float(ys[1] - ys[0])
    return Affine.translation(xs[0] - res_x / 2, ys[0] - res_y / 2) @ Affine.scale(res_x, res_y)


class _WindowWriter:
    """Writes computed blocks as windows and keeps running per-layer statistics."""

    def __init__(self, dataset, n_layers: int, nodata: float | None):
        self._dataset = dataset
        self._pixels = dataset.width * dataset.height
        self._lock = threading.Lock()
        self._nodata = nodata
        self.count = np.zeros(n_layers)
        self.total = np.zeros(n_layers)
        self.squares = np.zeros(n_layers)
        self.minimum = np.full(n_layers, np.inf)
        self.maximum = np.full(n_layers, -np.inf)

    def __setitem__(self, key: tuple[slice, slice, slice], block: np.ndarray) -> None:
        layers, rows, cols = key
        first = layers.start or 0
        window = Window(cols.start or 0, rows.start or 0, block.shape[2], block.shape[1])
        values = block.astype("float64")
        valid = np.isfinite(values)
        if self._nodata is not None and not np.isnan(self._nodata):
            valid &= values != self._nodata
        with self._lock:
            self._dataset.write(block, indexes=list(range(first + 1, first + 1 + block.shape[0])), window=window)
            for i in range(block.shape[0]):
                v = values[i][valid[i]]
                if v.size:
                    n = first + i
                    self.count[n] += v.size
                    self.total[n] += v.sum()
                    self.squares[n] += np.square(v).sum()
                    self.minimum[n] = min(self.minimum[n], v.min())
                    self.maximum[n] = max(self.maximum[n], v.max())

    def statistics(self, layer: int) -> dict[str, str]:
        n = self.count[layer]
        if n == 0:
            return {}
        mean = self.total[layer] / n
        std = float(np.sqrt(max(self.squares[layer] / n - mean * mean, 0.0)))
        return {
            "STATISTICS_MINIMUM": repr(float(self.minimum[layer])),
            "STATISTICS_MAXIMUM": repr(float(self.maximum[layer])),
            "STATISTICS_MEAN": repr(float(mean)),
            "STATISTICS_STDDEV": repr(std),
            "STATISTICS_VALID_PERCENT": repr(float(100.0 * n / self._pixels)),
        }


def write_gtiff(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    y, x = spatial_dims(cube)
    layers, descriptions, tags, dataset_tags = _layers(cube)
    dtype = _dtype(np.dtype(layers.dtype))
    data = layers.data if isinstance(layers.data, da.Array) else da.from_array(layers.data)
    if len(layers[y]) > 1 and layers[y].values[1] > layers[y].values[0]:  # north-up: first row is the top
        layers = layers.isel({y: slice(None, None, -1)})
        data = layers.data if isinstance(layers.data, da.Array) else da.from_array(layers.data)
    data = data.astype(dtype)
    tile = int(options.get("tile_size") or 256)
    if tile < 16 or tile & (tile - 1):
        raise FormatArgumentInvalid(f"tile_size must be a power of two ≥ 16, got {tile}.")
    nodata: float | None = float("nan") if dtype.kind == "f" else cube.rio.nodata
    crs = cube.rio.crs
    intermediate = target.with_name(target.name + ".part.tif")
    profile = {
        "driver": "GTiff",
        "width": layers.sizes[x],
        "height": layers.sizes[y],
        "count": layers.shape[0],
        "dtype": dtype.name,
        "crs": crs,
        "transform": _transform(layers, y, x),
        "nodata": nodata,
        "tiled": True,
        "blockxsize": tile,
        "blockysize": tile,
        "BIGTIFF": "IF_SAFER",
        "INTERLEAVE": "BAND",
    }
    try:
        with rasterio.open(intermediate, "w", **profile) as dst:
            writer = _WindowWriter(dst, layers.shape[0], nodata)
            for index, block in iter_blocks(data):
                writer[index] = block
            dst.update_tags(**dataset_tags)
            for i, (description, layer_tags) in enumerate(zip(descriptions, tags, strict=True)):
                dst.set_band_description(i + 1, description)
                dst.update_tags(i + 1, **layer_tags, **writer.statistics(i))
        compression = (options.get("compression") or "deflate").upper()
        resampling = options.get("overview_resampling") or ("average" if dtype.kind == "f" else "nearest")
        cog_options = {
            "COMPRESS": "NONE" if compression == "NONE" else compression,
            "BLOCKSIZE": str(tile),
            "OVERVIEWS": "AUTO" if options.get("overviews", True) else "NONE",
            "OVERVIEW_RESAMPLING": resampling.upper(),
            "BIGTIFF": "IF_SAFER",
        }
        if compression in ("DEFLATE", "LZW", "ZSTD"):
            cog_options["PREDICTOR"] = "YES"
        rasterio.shutil.copy(intermediate, target, driver="COG", **cog_options)
    finally:
        intermediate.unlink(missing_ok=True)


FORMAT = OutputFormat(
    name="GTiff",
    title="GeoTIFF",
    description=(
        "Cloud-Optimized GeoTIFF: one band per band label (named after it). A cube with several dates "
        "gives one band per (date, band), described '<band>_<YYYY-MM-DD>' and tagged with band and datetime."
    ),
    gis_data_types=("raster",),
    media_type="image/tiff; application=geotiff; profile=cloud-optimized",
    extension="tif",
    writer=write_gtiff,
    accepts=_accepts,
    parameters=PARAMETERS,
)
