"""Direct reads into same-day mosaics equal stackstac's stack + mosaic, and are used only on the grid."""

from __future__ import annotations

import numpy as np
import pytest
import stackstac

from processes.data.direct_mosaic import direct_mosaic, direct_stack
from processes.data.stac_sources import item_for_stacking, open_static
from processes.data.stack_blocks import block_chunks, mosaic_same_day, spatial_chunks

LC = "DEMO_SENTINEL2_L2A"


@pytest.fixture(scope="module")
def items(demo_data) -> list[dict]:
    (collection,) = (c for c in open_static(demo_data / "demo" / "catalog.json") if c.id == LC)
    return sorted(collection.search(None, ("2023-05-01", "2023-07-01")),
                  key=lambda i: (i["properties"]["datetime"], i["id"]))


def _stack(items, assets, bounds):
    stacking = [item_for_stacking(i) for i in items]
    chunks = block_chunks(items, len(assets), spatial_chunks(items, assets, 10.0, bounds))
    options = dict(assets=assets, epsg=32632, resolution=10.0, bounds=bounds, xy_coords="center", dtype="float32",
                   fill_value=np.float32(np.nan), rescale=False, properties=False, band_coords=False)
    try:
        stacked = stackstac.stack(stacking, chunksize=chunks, **options)
    except ValueError:  # as load_collection: items outside the bounds are dropped by stackstac
        chunks = (1, *chunks[1:])
        stacked = stackstac.stack(stacking, chunksize=chunks, **options)
    return stacking, chunks, stacked


def test_direct_mosaic_equals_the_stackstac_mosaic_across_the_tile_border(items):
    # a window straddling the border of the two tiles, not aligned to their 1024 px blocks
    first = items[0]["properties"]["proj:bbox"]
    bounds = (first[2] - 3000.0, first[3] - 4130.0, first[2] + 2500.0, first[3] - 870.0)
    stacking, chunks, stacked = _stack(items, ["B04", "B08"], bounds)
    direct = direct_mosaic(stacked, stacking, ["B04", "B08"], 32632, 10.0, chunks)
    assert direct is not None
    expected = mosaic_same_day(stacked)
    assert direct.sizes == expected.sizes
    np.testing.assert_array_equal(direct["time"].values, expected["time"].values)
    np.testing.assert_array_equal(direct.values, expected.values)
    assert np.isfinite(direct.values).mean() > 0.9


def test_assets_off_the_grid_keep_stackstacs_reader(items):
    assets = ["B04", "SCL"]  # SCL is stored at 20 m: it has to be resampled onto the 10 m grid
    first = items[0]["properties"]["proj:bbox"]
    bounds = (first[0] + 1000.0, first[3] - 2000.0, first[0] + 2000.0, first[3] - 1000.0)
    stacking, chunks, stacked = _stack(items, assets, bounds)
    assert direct_mosaic(stacked, stacking, assets, 32632, 10.0, chunks) is None
    shifted = [dict(s, assets={k: dict(v, href="https://example.org/x.tif") for k, v in s["assets"].items()})
               for s in stacking]
    assert direct_mosaic(stacked, shifted, ["B04"], 32632, 10.0, chunks) is None  # remote: not read directly


def test_direct_stack_without_stackstac_equals_the_stackstac_mosaic(items):
    first = items[0]["properties"]["proj:bbox"]
    bounds = (first[2] - 3000.0, first[3] - 4130.0, first[2] + 2500.0, first[3] - 870.0)
    stacking, chunks, stacked = _stack(items, ["B04", "B08"], bounds)
    direct = direct_stack(stacking, ["B04", "B08"], 32632, 10.0, bounds, chunks)
    assert direct is not None
    expected = mosaic_same_day(stacked)
    assert direct.sizes == expected.sizes
    for dim in ("time", "band", "y", "x"):
        np.testing.assert_array_equal(direct[dim].values, expected[dim].values)
    np.testing.assert_array_equal(direct.values, expected.values)


@pytest.mark.parametrize("resolution", [10.0, 40.0])
def test_the_aligned_reader_equals_stackstacs_reader_across_the_tile_border(items, resolution):
    from processes.data.cog_reader import AlignedReader

    first = items[0]["properties"]["proj:bbox"]
    west, north = first[2] - 3000.0, first[3] - 880.0  # on both grids: 10 m and (from the tile's corner) 40 m
    bounds = (west, north - 3200.0, west + 5600.0, north)
    stacking = [item_for_stacking(i) for i in items[:4]]
    options = dict(assets=["B04"], epsg=32632, resolution=resolution, bounds=bounds, xy_coords="center",
                   dtype="float32", fill_value=np.float32(np.nan), rescale=False, properties=False, band_coords=False,
                   chunksize=(1, 1, 1024, 1024), resampling=__import__("rasterio").enums.Resampling.nearest)
    aligned = stackstac.stack(stacking, reader=AlignedReader, **options).values
    warped = stackstac.stack(stacking, **options).values
    assert np.isfinite(aligned).mean() > 0.4
    if resolution == 10.0:
        np.testing.assert_array_equal(aligned, warped)
    else:  # decimated from the overview, GDAL's nearest pixel of each 4 × 4 block
        both = np.isfinite(aligned) & np.isfinite(warped)
        assert both.mean() > 0.4
        assert np.isfinite(aligned).sum() >= 0.95 * np.isfinite(warped).sum()
