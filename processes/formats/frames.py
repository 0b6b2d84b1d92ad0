"""What the picture formats share: which cubes can be drawn, their options, and computing RGBA frames.

A raster cube is drawn as frames of ``height × width`` pixels — the cube's own pixel grid, north up
(the rows are flipped when the cube's y ascends, the columns when its x descends) — one frame per
date, in date order (a cube without a time dimension is one frame). The colouring is
``processes.formats.colour``.

Frames are computed from the lazy cube in one pass of :func:`processes.formats.blocks.iter_blocks`
(so a batch job's progress meter sees one output): it hands out the blocks date by date with a
bounded number in flight, each block is coloured into 8-bit RGBA as it arrives, and a group of
dates is handed on, in date order, as soon as all its blocks are in. Memory holds the RGBA frames
(4 bytes a pixel) of the groups whose blocks are in flight — normally one or two dates — never the
whole cube. A group is one chunk of the cube's time dimension (normally one date: ``load_collection``
makes one block per date), split when its frames would exceed :data:`GROUP_BYTES`; the parts of a
split chunk each compute the chunk again, trading time for bounded memory.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from processes.core.errors import FormatArgumentInvalid
from processes.formats.blocks import iter_blocks
from processes.formats.colour import (
    COMMON_COLOUR_MAPS,
    Colouring,
    ColouringError,
    check_band_count,
    to_rgba,
)
from processes.formats.output_format import OutputFormat, empty_cube, unsuitable
from processes.model.raster_cube import (
    band_dim,
    describe_dimensions,
    is_raster_cube,
    spatial_dims,
    time_dim,
)

GROUP_BYTES = 256 * 2**20
"""Most RGBA bytes of frames computed together (one chunk of the time dimension, or part of it)."""

COLOUR_PARAMETERS: dict[str, dict[str, Any]] = {
    "colormap": {
        "type": ["string", "null"],
        "description": "Colour map of a cube with one band, by its matplotlib name: "
        f"{', '.join(COMMON_COLOUR_MAPS)}, …; `_r` reverses a map (`RdYlGn_r`). The band's level "
        "(0–255, after value_range) picks the map's colour number. Without a colour map one band is grey.",
        "default": None,
        "examples": ["viridis", "RdYlGn", "terrain", "Greys"],
    },
    "value_range": {
        "type": ["array", "null"],
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
        "description": "`[min, max]`: scale the values linearly from min–max to 0–255, clipping values outside "
        "to the ends (as `linear_scale_range(x, min, max, 0, 255)` does), e.g. `[0, 3000]` for Sentinel-2 "
        "reflectances. Without it the values are drawn as they are and must lie in 0–255 (rounded to whole "
        "numbers); other values are an error, not clipped.",
        "default": None,
    },
    "nodata": {
        "type": ["number", "null"],
        "description": "A value that marks missing pixels, besides NaN (e.g. 0 of an 8-bit cube).",
        "default": None,
    },
}


def picture_problem(value: Any, format_name: str, *, animated: bool) -> str | None:
    """Why ``value`` can't be drawn in ``format_name`` (→ ``FormatUnsuitable``), or None. Computes nothing."""
    spatial = spatial_dims(value) if is_raster_cube(value) else None
    if spatial is None:
        what = f"a data cube with dimensions {describe_dimensions(value)}" if is_raster_cube(value) else (
            f"a {type(value).__name__}")
        return (f"{format_name} draws a raster data cube with spatial dimensions x and y, and this result is "
                f"{what}. Use JSON for other values, or CSV/GeoJSON for vector cubes.")
    t, b = time_dim(value), band_dim(value)
    extra = [str(d) for d in value.dims if d not in (*spatial, t, b)]
    if extra:
        return (f"a picture holds bands over y and x{' and frames over time' if animated else ''}, but the data "
                f"cube also has the dimension(s) {', '.join(extra)} ({describe_dimensions(value)}); reduce them "
                "(reduce_dimension) or drop them (drop_dimension).")
    if value.size == 0:
        raise empty_cube(format_name)
    if value.dtype.kind not in "biuf":
        return f"it holds values of type {value.dtype}, and a picture needs numbers or booleans."
    n_bands = value.sizes[b] if b is not None else 1
    if n_bands not in (1, 3, 4):
        labels = ", ".join(str(v) for v in value[b].values) if b is not None and b in value.coords else ""
        return (f"the data cube has {n_bands} bands ({labels}), and a picture shows 1 band (grey, or a colour "
                "map), 3 (red, green, blue) or 4 (red, green, blue, alpha). Choose them with filter_bands, "
                'e.g. filter_bands(bands=["B04", "B03", "B02"]) for natural colours, or compute one band '
                "(e.g. ndvi).")
    if not animated and t is not None and value.sizes[t] > 1:
        return (f"a still image shows one date, and the data cube has {value.sizes[t]} dates "
                f"({_date_span(value[t].values)}). Reduce the time dimension (e.g. reduce_dimension over t "
                "with max), keep one date (filter_temporal), or save as GIF or MP4 for one frame per date.")
    return None


def _date_span(labels: np.ndarray) -> str:
    texts = frame_labels(labels)
    return f"{texts[0]} … {texts[-1]}" if len(texts) > 1 else texts[0]


def frame_labels(labels: np.ndarray) -> list[str]:
    """Captions of time labels: ``YYYY-MM-DD``, with the time (UTC) only where two labels share a day;
    labels that aren't date-times (periods such as ``2023-djf``) as they are."""
    if labels.dtype.kind != "M":
        return [str(v) for v in labels]
    dates = pd.DatetimeIndex(labels)
    pattern = "%Y-%m-%d" if dates.normalize().is_unique else "%Y-%m-%d %H:%M"
    return ["" if pd.isna(d) else d.strftime(pattern) for d in dates]  # a NaT label has no caption


