"""Geometries from process arguments: GeoJSON parsing, bounding boxes, CRS handling, masks.

openEO passes geometries as GeoJSON (WGS84 by RFC 7946) and extents as
``{"west", "south", "east", "north", "crs"}``. This module turns them into shapely geometries and
native-CRS bounds, and rasterises polygons into lazy masks on a cube's grid (one small rasterise
per chunk, so the mask is never held whole in memory).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import dask.array as da
import numpy as np
import pyproj
import rasterio.features
import shapely
from affine import Affine
from pyproj.exceptions import CRSError
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from processes.core.errors import parameter_invalid

WGS84 = pyproj.CRS.from_epsg(4326)


def _key(crs: Any) -> Any:
    return crs.srs if isinstance(crs, pyproj.CRS) else crs


@functools.lru_cache(maxsize=256)
def _crs(key: Any) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(key)


def crs_of(value: Any) -> pyproj.CRS:
    """``value`` (an EPSG code, a string pyproj reads, a CRS) as a CRS, parsed once per distinct value: parsing
    costs PROJ a database lookup, and map tiles and item footprints ask for the same few CRSs over and over."""
    return value if isinstance(value, pyproj.CRS) else _crs(value)


@functools.lru_cache(maxsize=256)
def _epsg(key: Any) -> int | None:
    return _crs(key).to_epsg()


def epsg_of(crs: Any) -> int | None:
    """The EPSG code of a CRS (in any form :func:`crs_of` takes), or None; looked up once per distinct CRS
    (``CRS.to_epsg`` searches PROJ's database every time)."""
    return _epsg(_key(crs))


@functools.lru_cache(maxsize=256)
def _same(a: Any, b: Any) -> bool:
    return _crs(a) == _crs(b)


def same_crs(a: Any, b: Any) -> bool:
    """Whether two CRSs (in any form :func:`crs_of` takes) are the same, compared once per distinct pair."""
    return _same(_key(a), _key(b))


@functools.lru_cache(maxsize=256)
def _transformer(source: Any, target: Any) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(_crs(source), _crs(target), always_xy=True)


def transformer(source: Any, target: Any) -> pyproj.Transformer:
    """The always-xy transformer from ``source`` to ``target`` (in any form :func:`crs_of` takes), made once
    per distinct pair (making one costs about a millisecond; pyproj's transformers are thread-safe)."""
    return _transformer(_key(source), _key(target))

MAX_PROJECTED_COORDINATE = 1e9
"""Largest coordinate magnitude accepted in an extent: the Earth's circumference is 4e7 m, so
anything beyond this is a mistake (or an attempt to overflow the pixel arithmetic)."""


@dataclass(frozen=True)
class BoundingBox:
    west: float
    south: float
    east: float
    north: float
    crs: pyproj.CRS

    def to_crs(self, crs: pyproj.CRS) -> BoundingBox:
        """The box around this one in ``crs``; parts outside the target CRS's domain are clipped to
        its area of use (a world-sized UTM extent becomes the world in WGS84, not infinity)."""
        if same_crs(crs, self.crs):
            return self
        west, south, east, north = transformer(self.crs, crs).transform_bounds(self.west, self.south, self.east,
                                                                               self.north)
        if not all(map(math.isfinite, (west, south, east, north))):
            limit = crs_of(crs).area_of_use
            area = (limit.west, limit.south, limit.east, limit.north) if limit else (-180.0, -90.0, 180.0, 90.0)
            domain = transformer(WGS84, crs).transform_bounds(*area)
            west, south, east, north = (v if math.isfinite(v) else d
                                        for v, d in zip((west, south, east, north), domain, strict=True))
        return BoundingBox(west, south, east, north, crs_of(crs))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.west, self.south, self.east, self.north)


def parse_crs(value: Any, process: str, parameter: str) -> pyproj.CRS:
    if value is None:
        return WGS84
    try:
        return pyproj.CRS.from_user_input(value)
    except CRSError:
        raise parameter_invalid(
            process, parameter, f"'{value}' is not a valid CRS; give an EPSG code (e.g. 32632) or WKT2."
        ) from None


