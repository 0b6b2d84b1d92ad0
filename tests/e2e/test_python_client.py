"""End to end: the real openEO Python client against the real server, values checked against the COGs.

The expected values are computed directly with rasterio + numpy from the same COG files the server
reads: NDVI per date from B04/B08 (nodata 0 → NaN), then the maximum over dates.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.windows
import xarray as xr

from tests.conftest import BOLZANO_CATALOG

warnings.filterwarnings("ignore", category=UserWarning, module="openeo")


def direct_ndvi_max(catalog_path, collection_id, bounds_utm, start, end):
    """NDVI max composite straight from the COGs for a UTM box inside one tile.

    Returns (array, transform) on the native 10 m grid, pixels whose centres are inside the box.
    """
    catalog = pystac.Catalog.from_file(str(catalog_path))
    collection = catalog.get_child(collection_id)
    west, south, east, north = bounds_utm
    stack = []
    transform = None
    for item in collection.get_items():
        date = item.datetime.strftime("%Y-%m-%d")
        if not (start <= date < end):
            continue
        bands = {}
        for band in ("B04", "B08"):
            href = item.assets[band].get_absolute_href()
            with rasterio.open(href) as src:
                left, bottom, right, top = src.bounds
                if west < left or east > right or south < bottom or north > top:
                    break  # the item (tile) does not cover the box
                # pixel centres inside the box
                col0 = int(np.ceil((west - left) / 10 - 0.5))
                col1 = int(np.floor((east - left) / 10 - 0.5))
                row0 = int(np.ceil((top - north) / 10 - 0.5))
                row1 = int(np.floor((top - south) / 10 - 0.5))
                window = rasterio.windows.Window(col0, row0, col1 - col0 + 1, row1 - row0 + 1)
                values = src.read(1, window=window).astype("float64")
                values[values == src.nodata] = np.nan
                bands[band] = values
                transform = src.window_transform(window)
        if len(bands) == 2:
            stack.append((bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]))
    assert stack, "no item covers the test box"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(np.stack(stack), axis=0), transform


def utm_box_inside_first_tile(connection, collection_id, size_m=1200):
    meta = connection.describe_collection(collection_id)
    x0, x1 = meta["cube:dimensions"]["x"]["extent"]
    y0, y1 = meta["cube:dimensions"]["y"]["extent"]
    epsg = meta["cube:dimensions"]["x"]["reference_system"]
    west = x0 + 1005.0
    north = y1 - 1005.0
    return (west, north - size_m, west + size_m, north), epsg


def test_connect_and_list_collections(connection):
    ids = [c["id"] for c in connection.list_collections()]
    assert "DEMO_SENTINEL2_L2A" in ids
    assert connection.describe_account()["user_id"] == "demo"


def test_describe_collection_has_datacube_metadata(connection):
    meta = connection.describe_collection("DEMO_SENTINEL2_L2A")
    dims = meta["cube:dimensions"]
    assert dims["x"]["axis"] == "x" and dims["y"]["axis"] == "y"
    assert dims["bands"]["values"] == ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"]
    names = [b["name"] for b in meta["summaries"]["eo:bands"]]
    assert "B08" in names


@pytest.mark.parametrize("fmt, suffix", [("GTiff", "tif"), ("netCDF", "nc")])
def test_ndvi_max_composite_matches_direct_computation(connection, live_server, tmp_path, fmt, suffix):
    bounds, epsg = utm_box_inside_first_tile(connection, "DEMO_SENTINEL2_L2A")
    cube = connection.load_collection(
        "DEMO_SENTINEL2_L2A",
        spatial_extent=dict(zip(("west", "south", "east", "north"), bounds, strict=True), crs=epsg),
        temporal_extent=["2023-05-01", "2023-06-01"],
        bands=["B04", "B08"],
    )
    result = cube.ndvi().reduce_dimension(dimension="t", reducer="max")
    target = tmp_path / f"ndvi.{suffix}"
    result.download(target, format=fmt)

    demo_catalog = live_server.data_dir / "demo" / "catalog.json"
    expected, transform = direct_ndvi_max(demo_catalog, "DEMO_SENTINEL2_L2A", bounds, "2023-05-01", "2023-06-01")
    if fmt == "GTiff":
        with rasterio.open(target) as src:
            got = src.read(1)
            assert src.crs.to_epsg() == epsg
            assert src.transform.almost_equals(transform)
            assert src.profile["tiled"]
    else:
        ds = xr.open_dataset(target, decode_coords="all")
        var = next(iter(ds.data_vars))
        got = ds[var].values
        assert ds.rio.crs.to_epsg() == epsg
        assert float(ds.x[0]) == pytest.approx(transform.c + 5)
        assert float(ds.y[0]) == pytest.approx(transform.f - 5)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_bolzano_stac_catalog_ndvi_composite(connection, tmp_path):
    if not BOLZANO_CATALOG.exists():
        pytest.skip(f"needs the shared Bolzano sample at {BOLZANO_CATALOG}")
    bounds = (679720.0, 5151080.0, 680680.0, 5151920.0)
    cube = connection.load_collection(
        "SENTINEL2_L2A",
        spatial_extent={"west": bounds[0], "south": bounds[1], "east": bounds[2], "north": bounds[3], "crs": 32632},
        temporal_extent=["2022-06-01", "2022-07-01"],
        bands=["B04", "B08"],
    )
    target = tmp_path / "bolzano.tif"
    cube.ndvi().reduce_dimension(dimension="t", reducer="max").download(target, format="GTiff")
    expected, transform = direct_ndvi_max(BOLZANO_CATALOG, "SENTINEL2_L2A", bounds, "2022-06-01", "2022-07-01")
    with rasterio.open(target) as src:
        got = src.read(1)
        assert src.transform.almost_equals(transform)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_plain_value_graph_returns_json(connection):
    assert connection.execute({"add": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}) == 3


def test_json_output_of_a_small_cube(connection):
    bounds, epsg = utm_box_inside_first_tile(connection, "DEMO_SENTINEL2_L2A", size_m=40)
    cube = connection.load_collection(
        "DEMO_SENTINEL2_L2A",
        spatial_extent=dict(zip(("west", "south", "east", "north"), bounds, strict=True), crs=epsg),
        temporal_extent=["2023-05-01", "2023-06-01"],
        bands=["B04", "B08"],
    ).ndvi().reduce_dimension(dimension="t", reducer="max")
    body = json.loads(cube.download(format="JSON"))
    assert body["type"] == "datacube"
    assert body["order"] == ["y", "x"]
    # box edges fall on pixel centres, which count as inside: 5 × 5 pixels
    assert len(body["data"]) == 5 and len(body["data"][0]) == 5
