"""The atmosphere of one acquisition: clouds, their shadows, and a slight overall haze.

Clouds are one smooth random field over the whole scene (so they cross the tile border), thresholded at
the quantile that gives the date's cloud fraction: some dates are clear, some broken, some overcast. The
field's margin above the threshold is the cloud's opacity, thin at the edges, opaque in the core. The
shadow is the same opacity field shifted away from the sun (to the north-north-west at 10:30 local time),
which is why the field is drawn with a margin: shadows of clouds just outside the scene still fall in it.

Everything is drawn on the 20 m grid, the native grid of the Sentinel-2 scene classification, and repeated
onto 10 m pixels, so a 10 m pixel is cloudy exactly when its 20 m SCL pixel says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from backend.demo.grid import Grid
from backend.demo.noise import rng_for, smooth_noise

CLOUD_TOP_OPACITY = 0.6
"""Opacity from which a cloud pixel counts as high probability (SCL 9)."""
CLOUD_MEDIUM_OPACITY = 0.25
"""Opacity from which a cloud pixel counts as medium probability (SCL 8); below it, thin cirrus (SCL 10)."""
SHADOW_OPACITY = 0.3
"""Shadow strength from which a cloud-free pixel counts as cloud shadow (SCL 3)."""
SHADOW_DARKENING = 0.6
"""Share of the light a full shadow takes away."""

_EDGE_SOFTNESS = 0.6
"""Range of the cloud field (in standard deviations) over which opacity goes from 0 to 1."""
_MAX_SHADOW_M = 900.0


@dataclass(frozen=True, eq=False)
class Atmosphere:
    """Clouds and shadows of one date on the scene's 20 m grid (arrays are ``scene20.shape``)."""

    cloud_fraction: float
    """Share of the scene under cloud (any opacity) that the field was thresholded for."""

    cloud_opacity: npt.NDArray[np.float32]
    """0 (clear) to 1 (opaque cloud)."""

    shadow_opacity: npt.NDArray[np.float32]
    """0 (sunlit) to 1 (full cloud shadow)."""

    surface_gain: float
    """Factor close to 1 on all surface reflectances of the date (aerosols, sun elevation)."""


def draw_atmosphere(seed: int, date_index: int, scene20: Grid) -> Atmosphere:
    """The atmosphere of acquisition ``date_index`` over the 20 m scene grid."""
    rng = rng_for(seed, "atmosphere", date_index)
    fraction = _cloud_fraction(rng)
    gain = float(rng.uniform(0.97, 1.03))
    if fraction == 0.0:
        empty = np.zeros(scene20.shape, dtype=np.float32)
        return Atmosphere(0.0, empty, empty, gain)

    # Shadow displacement: clouds 1-2.5 km high, sun 25-60 degrees high, so 0.3-0.9 km towards ~340 degrees.
    distance_px = rng.uniform(300.0, _MAX_SHADOW_M) / scene20.resolution
    azimuth = math.radians(rng.uniform(320.0, 360.0))
    shift_rows = int(round(-distance_px * math.cos(azimuth)))  # rows grow southwards
    shift_cols = int(round(distance_px * math.sin(azimuth)))

    margin = math.ceil(_MAX_SHADOW_M / scene20.resolution) + 1
    padded = (scene20.height + 2 * margin, scene20.width + 2 * margin)
    field = (smooth_noise(rng, padded, 2500.0 / scene20.resolution)
             + 0.45 * smooth_noise(rng, padded, 500.0 / scene20.resolution)
             + 0.15 * smooth_noise(rng, padded, 120.0 / scene20.resolution))
    inner = (slice(margin, margin + scene20.height), slice(margin, margin + scene20.width))
    threshold = float(np.quantile(field[inner], 1.0 - fraction))
    opacity = np.clip((field - threshold) / _EDGE_SOFTNESS, 0.0, 1.0).astype(np.float32)
    # A pixel exactly at the threshold would be "cloud" with opacity 0; nudge it so SCL and pixels agree.
    opacity[(field > threshold) & (opacity == 0.0)] = np.float32(1e-3)

    # The shadow at p is cast by the cloud at p - shift.
    shadow_window = (slice(margin - shift_rows, margin - shift_rows + scene20.height),
                     slice(margin - shift_cols, margin - shift_cols + scene20.width))
    return Atmosphere(fraction, opacity[inner].copy(), opacity[shadow_window].copy(), gain)


def _cloud_fraction(rng: np.random.Generator) -> float:
    """Roughly the mix of a year over the Po plain: a third clear, the rest broken or overcast."""
    kind = rng.random()
    if kind < 0.3:
        return 0.0
    if kind < 0.7:
        return float(rng.uniform(0.03, 0.35))
    return float(rng.uniform(0.45, 0.95))
