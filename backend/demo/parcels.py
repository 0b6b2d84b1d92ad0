"""Agricultural parcels: where they lie, what grows on them, and their GeoJSON export.

Parcels are convex quadrilaterals (slightly irregular rotated rectangles) of 0.5-5 ha. To keep them
non-overlapping without pairwise geometry tests, the scene is cut into square cells and each parcel is drawn
inside its own cell; the cells chosen are those with the most open land, so parcels avoid forest, towns and
the river. The polygons kept here, in UTM, are the ones rasterised into the images; the GeoJSON written for
users is the same polygons reprojected to WGS 84.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from backend.demo.grid import DEMO_EPSG, Grid
from backend.demo.phenology import CROP_CURVES, CROP_SHARES, FloatArray

MIN_AREA_M2 = 5_000.0
MAX_AREA_M2 = 50_000.0

_MAX_CELL_PX = 40
"""Cells of 400 m hold a 5 ha parcel of aspect up to 2.5 in any rotation."""

_PARCEL_CELL_SHARE = 0.6
"""Cells are sized so that about this share of them is needed for the parcels, leaving room for the rest."""

_MAX_ASPECT = 2.5
_GAP_M = 10.0
"""Minimum distance of a parcel from its cell edge, so neighbouring parcels never touch."""


@dataclass(frozen=True)
class Parcel:
    """One agricultural parcel and the variation that sets it apart from others of its crop."""

    parcel_id: int
    """1-based id; also the parcel's value in the scene's parcel raster (0 there means no parcel)."""

    crop: str
    """Key of ``phenology.CROP_CURVES``."""

    polygon: Polygon
    """Outline in UTM (``grid.DEMO_EPSG``)."""

    doy_shift: float
    """Days this parcel's season runs late (negative: early), e.g. a later sowing date."""

    ndvi_offset: float
    """NDVI added to the crop curve all year (crop vigour, soil)."""

    brightness: float
    """Soil brightness factor around 1, scaling all reflectances of the parcel."""

    @property
    def area_m2(self) -> float:
        return float(self.polygon.area)

    def ndvi(self, doy: float | npt.ArrayLike) -> FloatArray:
        """The NDVI this parcel is painted with on day of year ``doy`` (before pixel texture)."""
        return CROP_CURVES[self.crop](np.asarray(doy, dtype=np.float64) - self.doy_shift) + self.ndvi_offset


def place_parcels(
    rng: np.random.Generator, scene: Grid, open_land: npt.NDArray[np.bool_], avoid: npt.NDArray[np.bool_],
    n_parcels: int,
) -> tuple[Parcel, ...]:
    """Draw ``n_parcels`` non-overlapping parcels on ``scene``.

    ``open_land`` marks the 10 m pixels a parcel may cover best (meadow); cells touching an ``avoid`` pixel
    (water) are never used.
    """
    if n_parcels == 0:
        return ()
    cell_px = _cell_size_px(scene, n_parcels)
    cells = _choose_cells(rng, open_land, avoid, cell_px, n_parcels)
    cell_m = cell_px * scene.resolution

    crops = list(CROP_SHARES)
    shares = np.array([CROP_SHARES[c] for c in crops])
    crop_index = rng.choice(len(crops), size=n_parcels, p=shares / shares.sum())
    # Log-uniform areas: small parcels are more common than large ones, as in real cadastres.
    areas = np.exp(rng.uniform(math.log(MIN_AREA_M2 * 1.05), math.log(MAX_AREA_M2 * 0.95), n_parcels))
    aspects = rng.uniform(1.0, _MAX_ASPECT, n_parcels)
    # Fields follow a regional orientation (roads, drainage) with some scatter; a few ignore it.
    rows, cols = cells[:, 0], cells[:, 1]
    regional = 20.0 + 25.0 * np.sin(cols * cell_m / 9_000.0) + 15.0 * np.cos(rows * cell_m / 6_000.0)
    angles = np.where(rng.random(n_parcels) < 0.15, rng.uniform(0.0, 180.0, n_parcels),
                      regional + rng.normal(0.0, 4.0, n_parcels))
    placement = rng.random((n_parcels, 2))
    corner_jitter = rng.uniform(-0.08, 0.08, (n_parcels, 4, 2))
    doy_shifts = rng.uniform(-6.0, 6.0, n_parcels)
    ndvi_offsets = rng.normal(0.0, 0.02, n_parcels)
    brightness = rng.uniform(0.9, 1.1, n_parcels)

    parcels = []
    for i in range(n_parcels):
        cell_x0 = scene.x_min + cols[i] * cell_m
        cell_y1 = scene.y_max - rows[i] * cell_m
        polygon = _parcel_polygon(
            (cell_x0 + _GAP_M, cell_y1 - cell_m + _GAP_M, cell_x0 + cell_m - _GAP_M, cell_y1 - _GAP_M),
            areas[i], aspects[i], math.radians(angles[i]), placement[i], corner_jitter[i],
        )
        parcels.append(Parcel(
            parcel_id=i + 1, crop=crops[crop_index[i]], polygon=polygon, doy_shift=float(doy_shifts[i]),
            ndvi_offset=float(ndvi_offsets[i]), brightness=float(brightness[i]),
        ))
    return tuple(parcels)


