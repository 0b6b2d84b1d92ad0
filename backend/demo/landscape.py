"""The ground truth of the demo scene: land cover, parcels, and what every pixel looks like on a given day.

``build_landscape`` draws, once per size, the static scene on the 10 m grid covering all tiles: background
land cover (meadow, forest, towns, bare ground, a river and gravel-pit lakes), the parcels on top, and
per-pixel texture. Sensors then ask it for NDVI and surface brightness on a day of year; they add the
atmosphere (clouds, shadows) themselves.

Pixels are grouped into *units* (each parcel, plus one unit per background class) so that a date costs one
table lookup per pixel: the seasonal curve is evaluated once per unit, not once per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import rasterio.features

from backend.demo.grid import Grid, scene_grid
from backend.demo.noise import rng_for, smooth_noise
from backend.demo.parcels import Parcel, place_parcels
from backend.demo.phenology import CROP_CURVES, LAND_COVER_CURVES, FloatArray
from backend.demo.sizes import DemoSize

LAND_COVERS: tuple[str, ...] = ("meadow", "forest", "urban", "bare", "water")
"""Background classes; a class's index is its value in ``Landscape.land_cover``."""

_BRIGHTNESS = {"meadow": 0.30, "forest": 0.25, "urban": 0.30, "bare": 0.36, "water": 0.08}
"""Red + NIR reflectance of each class at NDVI 0 (see ``Landscape.brightness``)."""
_PARCEL_BRIGHTNESS = 0.32

_TEXTURE = {"meadow": 2.0, "forest": 2.0, "urban": 3.0, "bare": 1.5, "water": 0.5}
"""Relative strength of pixel-to-pixel variation of each class; parcels have 1 (managed, uniform)."""


@dataclass(frozen=True, eq=False)
class Landscape:
    """The static demo scene on the scene's 10 m grid (arrays are ``scene.shape``)."""

    scene: Grid
    """The 10 m grid covering all tiles."""

    parcels: tuple[Parcel, ...]
    """The parcels; parcel ``i`` (1-based ``parcel_id``) covers the pixels where ``parcel_ids == i``."""

    land_cover: npt.NDArray[np.uint8]
    """Background class index into ``LAND_COVERS`` of every pixel (also under parcels)."""

    parcel_ids: npt.NDArray[np.int32]
    """``parcel_id`` of the parcel covering each pixel, 0 outside parcels."""

    units: npt.NDArray[np.int32]
    """Unit of each pixel: its ``parcel_id``, or ``len(parcels) + 1 + class index`` outside parcels."""

    ndvi_texture: npt.NDArray[np.float32]
    """Static NDVI deviation of each pixel from its unit's curve."""

    brightness: npt.NDArray[np.float32]
    """Red + NIR reflectance each pixel would have at NDVI 0 (soil or surface brightness)."""

    def unit_ndvi(self, doy: float) -> npt.NDArray[np.float32]:
        """NDVI of every unit on day of year ``doy``, indexable by ``units``."""
        n = len(self.parcels)
        values = np.zeros(n + 1 + len(LAND_COVERS), dtype=np.float64)
        # One curve evaluation per crop over all its parcels (10,000 parcels in the bench size).
        ids, crops, shifts, offsets = self._parcel_table
        for crop, curve in CROP_CURVES.items():
            of_crop = crops == crop
            values[ids[of_crop]] = curve(doy - shifts[of_crop]) + offsets[of_crop]
        for index, name in enumerate(LAND_COVERS):
            values[n + 1 + index] = LAND_COVER_CURVES[name](doy)
        return values.astype(np.float32)

    @cached_property
    def _parcel_table(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.str_], FloatArray, FloatArray]:
        """Parcel ids, crops, day shifts and NDVI offsets as columns."""
        return (
            np.array([p.parcel_id for p in self.parcels], dtype=np.int64),
            np.array([p.crop for p in self.parcels], dtype=np.str_),
            np.array([p.doy_shift for p in self.parcels], dtype=np.float64),
            np.array([p.ndvi_offset for p in self.parcels], dtype=np.float64),
        )

    def ndvi(self, doy: float, window: tuple[slice, slice]) -> npt.NDArray[np.float32]:
        """NDVI of the pixels in ``window`` of the scene on day of year ``doy``."""
        value = self.unit_ndvi(doy)[self.units[window]] + self.ndvi_texture[window]
        return np.clip(value, -0.95, 0.95)

    def water(self, window: tuple[slice, slice]) -> npt.NDArray[np.bool_]:
        """Open water in ``window`` (what SCL calls class 6)."""
        return self.land_cover[window] == LAND_COVERS.index("water")


