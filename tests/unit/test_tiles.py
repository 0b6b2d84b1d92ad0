"""WebMercatorQuad tile arithmetic: bounds in EPSG:3857 and 4326, the tile of a point, URL parsing."""

from __future__ import annotations

import pyproj
import pytest

from backend.maps.tiles import ORIGIN, Tile, tile_of
from processes.core.errors import BadRequest


def test_zoom_zero_is_the_whole_square():
    assert Tile(0, 0, 0).bounds_3857() == pytest.approx((-ORIGIN, -ORIGIN, ORIGIN, ORIGIN))
    west, south, east, north = Tile(0, 0, 0).bounds_4326()
    assert (west, east) == pytest.approx((-180, 180))
    assert (south, north) == pytest.approx((-85.0511287798, 85.0511287798))


def test_known_tile_bounds():
    # mercantile.bounds(1, 1, 2) == LngLatBbox(-90.0, 0.0, 0.0, 66.51326044311186)
    assert Tile(2, 1, 1).bounds_4326() == pytest.approx((-90.0, 0.0, 0.0, 66.51326044311186))
    assert Tile(2, 1, 1).bounds_3857() == pytest.approx((-ORIGIN / 2, 0.0, 0.0, ORIGIN / 2))


def test_bounds_4326_are_the_3857_bounds_projected():
    tile = tile_of(10.35, 45.48, 14)
    to_lonlat = pyproj.Transformer.from_crs(3857, 4326, always_xy=True)
    west, south, east, north = tile.bounds_3857()
    assert tile.bounds_4326() == pytest.approx((*to_lonlat.transform(west, south), *to_lonlat.transform(east, north)))
    assert east - west == pytest.approx(tile.span) == pytest.approx(2 * ORIGIN / 2 ** 14)
    assert tile.pixel_size == pytest.approx(tile.span / 256)


def test_tile_of_a_point_holds_it():
    tile = tile_of(10.35, 45.48, 14)
    assert (tile.x, tile.y) == (8663, 5862)  # the textbook formula: asinh(tan) = log(tan + sec)
    west, south, east, north = tile.bounds_4326()
    assert west <= 10.35 < east and south <= 45.48 < north


def test_transform_maps_pixel_corners_to_the_bounds():
    tile = Tile(14, 8663, 5862)
    west, south, east, north = tile.bounds_3857()
    assert tile.transform() @ (0, 0) == pytest.approx((west, north))
    assert tile.transform() @ (256, 256) == pytest.approx((east, south))


@pytest.mark.parametrize(("z", "x", "y"), [("1", "2", "0"), ("1", "0", "-1"), ("25", "0", "0"), ("-1", "0", "0"),
                                           ("a", "0", "0"), ("3", "1.5", "0")])
def test_out_of_range_or_malformed_tiles_are_bad_requests(z, x, y):
    with pytest.raises(BadRequest):
        Tile.parse(z, x, y)


def test_parse():
    assert Tile.parse("14", "8663", "5862") == Tile(14, 8663, 5862)