def _cell_size_px(scene: Grid, n_parcels: int) -> int:
    area_per_cell = scene.width * scene.height * scene.resolution**2 * _PARCEL_CELL_SHARE / n_parcels
    cell_px = min(_MAX_CELL_PX, int(math.sqrt(area_per_cell) // scene.resolution))
    # Below ~300 m a 5 ha parcel no longer fits; the size's area is too small for its parcel count.
    if cell_px * scene.resolution < 300:
        raise ValueError(
            f"{n_parcels} parcels do not fit on {scene.width}x{scene.height} px; "
            "use fewer parcels or larger tiles in the demo size"
        )
    return cell_px


def _choose_cells(
    rng: np.random.Generator, open_land: npt.NDArray[np.bool_], avoid: npt.NDArray[np.bool_], cell_px: int,
    n_parcels: int,
) -> npt.NDArray[np.int64]:
    """(row, col) of the ``n_parcels`` cells with the most open land, in row-major order."""
    n_rows, n_cols = open_land.shape[0] // cell_px, open_land.shape[1] // cell_px

    def per_cell(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        blocks = mask[: n_rows * cell_px, : n_cols * cell_px].reshape(n_rows, cell_px, n_cols, cell_px)
        return blocks.mean(axis=(1, 3))

    score = per_cell(open_land) + rng.uniform(0.0, 1e-3, (n_rows, n_cols))  # jitter breaks ties
    score[per_cell(avoid) > 0] = -1.0
    if np.count_nonzero(score >= 0) < n_parcels:
        raise ValueError(
            f"only {np.count_nonzero(score >= 0)} cells are free for {n_parcels} parcels; "
            "use fewer parcels or larger tiles in the demo size"
        )
    chosen = np.sort(np.argsort(-score, axis=None, kind="stable")[:n_parcels])
    return np.column_stack(np.unravel_index(chosen, score.shape)).astype(np.int64)


def _parcel_polygon(
    box: tuple[float, float, float, float], area: float, aspect: float, angle: float,
    placement: npt.NDArray[np.float64], corner_jitter: npt.NDArray[np.float64],
) -> Polygon:
    """A rotated rectangle of ``area`` inside ``box``, its corners jittered into an irregular convex quad."""
    x0, y0, x1, y1 = box
    long_side, short_side = math.sqrt(area * aspect), math.sqrt(area / aspect)
    cos, sin = abs(math.cos(angle)), abs(math.sin(angle))
    extent_x = long_side * cos + short_side * sin
    extent_y = long_side * sin + short_side * cos
    shrink = min(1.0, (x1 - x0) / extent_x, (y1 - y0) / extent_y)  # only big parcels at 45 degrees shrink
    long_side, short_side, extent_x, extent_y = (v * shrink for v in (long_side, short_side, extent_x, extent_y))
    cx = x0 + extent_x / 2 + placement[0] * (x1 - x0 - extent_x)
    cy = y0 + extent_y / 2 + placement[1] * (y1 - y0 - extent_y)

    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * [long_side / 2, short_side / 2]
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rectangle = half @ rotation.T + [cx, cy]
    jittered = rectangle + corner_jitter * short_side

    # The jitter is small enough to keep the quad convex and in range nearly always; when it does not,
    # the plain rectangle (always valid) is used.
    quad = Polygon(jittered)
    qx0, qy0, qx1, qy1 = quad.bounds
    if (quad.is_valid and abs(quad.convex_hull.area - quad.area) < 1e-6 and MIN_AREA_M2 <= quad.area <= MAX_AREA_M2
            and qx0 >= x0 and qy0 >= y0 and qx1 <= x1 and qy1 <= y1):
        return orient(quad, 1.0)
    return orient(Polygon(rectangle), 1.0)


def parcels_feature_collection(parcels: Sequence[Parcel]) -> dict[str, object]:
    """The parcels as an RFC 7946 GeoJSON FeatureCollection (WGS 84, counter-clockwise, 7 decimals)."""
    to_wgs84 = Transformer.from_crs(DEMO_EPSG, 4326, always_xy=True)

    def reproject(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lon, lat = to_wgs84.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    features = []
    for parcel in parcels:
        ring = np.round(shapely.get_coordinates(orient(shapely.transform(parcel.polygon, reproject), 1.0)), 7)
        features.append({
            "type": "Feature",
            "id": parcel.parcel_id,
            "geometry": {"type": "Polygon", "coordinates": [ring.tolist()]},
            "properties": {"parcel_id": parcel.parcel_id, "crop": parcel.crop, "area_m2": round(parcel.area_m2, 1)},
        })
    return {"type": "FeatureCollection", "features": features}


def write_parcels_geojson(parcels: Sequence[Parcel], path: Path) -> Path:
    """Write ``parcels_feature_collection(parcels)`` to ``path``."""
    path.write_text(json.dumps(parcels_feature_collection(parcels), separators=(",", ":")), encoding="utf-8")
    return path
