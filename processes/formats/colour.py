"""Colouring: a cube's values as 8-bit RGBA pixels — scaling, colour maps, nodata — on numpy arrays.

Pure functions of numpy arrays and a :class:`Colouring`, so the PNG/JPEG/GIF/MP4 writers apply them
block by block and a map tile service can apply them tile by tile, with the same result.

The rules (the writers' descriptions in ``GET /file_formats`` and the README say the same):

- **Bands.** One band is grey (the value is the grey level) or, with a colour map, the value picks
  the map's colour; three bands are red, green, blue; four are red, green, blue, alpha. Other
  band counts can't be drawn.
- **Values.** Without a value range the values are drawn as they are: they must lie in 0–255
  after rounding to whole numbers (-0.5 ≤ v < 255.5), as ``linear_scale_range(x, 0, 3000, 0, 255)``
  makes them; other values are refused (:class:`ValuesOutOfRange`), never clipped silently — raw
  reflectances would otherwise come out as a white or black picture. Booleans are 0 and 255.
- **Value range** ``(min, max)``: values are scaled linearly from min–max to 0–255 and clipped to
  the ends, exactly as ``linear_scale_range(x, min, max, 0, 255)`` would do in the graph. The range
  applies to every band (with four bands, to alpha too).
- **Nodata.** A pixel is nodata where any band is NaN (or equals the ``nodata`` value): it becomes
  ``(0, 0, 0, 0)``, transparent where the format has alpha and black where it has none.
- **Colour maps** are matplotlib's names (``viridis``, ``RdYlGn``, ``terrain``, ``Greys``, …; ``_r``
  reverses one), taken from the ``cmap`` package, which carries matplotlib's colour maps (and
  others, e.g. ``crameri:batlow``) without matplotlib. A map is sampled at 256 levels, as
  matplotlib does by default, and level *v* is the map's colour number *v*.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from cmap import Catalog, Colormap

COMMON_COLOUR_MAPS: tuple[str, ...] = (
    "viridis", "magma", "inferno", "plasma", "cividis", "Greys", "gray", "RdYlGn", "RdYlBu", "Spectral",
    "BrBG", "PiYG", "coolwarm", "terrain", "YlGn", "Greens", "Blues", "Reds", "YlOrRd", "jet",
)
"""Names worth suggesting (any name of the ``cmap`` catalogue is accepted)."""

LEVELS = 256


class ColouringError(ValueError):
    """Values or options that can't be coloured; the message says how to fix it."""


class UnknownColourMap(ColouringError):
    def __init__(self, name: str):
        close = difflib.get_close_matches(name, _catalogue_names(), n=4, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        super().__init__(
            f"there is no colour map called {name!r}; {hint}use a matplotlib name such as "
            f"{', '.join(COMMON_COLOUR_MAPS)} (add _r to reverse one, e.g. RdYlGn_r)."
        )


class ValuesOutOfRange(ColouringError):
    """Values outside 0–255 without a value range (see the module docstring)."""

    def __init__(self, lowest: float, highest: float):
        self.lowest, self.highest = lowest, highest
        super().__init__(
            f"values are drawn as they are, so they must lie in 0–255, but they reach from "
            f"{lowest:g} to {highest:g}. Scale them in the process graph, e.g. "
            f"linear_scale_range(x, 0, 3000, 0, 255) for reflectances, or set the format option "
            f"value_range, e.g. [0, 3000], to scale that range to 0–255."
        )


@dataclass(frozen=True)
class Colouring:
    """How values become colours (see the module docstring); the defaults draw values as they are."""

    colormap: str | None = None
    """Colour map name for one band, or None for grey."""
    value_range: tuple[float, float] | None = None
    """Values scaled from this range to 0–255, or None to take them as they are."""
    nodata: float | None = None
    """A value marking missing pixels, besides NaN."""

    def __post_init__(self) -> None:
        if self.colormap is not None:
            lookup_table(self.colormap)  # raises UnknownColourMap
        if self.value_range is not None:
            low, high = self.value_range
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ColouringError(f"the value range must be two finite numbers [min, max] with min < max, "
                                     f"got [{low}, {high}].")
            object.__setattr__(self, "value_range", (float(low), float(high)))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Colouring:
        """From format options ``colormap``, ``value_range`` (``[min, max]``) and ``nodata`` (all optional)."""
        value_range = options.get("value_range")
        if value_range is not None:
            if (not isinstance(value_range, Sequence) or len(value_range) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range)):
                raise ColouringError(f"the value range must be two numbers [min, max], got {value_range!r}.")
            value_range = (float(value_range[0]), float(value_range[1]))
        nodata = options.get("nodata")
        return cls(colormap=options.get("colormap"), value_range=value_range,
                   nodata=None if nodata is None else float(nodata))


