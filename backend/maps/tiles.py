"""WebMercatorQuad tile arithmetic (OGC TileMatrixSet ``WebMercatorQuad``, EPSG:3857, 256-pixel tiles).

Tile ``z/x/y``: ``2**z`` columns (x, from the antimeridian eastwards) and rows (y, from the north
down) cover the square ±20037508.34 m of spherical Mercator, i.e. longitudes ±180° and latitudes
±85.0511°. The same numbers as ``mercantile``/``morecantile``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rasterio.transform import Affine

from processes.core.errors import BadRequest

ORIGIN = 20037508.342789244
"""Half the side of the WebMercatorQuad square, in metres of EPSG:3857 (π × 6378137)."""
TILE_SIZE = 256
MAX_ZOOM = 24


@dataclass(frozen=True)
class Tile:
    z: int
    x: int
    y: int

    @classmethod
    def parse(cls, z: str, x: str, y: str) -> Tile:
        """A tile from URL parts; ``BadRequest`` (400) unless they are whole numbers within the matrix."""
        try:
            tile = cls(int(z), int(x), int(y))
        except ValueError:
            raise BadRequest(f"Tile {z}/{x}/{y}: z, x and y must be whole numbers.") from None
        if not 0 <= tile.z <= MAX_ZOOM:
            raise BadRequest(f"Tile {z}/{x}/{y}: the zoom level must be 0–{MAX_ZOOM}.")
        top = 2 ** tile.z - 1
        if not (0 <= tile.x <= top and 0 <= tile.y <= top):
            raise BadRequest(f"Tile {z}/{x}/{y}: at zoom {tile.z}, x and y must be 0–{top}.")
        return tile

    @property
    def span(self) -> float:
        """The side of the tile in EPSG:3857 metres."""
        return 2 * ORIGIN / 2 ** self.z

    @property
    def pixel_size(self) -> float:
        """The side of one of the tile's pixels in EPSG:3857 metres."""
        return self.span / TILE_SIZE

    @property
    def ground_pixel_size(self) -> float:
        """The side of one of the tile's pixels in metres on the ground, at the tile's middle latitude
        (Mercator stretches distances by 1 / cos(latitude))."""
        _, south, _, north = self.bounds_4326()
        return self.pixel_size * math.cos(math.radians((south + north) / 2))

    def bounds_3857(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in EPSG:3857."""
        west = -ORIGIN + self.x * self.span
        north = ORIGIN - self.y * self.span
        return west, north - self.span, west + self.span, north

    def bounds_4326(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in longitude/latitude degrees."""
        west, south, east, north = self.bounds_3857()
        return mercator_to_lon(west), mercator_to_lat(south), mercator_to_lon(east), mercator_to_lat(north)

    def transform(self) -> Affine:
        """The affine transform of the tile's pixel grid in EPSG:3857 (north up)."""
        west, _, _, north = self.bounds_3857()
        return Affine(self.pixel_size, 0.0, west, 0.0, -self.pixel_size, north)


def mercator_to_lon(x: float) -> float:
    return math.degrees(x / ORIGIN * math.pi)


def mercator_to_lat(y: float) -> float:
    return math.degrees(2 * math.atan(math.exp(y / ORIGIN * math.pi)) - math.pi / 2)


def tile_of(lon: float, lat: float, z: int) -> Tile:
    """The tile at zoom ``z`` that holds the point (the usual slippy-map formula)."""
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return Tile(z, min(max(x, 0), n - 1), min(max(y, 0), n - 1))
