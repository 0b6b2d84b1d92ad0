"""Map views read COG overviews: the grid a view loads, and reads that never touch full-resolution blocks.

The test COG is a 0/100 checkerboard of single pixels whose overviews are averages (50 everywhere), so
a value tells which level it came from; then its full-resolution blocks are overwritten with garbage, so
that any read of one fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pystac
import pytest
import rasterio
from rasterio.transform import from_origin

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.data.load import stack_collection
from processes.data.plan import view_grid_resolution
from processes.data.stac_sources import StaticCollection

EPSG = 32632
ORIGIN = (600_005.0, 5_100_015.0)  # not a multiple of the coarse pixel sizes: the coarse grid must anchor here
SIZE = 1024


def _checkerboard_cog(path: Path) -> None:
    rows, cols = np.indices((SIZE, SIZE))
    data = np.where((rows + cols) % 2 == 0, 0, 100).astype(np.uint16) + 1  # 1/101: 0 stays free as nodata
    profile = dict(driver="COG", width=SIZE, height=SIZE, count=1, dtype="uint16", crs=f"EPSG:{EPSG}",
                   transform=from_origin(*ORIGIN, 10.0, 10.0), nodata=0, compress="DEFLATE", blocksize=256,
                   overview_resampling="average", overview_count=3)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _spoil_full_resolution_blocks(path: Path) -> None:
    with rasterio.open(path) as src:
        blocks = [(int(src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1)),
                   int(src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1)))
                  for r in range(SIZE // 256) for c in range(SIZE // 256)]
    with open(path, "r+b") as handle:
        for offset, size in blocks:
            handle.seek(offset)
            handle.write(b"\xff" * size)


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> StaticCollection:
    folder = tmp_path_factory.mktemp("overviews")
    cog = folder / "checkerboard.tif"
    _checkerboard_cog(cog)
    _spoil_full_resolution_blocks(cog)
    west, north = ORIGIN
    bbox_native = (west, north - SIZE * 10, west + SIZE * 10, north)
    lon_lat = pyproj.Transformer.from_crs(EPSG, 4326, always_xy=True).transform_bounds(*bbox_native)
    holder = pystac.Collection("CHECKERBOARD", "A checkerboard COG", pystac.Extent(
        pystac.SpatialExtent([list(lon_lat)]), pystac.TemporalExtent([[None, None]])))
    holder.summaries = pystac.Summaries({"eo:bands": [{"name": "value"}]})
    item = pystac.Item("board", geometry=None, bbox=list(lon_lat), datetime=pystac.utils.str_to_datetime(
        "2024-05-01T10:00:00Z"), properties={"proj:epsg": EPSG, "proj:shape": [SIZE, SIZE],
                                             "proj:transform": [10.0, 0.0, west, 0.0, -10.0, north]})
    item.add_asset("value", pystac.Asset(str(cog), media_type=pystac.MediaType.COG, roles=["data"]))
    holder.add_item(item)
    return StaticCollection.of_pystac(holder, str(folder))


def _load(collection: StaticCollection, view_resolution: float | None, box: tuple[float, float, float, float]):
    west, south, east, north = box
    env = ProcessEnv(collections=None, view_resolution=view_resolution)  # type: ignore[arg-type]
    extent = {"west": west, "south": south, "east": east, "north": north, "crs": EPSG}
    return stack_collection(collection, "load_collection", extent, None, None, None, env=env)


def test_a_view_grid_is_the_coarsest_power_of_two_no_coarser_than_the_view():
    utm = pyproj.CRS.from_epsg(EPSG)
    assert view_grid_resolution(10.0, utm, None) == 10.0
    assert view_grid_resolution(10.0, utm, 6.6) == 10.0  # z14 at 46°N: native
    assert view_grid_resolution(10.0, utm, 105.0) == 80.0
    assert view_grid_resolution(10.0, utm, 160.0) == 160.0
    # 1″ is about 31 m: a 120 m view takes 2″ (4″ would be 124 m, coarser than the view)
    assert view_grid_resolution(1 / 3600, pyproj.CRS.from_epsg(4326), 120.0) == pytest.approx(2 / 3600)


def test_a_zoomed_out_view_reads_the_overview_and_no_full_resolution_block(collection):
    west, north = ORIGIN
    cube = _load(collection, 80.0, (west, north - SIZE * 10, west + SIZE * 10, north))
    assert float(cube.x[1] - cube.x[0]) == 80.0
    assert cube.sizes["x"] == cube.sizes["y"] == SIZE // 8
    assert float(cube.x[0]) == west + 40.0  # anchored on the asset's corner, so overview pixels line up
    values = cube.values
    assert np.all(values == 51)  # the average of 1 and 101: the overview, not a full-resolution pixel


def test_full_resolution_reads_of_the_spoiled_file_fail(collection):
    # the control: the same load at native resolution has to read the spoiled blocks
    west, north = ORIGIN
    cube = _load(collection, None, (west, north - 2560, west + 2560, north))
    with pytest.raises((rasterio.errors.RasterioIOError, OpenEOError, RuntimeError, ValueError)):
        cube.compute()