@functools.lru_cache(maxsize=64)
def lookup_table(name: str) -> np.ndarray:
    """The colour map ``name`` at 256 levels: a read-only ``(256, 4)`` uint8 array of RGBA."""
    try:
        colormap = Colormap(name)
    except (ValueError, KeyError, TypeError):
        raise UnknownColourMap(name) from None
    # integer input indexes the map's 256-level table directly, in bytes as matplotlib gives them
    table = np.asarray(colormap(np.arange(LEVELS), N=LEVELS, bytes=True), dtype=np.uint8)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=1)
def _catalogue_names() -> list[str]:
    return sorted(set(Catalog().short_keys()) | set(COMMON_COLOUR_MAPS))


def check_band_count(n_bands: int, colouring: Colouring) -> None:
    """Raise :class:`ColouringError` unless ``n_bands`` bands can be drawn with ``colouring``."""
    if n_bands not in (1, 3, 4):
        raise ColouringError(f"it has {n_bands} bands, and a picture shows 1 band (grey, or a colour map), "
                             "3 (red, green, blue) or 4 (red, green, blue, alpha).")
    if colouring.colormap is not None and n_bands != 1:
        raise ColouringError(f"a colour map colours one band, and this has {n_bands}; leave out the colormap "
                             "option to draw them as red, green, blue (and alpha), or keep one band.")


def to_rgba(values: np.ndarray, colouring: Colouring = Colouring()) -> np.ndarray:
    """``values`` — ``(bands, height, width)``, or ``(height, width)`` for one band — as an RGBA
    ``(height, width, 4)`` uint8 array (see the module docstring for the rules)."""
    values = np.asarray(values)
    if values.ndim == 2:
        values = values[np.newaxis]
    if values.ndim != 3:
        raise ColouringError(f"expected values of shape (bands, height, width), got shape {values.shape}.")
    check_band_count(values.shape[0], colouring)
    missing = _missing(values, colouring.nodata)
    levels = _levels(values, colouring.value_range, missing)
    if values.shape[0] == 1 and colouring.colormap is None:
        # grey: the four channels stacked in one pass (writing three strided channels and then the
        # nodata pixels costs three times as much, a twentieth of a map tile)
        grey = np.where(missing, np.uint8(0), levels[0])
        return np.stack([grey, grey, grey, np.where(missing, np.uint8(0), np.uint8(255))], axis=-1)
    height, width = values.shape[1:]
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    if values.shape[0] == 1:  # with a colour map
        rgba[:] = lookup_table(colouring.colormap)[levels[0]]
    else:
        rgba[..., : values.shape[0]] = np.moveaxis(levels, 0, -1)
        if values.shape[0] == 3:
            rgba[..., 3] = 255
    rgba[missing] = 0
    return rgba


def without_alpha(rgba: np.ndarray) -> np.ndarray:
    """RGB ``(height, width, 3)`` of an RGBA array, composited over black (for formats without alpha)."""
    alpha = rgba[..., 3:4]
    if (alpha == 255).all():
        return np.ascontiguousarray(rgba[..., :3])
    # integer arithmetic, rounded: c × a / 255
    return ((rgba[..., :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)


def _missing(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Pixels where any band is nodata."""
    missing = np.zeros(values.shape[1:], dtype=bool)
    if values.dtype.kind == "f":
        missing |= np.isnan(values).any(axis=0)
    if nodata is not None and values.dtype.kind != "b":
        missing |= (values == nodata).any(axis=0)
    return missing


def _levels(values: np.ndarray, value_range: tuple[float, float] | None, missing: np.ndarray) -> np.ndarray:
    """The values as levels 0–255 (uint8); what nodata pixels get doesn't matter (see to_rgba)."""
    if values.dtype.kind == "b":
        return np.where(values, np.uint8(255), np.uint8(0))
    if value_range is None and values.dtype == np.uint8:
        return values
    work: np.ndarray = values.astype(np.float64 if values.dtype.itemsize > 4 else np.float32)
    if value_range is not None:
        low, high = value_range
        # linear_scale_range's formula, in its order of operations, and its clipping of the input to
        # [min, max]: the same levels as scaling in the graph
        work = (work.clip(low, high) - low) / (high - low) * 255.0
    else:
        valid = ~missing[np.newaxis].repeat(values.shape[0], axis=0)
        outside = valid & ~((work >= -0.5) & (work < 255.5))  # ±inf too
        if outside.any():
            present = work[valid]
            raise ValuesOutOfRange(float(present.min()), float(present.max()))
    work = np.where(missing[np.newaxis], 0, work)
    return np.clip(np.rint(work), 0, 255).astype(np.uint8)
