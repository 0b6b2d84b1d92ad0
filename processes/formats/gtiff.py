"""GTiff: raster cubes as Cloud-Optimized GeoTIFF.

Strategy: the cube is flattened to layers × y × x — one layer per band, or per (date, band),
date-major, when a time dimension with several dates is left — and computed window by window
(the Dask chunks of y/x, each for a group of layers, normally all of them, so work shared between
bands such as a cloud mask is done once per window). Each window is written into an intermediate
tiled GeoTIFF next to the target as soon as it arrives, so memory is bounded by the chunk size, not
the raster size, and per-layer statistics are accumulated on the way. GDAL's COG driver then copies
the intermediate into the final file with compression and overviews, and the intermediate is
deleted.

Data types stay as they are where GDAL has them; bool becomes uint8, float16 float32, and 64-bit
integers 32-bit ones when the values (known from the statistics pass) fit.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import rasterio.errors
import rasterio.shutil
import xarray as xr
from affine import Affine
from rasterio.windows import Window

from processes.core.errors import Internal
from processes.formats.blocks import iter_blocks
from processes.formats.cube_json import iso_datetime
from processes.formats.output_format import OutputFormat, cube_name, empty_cube, unsuitable
from processes.model.raster_cube import (
    band_dim,
    band_metadata,
    describe_dimensions,
    is_raster_cube,
    spatial_dims,
    time_dim,
)

NAME = "GTiff"
TILE_SIZES = [64, 128, 256, 512, 1024, 2048, 4096]
RESAMPLINGS = ["nearest", "average", "bilinear", "cubic", "cubicspline", "lanczos", "mode", "rms"]
PARAMETERS: dict[str, dict[str, Any]] = {
    "compression": {
        "type": "string",
        "description": "Compression of the tiles (lossless).",
        "enum": ["deflate", "lzw", "zstd", "none"],
        "default": "deflate",
    },
    "overviews": {
        "type": "boolean",
        "description": "Add overviews (reduced resolutions, halving until the image fits one tile).",
        "default": True,
    },
    "tile_size": {
        "type": "integer",
        "description": "Width and height of the internal tiles in pixels.",
        "enum": TILE_SIZES,
        "default": 256,
    },
    "overview_resampling": {
        "type": ["string", "null"],
        "description": "Resampling method of the overviews; by default `average` for floating-point data and "
        "`nearest` for integers.",
        "enum": [*RESAMPLINGS, None],
        "default": None,
    },
}

# Upper bound of one computed window (all its layers); Dask's own default chunk size is 128 MiB.
WINDOW_BYTES = 64 * 2**20
# Types GDAL's GeoTIFF driver stores as they are.
_NATIVE = {np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64",
                                  "int64", "uint64")}


def _storage_dtype(dtype: np.dtype) -> np.dtype | None:
    """The type the values are written in (None: GeoTIFF can't hold them)."""
    if dtype.kind == "b":
        return np.dtype("uint8")
    if dtype == np.float16:
        return np.dtype("float32")
    return dtype if dtype in _NATIVE else None


def _accepts(value: Any) -> str | None:
    spatial = spatial_dims(value) if is_raster_cube(value) else None
    if spatial is None:
        what = f"a data cube with dimensions {describe_dimensions(value)}" if is_raster_cube(value) else (
            f"a {type(value).__name__}")
        return (f"GTiff needs a raster data cube with spatial dimensions x and y, and this result is {what}. "
                "Use JSON for other values, or netCDF/GeoJSON/CSV for vector cubes.")
    y, x = spatial
    extra = [d for d in value.dims if d not in (y, x, band_dim(value), time_dim(value))]
    if extra:
        return (f"a GeoTIFF holds bands over y and x, but the data cube also has the dimension(s) "
                f"{', '.join(f'{d}' for d in extra)} ({describe_dimensions(value)}); reduce them "
                "(reduce_dimension), drop them (drop_dimension) or use netCDF.")
    if value.size == 0:
        raise empty_cube(NAME)
    if _storage_dtype(value.dtype) is None:
        return (f"GeoTIFF can't store values of type {value.dtype}; only numbers and booleans. "
                "Use JSON or netCDF, or compute numbers first.")
    _grid(value, y, x)  # raises on grids that GeoTIFF can't describe
    return None


# --- georeferencing --------------------------------------------------------------------------------


def _steps(cube: xr.DataArray, y: str, x: str) -> tuple[float, float]:
    """Signed pixel steps ``(dx, dy)`` along the cube's coordinate order."""
    steps: dict[str, float] = {}
    for dim in (x, y):
        coords = np.asarray(cube[dim].values, dtype="float64")
        if len(coords) < 2:
            continue
        step = (coords[-1] - coords[0]) / (len(coords) - 1)
        if step == 0 or not np.allclose(np.diff(coords), step, rtol=0, atol=abs(step) * 1e-3):
            raise unsuitable(NAME, f"the {dim} coordinates are not evenly spaced, and a GeoTIFF needs a regular "
                                   "grid; resample the cube onto one first (resample_spatial).")
        steps[dim] = float(step)
    if len(steps) < 2:
        # one pixel wide or high: the size comes from the transform rioxarray keeps, or the other axis
        try:
            known_dx, known_dy = cube.rio.resolution()
            steps.setdefault(x, float(known_dx))
            steps.setdefault(y, float(known_dy))
        except Exception:  # rioxarray raises several types when the cube carries no transform
            if not steps:
                raise unsuitable(NAME, "the data cube is a single pixel whose size is unknown (it carries no "
                                       "transform), so it can't be georeferenced.") from None
            size = abs(next(iter(steps.values())))
            steps.setdefault(x, size)
            steps.setdefault(y, -size)
    return steps[x], steps[y]


def _grid(cube: xr.DataArray, y: str, x: str) -> tuple[Affine, bool, bool]:
    """Transform of the north-up raster, and whether the cube's y resp. x order must be reversed for it."""
    dx, dy = _steps(cube, y, x)
    flip_y, flip_x = dy > 0, dx < 0
    xs, ys = cube[x].values, cube[y].values
    left = float(xs[-1] if flip_x else xs[0]) - abs(dx) / 2
    top = float(ys[-1] if flip_y else ys[0]) + abs(dy) / 2
    return Affine(abs(dx), 0.0, left, 0.0, -abs(dy), top), flip_y, flip_x


# --- layers ------------------------------------------------------------------------------------------


def _time_labels(labels: np.ndarray) -> tuple[list[str], list[dict[str, str]]]:
    """Per time label: its text in band descriptions, and its tags.

    Dates are ``YYYY-MM-DD`` when all labels are midnights, else full ISO 8601 (so descriptions stay
    distinct), and tagged ``datetime``; other labels (periods such as ``2023-djf``) as they are,
    tagged ``period``.
    """
    if labels.dtype.kind != "M":
        return [str(v) for v in labels], [{"period": str(v)} for v in labels]
    dates = pd.DatetimeIndex(labels)
    # str(): a NaT label has no ISO text (None), and is written "None", as rasterio writes a None tag
    texts = [str(iso_datetime(d)) for d in dates]
    tags = [{"datetime": text} for text in texts]
    if (dates == dates.normalize()).all():
        return [d.strftime("%Y-%m-%d") for d in dates], tags
    return texts, tags


def _layers(cube: xr.DataArray, y: str, x: str) -> tuple[xr.DataArray, list[str], list[dict], dict[str, str]]:
    """The cube as (layer, y, x), with a description and tags per layer, and the dataset tags."""
    t, b = time_dim(cube), band_dim(cube)
    dataset_tags: dict[str, str] = {}
    if t is not None and cube.sizes[t] == 1:
        dataset_tags.update(_time_labels(cube[t].values)[1][0])
        cube = cube.isel({t: 0}, drop=True)
        t = None
    metadata = band_metadata(cube)
    if b is None:
        bands = [cube_name(cube)]
        b = "__band__"
        cube = cube.expand_dims(b)
    else:
        bands = [str(label) for label in cube[b].values]
    band_tags = [{"band": band, **{k: str(v) for k, v in metadata.get(band, {}).items()}} for band in bands]
    if t is None:
        return cube.transpose(b, y, x), bands, band_tags, dataset_tags
    descriptions, tags = [], []
    for label, time_tags in zip(*_time_labels(cube[t].values), strict=True):
        for band, per_band in zip(bands, band_tags, strict=True):
            descriptions.append(f"{band}_{label}")
            tags.append({**per_band, **time_tags})
    ordered = cube.transpose(t, b, y, x)
    flat = _dask(ordered.data).reshape((-1, ordered.sizes[y], ordered.sizes[x]), merge_chunks=False)
    return xr.DataArray(flat, dims=("layer", y, x)), descriptions, tags, dataset_tags


def _dask(data: Any) -> da.Array:
    if isinstance(data, da.Array):
        return data
    data = np.asarray(data)
    return da.from_array(data, chunks=(1,) * (data.ndim - 2) + (1024, 1024))


def _window_blocks(data: da.Array) -> da.Array:
    """``data`` (layer, y, x) rechunked so one block is a y/x chunk for a group of layers.

    The group is all layers unless that exceeds :data:`WINDOW_BYTES`, or would leave fewer blocks
    than CPUs (a small raster of many layers is then still computed in parallel).
    """
    n_layers = data.shape[0]
    window_bytes = max(data.chunks[1]) * max(data.chunks[2]) * data.dtype.itemsize
    n_windows = len(data.chunks[1]) * len(data.chunks[2])
    by_memory = WINDOW_BYTES // max(window_bytes, 1)
    by_parallelism = n_layers * n_windows // (os.cpu_count() or 1)
    group = int(max(1, min(n_layers, by_memory, by_parallelism)))
    return data.rechunk({0: group})


# --- nodata and statistics ---------------------------------------------------------------------------


def _nodata(cube: xr.DataArray, dtype: np.dtype) -> float | int | None:
    """NaN for floats; for integers the cube's declared fill value, if it fits the type."""
    if dtype.kind == "f":
        return float("nan")
    if cube.dtype.kind == "b":
        return None
    declared = next((cube.attrs[k] for k in ("_FillValue", "nodata", "missing_value") if k in cube.attrs), None)
    if declared is None:
        try:
            declared = cube.rio.nodata
        except Exception:  # rioxarray fails on fill values that don't fit the type
            return None
    try:
        value = float(declared)
    except (TypeError, ValueError):
        return None
    info = np.iinfo(dtype)
    if not np.isfinite(value) or not value.is_integer() or not info.min <= value <= info.max:
        return None  # a fill value the integers can't hold marks nothing
    return int(value)


class _Statistics:
    """Per-layer minimum, maximum, mean and standard deviation over the valid pixels, window by window.

    Means and squared deviations are merged per window (Chan et al.), which stays accurate where a
    running sum of squares would cancel out.
    """

    def __init__(self, n_layers: int, n_pixels: int, nodata: float | int | None):
        self._n_pixels = n_pixels
        self._nodata = nodata if nodata is not None and not np.isnan(nodata) else None
        self.count = np.zeros(n_layers)
        self.mean = np.zeros(n_layers)
        self.m2 = np.zeros(n_layers)
        self.minimum = np.full(n_layers, np.inf)
        self.maximum = np.full(n_layers, -np.inf)

    def add(self, first_layer: int, block: np.ndarray) -> None:
        values = block.astype("float64", copy=False).reshape(block.shape[0], -1)
        valid = np.isfinite(values)
        if self._nodata is not None:
            valid &= values != self._nodata
        n = valid.sum(axis=1).astype("float64")
        layers = slice(first_layer, first_layer + block.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(valid, values, 0.0).sum(axis=1) / n
            m2 = np.where(valid, np.square(values - mean[:, None]), 0.0).sum(axis=1)
        has = n > 0
        self.minimum[layers] = np.where(has, np.minimum(self.minimum[layers], np.where(valid, values, np.inf).min(1)),
                                        self.minimum[layers])
        self.maximum[layers] = np.where(has, np.maximum(self.maximum[layers], np.where(valid, values, -np.inf).max(1)),
                                        self.maximum[layers])
        before = self.count[layers]
        total = before + n
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = np.where(has, mean - self.mean[layers], 0.0)
            self.mean[layers] = np.where(has, self.mean[layers] + delta * n / total, self.mean[layers])
            self.m2[layers] = np.where(has, self.m2[layers] + m2 + delta**2 * before * n / total, self.m2[layers])
        self.count[layers] = total

    def tags(self, layer: int) -> dict[str, str]:
        n = self.count[layer]
        if n == 0:
            return {"STATISTICS_VALID_PERCENT": "0"}
        return {
            "STATISTICS_MINIMUM": repr(float(self.minimum[layer])),
            "STATISTICS_MAXIMUM": repr(float(self.maximum[layer])),
            "STATISTICS_MEAN": repr(float(self.mean[layer])),
            "STATISTICS_STDDEV": repr(float(np.sqrt(self.m2[layer] / n))),
            "STATISTICS_VALID_PERCENT": repr(float(100.0 * n / self._n_pixels)),
        }

    def value_range(self) -> tuple[float, float] | None:
        if not self.count.any():
            return None
        return float(self.minimum.min()), float(self.maximum.max())


def _narrowed(dtype: np.dtype, values: tuple[float, float] | None, nodata: float | int | None) -> np.dtype:
    """A 32-bit type for 64-bit integers whose values fit it; GDAL's Int64 is still not read everywhere."""
    if dtype.kind not in "iu" or dtype.itemsize != 8:
        return dtype
    low, high = values if values is not None else (0, 0)
    if nodata is not None:
        low, high = min(low, nodata), max(high, nodata)
    for candidate in (np.dtype("int32"), np.dtype("uint32")):
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return candidate
    return dtype


# --- writing -----------------------------------------------------------------------------------------


def write_gtiff(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    # _accepts turns away cubes without spatial dimensions or with values GeoTIFF can't store
    spatial = spatial_dims(cube)
    if spatial is None:
        raise unsuitable(NAME, f"it needs spatial dimensions; the cube has {describe_dimensions(cube)}.")
    y, x = spatial
    transform, flip_y, flip_x = _grid(cube, y, x)
    flips: dict[Hashable, slice] = {y: slice(None, None, -1)} if flip_y else {}
    if flip_x:
        flips[x] = slice(None, None, -1)
    layers, descriptions, tags, dataset_tags = _layers(cube.isel(flips) if flips else cube, y, x)
    dtype = _storage_dtype(np.dtype(cube.dtype))
    if dtype is None:
        raise unsuitable(NAME, f"GeoTIFF can't store values of type {cube.dtype}.")
    nodata = _nodata(cube, dtype)
    blocks = _window_blocks(_dask(layers.data).astype(dtype))
    tile = int(options["tile_size"])
    height, width = layers.sizes[y], layers.sizes[x]
    intermediate = target.with_name(f".{target.name}.part.tif")
    try:
        statistics = _write_intermediate(
            intermediate, blocks,
            profile={
                "driver": "GTiff", "width": width, "height": height, "count": blocks.shape[0],
                "dtype": dtype.name, "crs": cube.rio.crs, "transform": transform, "nodata": nodata,
                "tiled": True, "blockxsize": tile, "blockysize": tile, "interleave": "band",
                "BIGTIFF": "IF_SAFER",
            },
            descriptions=descriptions, tags=tags, dataset_tags=dataset_tags,
        )
        final = _narrowed(dtype, statistics.value_range(), nodata)
        source = f"vrt://{intermediate}?ot={_GDAL_TYPES[final.name]}" if final != dtype else str(intermediate)
        _copy_to_cog(source, target, options, final)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        intermediate.unlink(missing_ok=True)


_GDAL_TYPES = {"int32": "Int32", "uint32": "UInt32"}


def _write_intermediate(path: Path, blocks: da.Array, profile: dict[str, Any], descriptions: list[str],
                        tags: list[dict], dataset_tags: dict[str, str]) -> _Statistics:
    statistics = _Statistics(blocks.shape[0], profile["width"] * profile["height"], profile["nodata"])
    with _gdal_errors("create the intermediate GeoTIFF"):
        dst = rasterio.open(path, "w", **profile)
    with dst:
        # Blocks arrive in completion order; each one is written and forgotten.
        for (layers, rows, cols), block in iter_blocks(blocks):
            window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
            with _gdal_errors("write a window of the GeoTIFF"):
                dst.write(block, indexes=list(range(layers.start + 1, layers.stop + 1)), window=window)
            statistics.add(layers.start, block)
        dst.update_tags(**dataset_tags)
        for i, (description, layer_tags) in enumerate(zip(descriptions, tags, strict=True)):
            dst.set_band_description(i + 1, description)
            dst.update_tags(i + 1, **layer_tags, **statistics.tags(i))
    return statistics


def _copy_to_cog(source: str, target: Path, options: Mapping[str, Any], dtype: np.dtype) -> None:
    compression = str(options["compression"]).upper()
    resampling = options["overview_resampling"] or ("average" if dtype.kind == "f" else "nearest")
    cog = {
        "COMPRESS": compression,
        "BLOCKSIZE": str(int(options["tile_size"])),
        "OVERVIEWS": "AUTO" if options["overviews"] else "NONE",
        "OVERVIEW_RESAMPLING": resampling.upper(),
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
    }
    if compression != "NONE":
        cog["PREDICTOR"] = "YES"  # horizontal differencing for integers, floating-point predictor for floats
    with _gdal_errors("convert to a Cloud-Optimized GeoTIFF"):
        rasterio.shutil.copy(source, target, driver="COG", **cog)


@contextmanager
def _gdal_errors(action: str) -> Iterator[None]:
    """GDAL's errors (disk full, …) as an openEO error naming the step.

    Only around GDAL calls of this module: errors raised while computing blocks (e.g. reading the
    input data) belong to whoever raised them.
    """
    try:
        yield
    except rasterio.errors.RasterioError as err:
        raise Internal(f"Could not {action}: {err}") from err


FORMAT = OutputFormat(
    name=NAME,
    title="GeoTIFF",
    description=(
        "Cloud-Optimized GeoTIFF (tiled, compressed, with overviews) of a raster data cube with dimensions "
        "y, x and optionally bands and t. Each band is described by its label and tagged `band=<label>`. "
        "A cube with several dates has one band per date and band (date-major), described "
        "`<band>_<YYYY-MM-DD>` and tagged with `band` and `datetime`; a single date becomes the dataset tag "
        "`datetime`. Bands carry GDAL statistics. Floating-point nodata is NaN."
    ),
    gis_data_types=("raster",),
    media_type="image/tiff; application=geotiff; profile=cloud-optimized",
    extension="tif",
    writer=write_gtiff,
    accepts=_accepts,
    parameters=PARAMETERS,
)