def build_landscape(size: DemoSize) -> Landscape:
    """Draw the static scene of ``size``; the same size always gives the same scene."""
    scene = scene_grid(size)
    land_cover = _land_cover(size.seed, scene)
    water = land_cover == LAND_COVERS.index("water")
    parcels = place_parcels(
        rng_for(size.seed, "parcels"), scene, land_cover == LAND_COVERS.index("meadow"), water, size.n_parcels
    )
    parcel_ids = _rasterize_parcels(parcels, scene)

    n = len(parcels)
    units = np.where(parcel_ids > 0, parcel_ids, n + 1 + land_cover.astype(np.int32)).astype(np.int32)
    ndvi_texture, brightness = _textures(size.seed, scene, parcels, units)
    return Landscape(scene, parcels, land_cover, parcel_ids, units, ndvi_texture, brightness)


def _land_cover(seed: int, scene: Grid) -> npt.NDArray[np.uint8]:
    """Background classes: patches of forest, towns and bare ground in meadow, a river and small lakes."""
    rng = rng_for(seed, "land_cover")
    shape = scene.shape
    # Feature sizes in metres, so a bigger demo size shows more patches rather than bigger ones.
    px = 1.0 / scene.resolution
    forest = smooth_noise(rng, shape, 1500 * px) + 0.35 * smooth_noise(rng, shape, 400 * px)
    urban = smooth_noise(rng, shape, 600 * px) + 0.30 * smooth_noise(rng, shape, 150 * px)
    bare = smooth_noise(rng, shape, 300 * px)

    cover = np.zeros(shape, dtype=np.uint8)  # meadow
    # Thresholds at quantiles fix each class's share whatever the draw: ~20 % forest, ~6 % town, ~3 % bare.
    cover[forest > np.quantile(forest, 0.80)] = LAND_COVERS.index("forest")
    free = cover == 0
    cover[free & (urban > np.quantile(urban[free], 0.94))] = LAND_COVERS.index("urban")
    free = cover == 0
    bare_threshold = np.quantile(bare[free], 0.97)
    cover[free & (bare > bare_threshold)] = LAND_COVERS.index("bare")
    # Gravel pits flooded in their middle, as along the Po and its tributaries.
    lake_threshold = bare_threshold + 0.35 * (float(bare.max()) - bare_threshold)
    cover[free & (bare > lake_threshold)] = LAND_COVERS.index("water")
    cover[_river(rng, scene)] = LAND_COVERS.index("water")
    return cover


def _river(rng: np.random.Generator, scene: Grid) -> npt.NDArray[np.bool_]:
    """A meandering river 50-80 m wide crossing the whole scene west to east."""
    height, width = scene.shape
    x = np.arange(width, dtype=np.float64) * scene.resolution
    y_m = height * scene.resolution
    # Bends on three scales with random wavelengths, so the course does not look like one sine wave.
    wavelengths = rng.uniform([8_000.0, 2_500.0, 900.0], [14_000.0, 4_500.0, 1_500.0])
    amplitudes = rng.uniform([0.08 * y_m, 150.0, 40.0], [0.12 * y_m, 300.0, 90.0])
    phases = rng.uniform(0.0, 2 * np.pi, 3)
    centre = 0.62 * y_m + sum(
        a * np.sin(2 * np.pi * x / w + p) for a, w, p in zip(amplitudes, wavelengths, phases, strict=True)
    )
    half_width = 25.0 + 15.0 * (0.5 + 0.5 * np.sin(2 * np.pi * x / 4_000.0 + phases[0]))
    y = (np.arange(height, dtype=np.float64)[:, None] + 0.5) * scene.resolution
    return np.abs(y - centre[None, :]) < half_width[None, :]


def _rasterize_parcels(parcels: tuple[Parcel, ...], scene: Grid) -> npt.NDArray[np.int32]:
    if not parcels:
        return np.zeros(scene.shape, dtype=np.int32)
    return rasterio.features.rasterize(
        ((p.polygon, p.parcel_id) for p in parcels),
        out_shape=scene.shape, transform=scene.transform, fill=0, dtype="int32",
    )


def _textures(
    seed: int, scene: Grid, parcels: tuple[Parcel, ...], units: npt.NDArray[np.int32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Static per-pixel variation of NDVI and brightness, stronger on natural and built-up land."""
    rng = rng_for(seed, "texture")
    n = len(parcels)
    strength = np.ones(n + 1 + len(LAND_COVERS), dtype=np.float32)
    base = np.full(n + 1 + len(LAND_COVERS), _PARCEL_BRIGHTNESS, dtype=np.float32)
    for parcel in parcels:
        base[parcel.parcel_id] *= parcel.brightness
    for index, name in enumerate(LAND_COVERS):
        strength[n + 1 + index] = _TEXTURE[name]
        base[n + 1 + index] = _BRIGHTNESS[name]

    unit_strength = strength[units]
    smooth = smooth_noise(rng, scene.shape, 6.0)
    white = rng.standard_normal(scene.shape, dtype=np.float32)
    ndvi_texture = unit_strength * (0.008 * smooth + 0.005 * white)
    brightness = base[units] * (1.0 + unit_strength * (0.03 * smooth + 0.006 * white))
    return ndvi_texture.astype(np.float32), np.clip(brightness, 0.02, None).astype(np.float32)
