"""PNG and JPEG: a raster cube of one date as an 8-bit picture of its own pixel grid, north up.

One pixel per cube pixel (width × height = the cube's x × y), coloured by
``processes.formats.colour`` (one band grey or a colour map, three RGB, four RGBA; values 0–255 as
the graph scaled them, or scaled by the ``value_range`` option). The picture carries no
georeference: use GTiff for that.

PNG keeps nodata transparent (alpha 0) and is written in the smallest mode that holds the picture
exactly: L or LA for grey, RGB or RGBA otherwise. JPEG has no alpha: nodata and transparent pixels
are composited over black; one grey band is a greyscale JPEG.

The picture is assembled in memory as 8-bit RGBA (4 bytes a pixel: 400 MB for 10,000 × 10,000),
computed block by block (``processes.formats.frames``); the cube's float values never sit in memory
whole.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from PIL import Image

from processes.formats.colour import without_alpha
from processes.formats.frames import (
    COLOUR_PARAMETERS,
    PictureFormat,
    colouring_of,
    picture,
    picture_problem,
    rgba_frames,
)

JPEG_MAX_SIDE = 65_500
"""JPEG's largest width or height."""


def _still(cube: xr.DataArray, format_name: str, options: Mapping[str, Any]) -> np.ndarray:
    """The one RGBA frame of ``cube``."""
    drawn = picture(cube, format_name, animated=False)
    return next(rgba_frames(drawn, colouring_of(format_name, options), format_name))


def _is_grey(pixels: np.ndarray, options: Mapping[str, Any]) -> bool:
    """Whether the RGB(A) ``pixels`` are all grey (then one channel holds them exactly)."""
    return options.get("colormap") is None and bool(
        (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())


def write_png(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    rgba = _still(cube, "PNG", options)
    opaque = bool((rgba[..., 3] == 255).all())
    if _is_grey(rgba, options):
        pixels = rgba[..., 0] if opaque else rgba[..., [0, 3]]
    else:
        pixels = rgba[..., :3] if opaque else rgba
    _saved(Image.fromarray(np.ascontiguousarray(pixels)), target, "PNG", compress_level=6)


def write_jpeg(cube: xr.DataArray, target: Path, options: Mapping[str, Any]) -> None:
    rgb = without_alpha(_still(cube, "JPEG", options))
    pixels = rgb[..., 0] if _is_grey(rgb, options) else rgb
    _saved(Image.fromarray(np.ascontiguousarray(pixels)), target, "JPEG", quality=int(options["quality"]))


ENCODINGS: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
"""The encodings of :func:`encode_rgba` by name, with their media types."""


def encode_rgba(rgba: np.ndarray, encoding: str, *, quality: int = 85) -> bytes:
    """An RGBA picture (e.g. a map tile) as PNG (with alpha: grey as LA, else RGBA; fast deflate, as a tile
    server's), WebP (lossless
    when it holds transparency, lossy at ``quality`` otherwise) or JPEG (transparent pixels black)."""
    buffer = io.BytesIO()
    if encoding == "png":  # always with alpha; grey as LA: half the bytes to deflate
        grey = bool((rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all())
        image = Image.fromarray(np.ascontiguousarray(rgba[..., [0, 3]]), "LA") if grey else Image.fromarray(rgba, "RGBA")
        image.save(buffer, format="PNG", compress_level=1)
    elif encoding == "webp":
        transparent = not bool((rgba[..., 3] == 255).all())
        Image.fromarray(rgba, "RGBA").save(buffer, format="WEBP", lossless=transparent, quality=quality, method=0)
    elif encoding == "jpeg":
        Image.fromarray(np.ascontiguousarray(without_alpha(rgba)), "RGB").save(buffer, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unknown encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    return buffer.getvalue()


def _saved(image: Image.Image, target: Path, format_name: str, **settings: Any) -> None:
    try:
        image.save(target, format=format_name, **settings)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _accepts_jpeg(value: Any) -> str | None:
    problem = picture_problem(value, "JPEG", animated=False)
    if problem is None and max(value.shape[-2:]) > JPEG_MAX_SIDE:
        return f"JPEG pictures are at most {JPEG_MAX_SIDE} pixels wide and high; use PNG or GTiff."
    return problem


PNG = PictureFormat(
    name="PNG",
    title="Portable Network Graphics",
    description=(
        "An 8-bit picture of a raster data cube of one date: one pixel per cube pixel, north up, no "
        "georeference. One band is grey (or coloured by `colormap`), three bands are RGB, four RGBA. Values are "
        "drawn as they are and must lie in 0–255 (scale them with `linear_scale_range(x, 0, 3000, 0, 255)` or "
        "the `value_range` option); NaN pixels are transparent."
    ),
    gis_data_types=("raster",),
    media_type="image/png",
    extension="png",
    writer=write_png,
    accepts=functools.partial(picture_problem, format_name="PNG", animated=False),
    parameters=COLOUR_PARAMETERS,
)
JPEG = PictureFormat(
    name="JPEG",
    title="JPEG",
    description=(
        "An 8-bit picture (lossy) of a raster data cube of one date: one pixel per cube pixel, north up, no "
        "georeference. One band is grey (or coloured by `colormap`), three bands are RGB, four RGBA composited "
        "over black. Values are drawn as they are and must lie in 0–255 (scale them with "
        "`linear_scale_range(x, 0, 3000, 0, 255)` or the `value_range` option); NaN pixels are black."
    ),
    gis_data_types=("raster",),
    media_type="image/jpeg",
    extension="jpg",
    writer=write_jpeg,
    accepts=_accepts_jpeg,
    parameters={
        **COLOUR_PARAMETERS,
        "quality": {
            "type": "integer",
            "description": "JPEG quality, from 1 (smallest file) to 95 (best picture).",
            "minimum": 1,
            "maximum": 95,
            "default": 90,
        },
    },
)