def colouring_of(format_name: str, options: Mapping[str, Any]) -> Colouring:
    """The colouring that validated format options describe."""
    try:
        return Colouring.from_options(options)
    except ColouringError as err:
        raise FormatArgumentInvalid(f"Output format {format_name}: {err}") from None


@dataclass(frozen=True)
class PictureFormat(OutputFormat):
    """A format that draws raster cubes (PNG, JPEG, GIF, MP4): its options are also checked against
    each other and the cube (a colour map needs one band) before anything is computed."""

    def options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        resolved = super().options(options)
        colouring_of(self.name, resolved)
        return resolved

    def check(self, value: Any, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        resolved = super().check(value, options)
        b = band_dim(value)
        try:
            check_band_count(value.sizes[b] if b is not None else 1, colouring_of(self.name, resolved))
        except ColouringError as err:
            raise FormatArgumentInvalid(f"Output format {self.name}: {err}") from None
        return resolved


@dataclass(frozen=True)
class Picture:
    """A raster cube arranged for drawing."""

    data: da.Array
    """``(frame, band, row, column)``: dates in order, north up, all bands in one chunk."""
    labels: tuple[str, ...]
    """Caption of each frame (its date), empty for a cube without a time dimension."""

    @property
    def height(self) -> int:
        return int(self.data.shape[2])

    @property
    def width(self) -> int:
        return int(self.data.shape[3])


def picture(cube: xr.DataArray, format_name: str, *, animated: bool) -> Picture:
    """``cube`` arranged for drawing; raises ``FormatUnsuitable`` for cubes that can't be drawn."""
    problem = picture_problem(cube, format_name, animated=animated)
    if problem:
        raise unsuitable(format_name, problem)
    spatial = spatial_dims(cube)
    assert spatial is not None  # picture_problem refuses cubes without spatial dimensions
    y, x = spatial
    t, b = time_dim(cube), band_dim(cube)
    flips: dict[Hashable, Any] = {}
    if _ascending(cube, y):
        flips[y] = slice(None, None, -1)  # north up: the first row is the northernmost
    if _descending(cube, x):
        flips[x] = slice(None, None, -1)
    if t is not None and cube[t].dtype.kind == "M":
        order = np.argsort(cube[t].values, kind="stable")
        if (order != np.arange(len(order))).any():
            flips[t] = order
    if flips:
        cube = cube.isel(flips)
    if t is None:
        t = "__frame__"
        cube = cube.expand_dims(t)
        labels: list[str] = [""]
    else:
        labels = frame_labels(cube[t].values)
    if b is None:
        b = "__band__"
        cube = cube.expand_dims(b)
    arranged = cube.transpose(t, b, y, x).data
    if not isinstance(arranged, da.Array):
        arranged = da.from_array(np.asarray(arranged), chunks=(1, -1, 1024, 1024))
    return Picture(arranged.rechunk({1: -1}), tuple(labels))


def _coordinate_step(cube: xr.DataArray, dim: str) -> float:
    if dim not in cube.coords or cube.sizes[dim] < 2 or cube[dim].dtype.kind not in "iuf":
        return 0.0
    values = cube[dim].values
    return float(values[-1]) - float(values[0])


def _ascending(cube: xr.DataArray, dim: str) -> bool:
    return _coordinate_step(cube, dim) > 0


def _descending(cube: xr.DataArray, dim: str) -> bool:
    return _coordinate_step(cube, dim) < 0


def rgba_frames(picture: Picture, colouring: Colouring, format_name: str) -> Iterator[np.ndarray]:
    """The RGBA frames ``(height, width, 4)`` uint8 of ``picture`` in order (see the module docstring)."""
    per_group = max(1, GROUP_BYTES // max(picture.height * picture.width * 4, 1))
    sizes = tuple(part for chunk in picture.data.chunks[0] for part in _split(chunk, per_group))
    data = picture.data.rechunk({0: sizes}) if sizes != picture.data.chunks[0] else picture.data
    firsts = np.cumsum((0, *sizes))
    blocks_per_group = len(data.chunks[2]) * len(data.chunks[3])
    pending: dict[int, _Group] = {}
    next_group = 0
    for (dates, _, rows, columns), block in iter_blocks(data):
        index = int(np.searchsorted(firsts, dates.start, side="right")) - 1
        group = pending.get(index)
        if group is None:
            frames = np.empty((sizes[index], picture.height, picture.width, 4), dtype=np.uint8)
            group = pending[index] = _Group(frames, blocks_per_group)
        offset = dates.start - int(firsts[index])
        for k in range(block.shape[0]):
            group.frames[offset + k, rows, columns] = _coloured(block[k], colouring, format_name)
        group.blocks_left -= 1
        # blocks arrive in the order they finish: hand on every group that is complete, in date order
        while next_group in pending and pending[next_group].blocks_left == 0:
            yield from pending.pop(next_group).frames
            next_group += 1


@dataclass
class _Group:
    """The frames of one group of dates while its blocks arrive."""

    frames: np.ndarray
    blocks_left: int


def _split(size: int, most: int) -> list[int]:
    return [min(most, size - start) for start in range(0, size, most)]


def _coloured(values: np.ndarray, colouring: Colouring, format_name: str) -> np.ndarray:
    try:
        return to_rgba(values, colouring)
    except ColouringError as err:
        raise unsuitable(format_name, str(err)) from None
