"""Where the demo data sits on the ground: the UTM scene and the tiles cut from it.

Everything is drawn once on one *scene* grid covering all tiles, then each tile is a window of it. That is
what keeps fields, rivers and clouds continuous across the tile border, as on real adjacent Sentinel-2 tiles
of the same UTM zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from rasterio.transform import Affine

from backend.demo.sizes import DemoSize

DEMO_EPSG = 32632
"""WGS 84 / UTM zone 32N."""

SCENE_ORIGIN = (600_000.0, 5_040_000.0)
"""Upper-left corner (easting, northing) of the first tile: about 10.28 E, 45.51 N, in the Po plain between
Brescia and Cremona, farmland of maize, wheat and meadows."""

BASE_RESOLUTION = 10.0
"""Pixel size in metres of the finest grid (the 10 m Sentinel-2 bands)."""


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid in ``DEMO_EPSG``."""

    x_min: float
    """Easting of the west edge (pixel corner, not centre)."""

    y_max: float
    """Northing of the north edge."""

    resolution: float
    """Pixel size in metres, the same in x and y."""

    width: int
    """Number of columns."""

    height: int
    """Number of rows."""

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.x_min, 0.0, -self.resolution, self.y_max)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns), as numpy and ``proj:shape`` order them."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(x_min, y_min, x_max, y_max), as ``proj:bbox`` orders them."""
        return (
            self.x_min,
            self.y_max - self.height * self.resolution,
            self.x_min + self.width * self.resolution,
            self.y_max,
        )

    def coarsened(self, factor: int) -> Grid:
        """The same area with pixels ``factor`` times larger (e.g. the 20 m grid of a 10 m grid)."""
        if self.width % factor or self.height % factor:
            raise ValueError(f"a {self.width}x{self.height} grid cannot be coarsened by {factor}")
        return Grid(self.x_min, self.y_max, self.resolution * factor, self.width // factor, self.height // factor)


@dataclass(frozen=True)
class Tile:
    """One tile: its name and its window in the scene."""

    name: str
    """Short name used in item ids, ``T1`` for the westernmost tile."""

    grid: Grid
    """The tile's 10 m grid."""

    col_off: int
    """Column of the tile's west edge in the scene's 10 m grid (tiles share all rows)."""

    def window(self) -> tuple[slice, slice]:
        """Index of this tile's pixels in a scene-sized 10 m array."""
        return (slice(0, self.grid.height), slice(self.col_off, self.col_off + self.grid.width))


def scene_grid(size: DemoSize) -> Grid:
    """The 10 m grid covering all tiles of ``size``."""
    x_min, y_max = SCENE_ORIGIN
    return Grid(x_min, y_max, BASE_RESOLUTION, size.tile_px * size.n_tiles, size.tile_px)


def tiles(size: DemoSize) -> tuple[Tile, ...]:
    """The tiles of ``size``, west to east; each tile's west edge is its neighbour's east edge."""
    scene = scene_grid(size)
    return tuple(
        Tile(
            name=f"T{i + 1}",
            grid=Grid(scene.x_min + i * size.tile_px * scene.resolution, scene.y_max, scene.resolution,
                      size.tile_px, size.tile_px),
            col_off=i * size.tile_px,
        )
        for i in range(size.n_tiles)
    )
