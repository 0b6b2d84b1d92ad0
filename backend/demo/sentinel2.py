"""The Sentinel-2 L2A-like product: band reflectances, scene classification, and the COGs of each item.

For each date the landscape gives NDVI and surface brightness per 10 m pixel; red and NIR are split from
them so that NDVI computed from the stored digital numbers is the landscape's NDVI, and the other bands are
plausible functions of the same two. Clouds and shadows from ``clouds`` are then mixed in, and the scene
classification (SCL) is derived the way Sen2Cor labels pixels: water, vegetation by NDVI, shadow, cloud.

Values follow the L2A conventions users meet in real catalogs: uint16 digital numbers with
reflectance = DN * 0.0001 and 0 as nodata (so valid pixels are at least 1), SCL as uint8 classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from backend.demo.clouds import (
    CLOUD_MEDIUM_OPACITY,
    CLOUD_TOP_OPACITY,
    SHADOW_DARKENING,
    SHADOW_OPACITY,
    Atmosphere,
    draw_atmosphere,
)
from backend.demo.cog import write_cog
from backend.demo.grid import Grid, Tile, scene_grid, tiles
from backend.demo.landscape import Landscape
from backend.demo.sizes import DemoSize

REFLECTANCE_SCALE = 0.0001
NODATA = 0
SENSING_TIME = time(10, 30, tzinfo=UTC)
"""Overpass time of the demo acquisitions (Sentinel-2 crosses the equator at 10:30 local solar time)."""


@dataclass(frozen=True)
class S2Band:
    """One band of the demo Sentinel-2 product, with the metadata its STAC asset carries."""

    name: str
    """Band name as in ESA products and openEO collections (``B04``); also the asset key."""

    resolution: float
    """Pixel size in metres: 10 or 20."""

    description: str
    """Human-readable band name with resolution, for ``eo:bands``."""

    common_name: str | None = None
    """STAC ``eo:bands`` common name (``red``); None for SCL."""

    center_wavelength: float | None = None
    """Micrometres."""

    full_width_half_max: float | None = None
    """Micrometres."""

    @property
    def is_reflectance(self) -> bool:
        return self.common_name is not None

    @property
    def data_type(self) -> str:
        return "uint16" if self.is_reflectance else "uint8"


S2_BANDS: tuple[S2Band, ...] = (
    S2Band("B02", 10.0, "Blue (band 2), 10 m", "blue", 0.49, 0.098),
    S2Band("B03", 10.0, "Green (band 3), 10 m", "green", 0.56, 0.045),
    S2Band("B04", 10.0, "Red (band 4), 10 m", "red", 0.665, 0.038),
    S2Band("B08", 10.0, "NIR (band 8), 10 m", "nir", 0.842, 0.145),
    S2Band("B11", 20.0, "SWIR 1.6 um (band 11), 20 m", "swir16", 1.61, 0.143),
    S2Band("B12", 20.0, "SWIR 2.2 um (band 12), 20 m", "swir22", 2.19, 0.242),
    S2Band("SCL", 20.0, "Scene classification map, 20 m"),
)

SCL_CLASSES: tuple[tuple[int, str, str], ...] = (
    (0, "no_data", "No data"),
    (1, "saturated_or_defective", "Saturated or defective"),
    (2, "dark_area_pixels", "Dark area pixels"),
    (3, "cloud_shadows", "Cloud shadows"),
    (4, "vegetation", "Vegetation"),
    (5, "not_vegetated", "Not vegetated"),
    (6, "water", "Water"),
    (7, "unclassified", "Unclassified"),
    (8, "cloud_medium_probability", "Cloud medium probability"),
    (9, "cloud_high_probability", "Cloud high probability"),
    (10, "thin_cirrus", "Thin cirrus"),
    (11, "snow", "Snow or ice"),
)
"""The Sen2Cor scene classes (value, name, description); the demo uses 3, 4, 5, 6, 8, 9 and 10."""

SCL_CLOUD_CLASSES = (8, 9, 10)
"""Classes counted in ``eo:cloud_cover``."""

_SCL_VEGETATION_NDVI = 0.4

_CLOUD_REFLECTANCE = {"B02": 0.50, "B03": 0.49, "B04": 0.48, "B08": 0.52, "B11": 0.36, "B12": 0.26}
"""Top-of-cloud reflectance: white in the visible and NIR, darker in the SWIR (ice and water absorb)."""


@dataclass(frozen=True)
class S2Acquisition:
    """What was written for one tile on one date: everything its STAC item needs."""

    item_id: str
    tile: Tile
    datetime: datetime
    platform: str
    """``sentinel-2a`` or ``sentinel-2b``; the two alternate, as their 5-day revisit interleaves."""

    cloud_cover: float
    """Percentage of the tile's SCL pixels in ``SCL_CLOUD_CLASSES``, 2 decimals."""

    files: Mapping[str, Path]
    """Band name -> the band's COG."""


def item_id(tile: Tile, day: date) -> str:
    return f"S2_DEMO_{tile.name}_{day:%Y%m%d}"