def parse_bbox(extent: Any, process: str, parameter: str) -> BoundingBox:
    """A bounding-box argument, validated (numbers, west < east, south < north)."""
    if not isinstance(extent, Mapping):
        raise parameter_invalid(process, parameter, "expected an object with west, south, east, north.")
    missing = [k for k in ("west", "south", "east", "north") if k not in extent]
    if missing:
        raise parameter_invalid(process, parameter, f"the bounding box lacks {', '.join(missing)}.")
    values = {}
    for key in ("west", "south", "east", "north"):
        v = extent[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise parameter_invalid(process, parameter, f"'{key}' must be a number, got {v!r}.")
        if not math.isfinite(v) or abs(v) > MAX_PROJECTED_COORDINATE:
            raise parameter_invalid(
                process, parameter, f"'{key}' is {v!r}; coordinates must be finite numbers of the CRS "
                f"(at most {MAX_PROJECTED_COORDINATE:.0e} in magnitude).")
        values[key] = float(v)
    if values["west"] >= values["east"] or values["south"] >= values["north"]:
        raise parameter_invalid(
            process,
            parameter,
            f"west ({values['west']}) must be less than east ({values['east']}) and south "
            f"({values['south']}) less than north ({values['north']}).",
        )
    crs = parse_crs(extent.get("crs"), process, parameter)
    bbox = BoundingBox(values["west"], values["south"], values["east"], values["north"], crs)
    if crs.is_geographic and (abs(bbox.south) > 90 or abs(bbox.north) > 90):
        raise parameter_invalid(process, parameter, "latitudes must lie in [-90, 90]; is the CRS right?")
    if crs.is_geographic and (bbox.west < -360 or bbox.east > 360):
        raise parameter_invalid(process, parameter, "longitudes must lie in [-180, 180]; is the CRS right?")
    return bbox


def is_geojson(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") in {
        "Polygon",
        "MultiPolygon",
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Feature",
        "FeatureCollection",
        "GeometryCollection",
    }


def geojson_geometries(value: Mapping[str, Any], process: str, parameter: str) -> list[BaseGeometry]:
    """Shapely geometries of a GeoJSON object (geometry, Feature or FeatureCollection), empty ones dropped."""
    try:
        if value["type"] == "FeatureCollection":
            geoms = [shape(f["geometry"]) for f in value.get("features", []) if f.get("geometry")]
        elif value["type"] == "Feature":
            geoms = [shape(value["geometry"])] if value.get("geometry") else []
        else:
            geoms = [shape(value)]
    except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise parameter_invalid(process, parameter, f"invalid GeoJSON: {exc}") from None
    return [g for g in geoms if not g.is_empty]


def polygons_only(geoms: list[BaseGeometry], process: str, parameter: str) -> list[BaseGeometry]:
    if not geoms:
        raise parameter_invalid(process, parameter, "the GeoJSON holds no (non-empty) geometry.")
    bad = {g.geom_type for g in geoms if g.geom_type not in ("Polygon", "MultiPolygon")}
    if bad:
        raise parameter_invalid(
            process, parameter, f"only Polygon and MultiPolygon geometries are allowed here, got {sorted(bad)}."
        )
    return geoms


def reproject_geometries(geoms: list[BaseGeometry], src: pyproj.CRS, dst: pyproj.CRS) -> list[BaseGeometry]:
    if same_crs(src, dst):
        return geoms
    return list(shapely.transform(np.asarray(geoms, dtype=object), transformer(src, dst).transform,
                                  interleaved=False))


def bbox_of(geoms: list[BaseGeometry], crs: pyproj.CRS) -> BoundingBox:
    west, south, east, north = shapely.total_bounds(np.asarray(geoms, dtype=object))
    return BoundingBox(float(west), float(south), float(east), float(north), crs)


def geometry_mask(
    geoms: list[BaseGeometry],
    y: np.ndarray,
    x: np.ndarray,
    chunks: tuple[tuple[int, ...], tuple[int, ...]],
    resolution: tuple[float, float] | None = None,
    all_touched: bool = False,
) -> da.Array:
    """Lazy boolean (y, x) array: True where the pixel centre lies inside any polygon, one rasterise
    per chunk of the geometries' part in that window.

    ``y``/``x`` are pixel-centre coordinates of a regular grid in the geometries' CRS;
    ``resolution`` (x, y) is the pixel size where an axis has a single pixel. With ``all_touched``
    every pixel a geometry touches counts, and points and lines count too.
    """
    dx = float(x[1] - x[0]) if len(x) > 1 else (resolution[0] if resolution else 1.0)
    dy = float(y[1] - y[0]) if len(y) > 1 else (resolution[1] if resolution else -1.0)
    origin = Affine.translation(float(x[0]) - dx / 2, float(y[0]) - dy / 2) @ Affine.scale(dx, dy)
    wanted = shapely.union_all(np.asarray(geoms, dtype=object))

    def block(block_info=None) -> np.ndarray:
        (y0, y1), (x0, x1) = block_info[None]["array-location"]
        window = box(*_window_bounds(origin, y0, y1, x0, x1))
        # Cutting a polygon at the window edge can leave stray lines or points where a corner
        # touches the edge; rasterio would burn those as touched pixels, so only areas are kept.
        local = [part for part in shapely.get_parts(wanted.intersection(window))
                 if not part.is_empty and (all_touched or part.geom_type in ("Polygon", "MultiPolygon"))]
        shape_ = (y1 - y0, x1 - x0)
        if not local:
            return np.zeros(shape_, dtype=bool)
        return rasterio.features.geometry_mask(
            local, out_shape=shape_, transform=origin @ Affine.translation(x0, y0), invert=True,
            all_touched=all_touched,
        )

    return da.map_blocks(block, chunks=chunks, dtype=bool, meta=np.array((), dtype=bool))


def apply_transform(transform: Affine, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``transform @ (xs, ys)`` for arrays of coordinates, all at once."""
    # Affine applies itself to arrays elementwise, but its annotations admit only tuples of floats.
    return cast(Any, transform) @ (xs, ys)


def _window_bounds(transform: Affine, y0: int, y1: int, x0: int, x1: int) -> tuple[float, float, float, float]:
    xa, ya = transform @ (x0, y0)
    xb, yb = transform @ (x1, y1)
    return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)