def band_grid(tile: Tile, band: S2Band) -> Grid:
    """The grid of ``band``'s asset on ``tile``."""
    return tile.grid.coarsened(int(band.resolution // tile.grid.resolution))


def write_acquisitions(
    landscape: Landscape, size: DemoSize, date_index: int, collection_dir: Path
) -> list[S2Acquisition]:
    """Render and write the items of every tile for ``size.dates[date_index]``, west to east."""
    day = size.dates[date_index]
    atmosphere = draw_atmosphere(size.seed, date_index, scene_grid(size).coarsened(2))
    doy = float(day.timetuple().tm_yday)
    acquisitions = []
    for tile in tiles(size):
        bands = render_tile(landscape, atmosphere, tile, doy)
        identifier = item_id(tile, day)
        item_dir = collection_dir / identifier
        item_dir.mkdir(parents=True, exist_ok=True)
        files = {
            band.name: write_cog(
                item_dir / f"{identifier}_{band.name}.tif", bands[band.name], band_grid(tile, band),
                nodata=NODATA, description=band.name,
                resampling="average" if band.is_reflectance else "nearest",
            )
            for band in S2_BANDS
        }
        acquisitions.append(S2Acquisition(
            item_id=identifier, tile=tile, datetime=datetime.combine(day, SENSING_TIME),
            platform="sentinel-2a" if date_index % 2 == 0 else "sentinel-2b",
            cloud_cover=cloud_cover(bands["SCL"]), files=files,
        ))
    return acquisitions


def render_tile(
    landscape: Landscape, atmosphere: Atmosphere, tile: Tile, doy: float
) -> dict[str, npt.NDArray[np.uint8] | npt.NDArray[np.uint16]]:
    """All bands of ``tile`` on day of year ``doy``: uint16 DNs for reflectances, uint8 SCL."""
    window = tile.window()
    ndvi = landscape.ndvi(doy, window)
    green_cover = np.clip(ndvi, 0.0, 1.0)
    # Red + NIR grows with vegetation (leaves scatter NIR strongly); splitting the sum by NDVI makes
    # (nir - red) / (nir + red) equal the landscape's NDVI exactly, up to DN rounding.
    total = landscape.brightness[window] * (0.8 + 0.5 * green_cover) * atmosphere.surface_gain
    red = total * (1.0 - ndvi) / 2.0
    nir = total * (1.0 + ndvi) / 2.0
    water = landscape.water(window)
    swir16 = (0.5 * nir + 0.6 * red) * np.where(water, 0.3, 1.0).astype(np.float32)
    surface10: dict[str, npt.NDArray[np.floating]] = {
        "B02": 0.6 * red + 0.012,
        "B03": 0.8 * red + 0.04 * green_cover + 0.01,
        "B04": red,
        "B08": nir,
    }
    surface20: dict[str, npt.NDArray[np.floating]] = {
        "B11": _block_mean(swir16),
        "B12": _block_mean(swir16 * (0.8 - 0.3 * green_cover)),
    }

    rows20 = slice(window[0].start // 2, window[0].stop // 2)
    cols20 = slice(window[1].start // 2, window[1].stop // 2)
    cloud20 = atmosphere.cloud_opacity[rows20, cols20]
    shadow20 = atmosphere.shadow_opacity[rows20, cols20]
    cloud10, shadow10 = _repeat2(cloud20), _repeat2(shadow20)

    out: dict[str, npt.NDArray[np.uint8] | npt.NDArray[np.uint16]] = {}
    for name, surface in surface10.items():
        out[name] = _to_dn(_through_atmosphere(surface, cloud10, shadow10, _CLOUD_REFLECTANCE[name]))
    for name, surface in surface20.items():
        out[name] = _to_dn(_through_atmosphere(surface, cloud20, shadow20, _CLOUD_REFLECTANCE[name]))
    out["SCL"] = scene_classification(_block_mean(red), _block_mean(nir), _block_mean(water) >= 0.5,
                                      cloud20, shadow20)
    return out


def scene_classification(
    red: npt.NDArray[np.floating], nir: npt.NDArray[np.floating], water: npt.NDArray[np.bool_],
    cloud_opacity: npt.NDArray[np.float32], shadow_opacity: npt.NDArray[np.float32],
) -> npt.NDArray[np.uint8]:
    """SCL from the cloud-free surface and the atmosphere; clouds win over shadows, shadows over ground."""
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.where(water, 6, np.where(ndvi >= _SCL_VEGETATION_NDVI, 4, 5)).astype(np.uint8)
    scl[shadow_opacity >= SHADOW_OPACITY] = 3
    scl[cloud_opacity > 0.0] = 10
    scl[cloud_opacity >= CLOUD_MEDIUM_OPACITY] = 8
    scl[cloud_opacity >= CLOUD_TOP_OPACITY] = 9
    return scl


def cloud_cover(scl: npt.NDArray[np.integer]) -> float:
    """``eo:cloud_cover`` of an SCL array: percentage of valid pixels in a cloud class."""
    valid = np.count_nonzero(scl != NODATA)
    cloudy = np.count_nonzero(np.isin(scl, SCL_CLOUD_CLASSES))
    return round(100.0 * cloudy / valid, 2) if valid else 0.0


def _through_atmosphere(
    surface: npt.NDArray[np.floating], cloud: npt.NDArray[np.float32], shadow: npt.NDArray[np.float32],
    cloud_reflectance: float,
) -> npt.NDArray[np.float32]:
    shaded = surface * (1.0 - SHADOW_DARKENING * shadow)
    return (shaded * (1.0 - cloud) + cloud_reflectance * cloud).astype(np.float32)


def _to_dn(reflectance: npt.NDArray[np.floating]) -> npt.NDArray[np.uint16]:
    # 0 is nodata: the darkest valid pixel is DN 1.
    return np.clip(np.rint(reflectance / REFLECTANCE_SCALE), 1, np.iinfo(np.uint16).max).astype(np.uint16)


def _block_mean(values: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """2x2 mean: a 10 m array onto the 20 m grid."""
    rows, cols = values.shape
    return values.reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3), dtype=np.float32)


def _repeat2(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A 20 m array onto the 10 m grid, each value on its 4 pixels."""
    return np.repeat(np.repeat(values, 2, axis=0), 2, axis=1)
