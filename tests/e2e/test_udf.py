"""End to end: Python UDFs through the real openEO client and the real server.

A rule-based cloud detector over six Sentinel-2 bands runs as a UDF in ``reduce_dimension`` over
``bands``; its mask is checked against the same numpy rules applied directly to the COGs. A UDF
stuck in a loop is stopped with a clear error while normal requests keep being answered.
"""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import openeo
import pystac
import pytest
import rasterio
import requests
import xarray as xr

from backend.devserver import running_server
from tests.conftest import server_env
from tests.e2e.test_python_client import utm_box_inside_first_tile

warnings.filterwarnings("ignore", category=UserWarning, module="openeo")

BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
START, END = "2023-05-01", "2023-07-01"

CLOUD_RULES = '''
import numpy as np


def cloud_rules(b02, b03, b04, b08, b11, b12):
    """Thick and thin clouds from top-of-canopy reflectances (0..1); True where cloudy."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (b08 - b04) / (b08 + b04)
    visible_min = np.minimum(np.minimum(b02, b03), b04)
    visible_max = np.maximum(np.maximum(b02, b03), b04)
    white = (visible_max - visible_min) < 0.12 * visible_max    # flat visible spectrum
    bright = visible_min > 0.20                                   # bright in every visible band
    not_vegetation = ndvi < 0.25
    not_snow = b11 > 0.15                                         # snow is dark at 1.6 um, clouds are not
    not_water = b08 > 0.10
    thick = bright & white & not_vegetation & not_snow & not_water
    blue_haze = (b02 > 0.16) & (b02 - b04 > -0.02) & (b11 - b12 > 0.0) & (ndvi < 0.4)
    return thick | blue_haze
'''

CLOUD_UDF = CLOUD_RULES + '''

import xarray


def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    bands = {b: cube.sel(bands=b).values / context["scale"] for b in ("B02", "B03", "B04", "B08", "B11", "B12")}
    cloudy = cloud_rules(bands["B02"], bands["B03"], bands["B04"], bands["B08"], bands["B11"], bands["B12"])
    valid = np.all([np.isfinite(v) for v in bands.values()], axis=0)
    mask = np.where(valid, cloudy.astype("float32"), np.nan)
    return xarray.DataArray(mask, dims=("t", "y", "x"), coords={d: cube[d] for d in ("t", "y", "x")})
'''


@pytest.fixture(scope="module")
def udf_server(demo_data):
    """The server, with a short UDF time limit so that a stuck UDF is stopped within the test."""
    env = server_env(demo_data, TERRACUBE_UDF_TIMEOUT="10")
    with running_server(env, demo_data / "server-udf.log") as root:
        yield root


@pytest.fixture
def udf_connection(udf_server):
    return openeo.connect(udf_server).authenticate_basic("demo", "demo")


def direct_cloud_mask(catalog_path, mask: xr.DataArray) -> np.ndarray:
    """The rules applied to the COGs at the pixel centres and dates of ``mask`` (nearest pixel)."""
    namespace: dict = {}
    exec(CLOUD_RULES, namespace)  # noqa: S102 - the test's own rules, the same the UDF runs
    collection = pystac.Catalog.from_file(str(catalog_path)).get_child("DEMO_SENTINEL2_L2A")
    x, y = mask["x"].values, mask["y"].values
    by_date = {}
    for item in collection.get_items():
        values = {}
        for band in BANDS:
            with rasterio.open(item.assets[band].get_absolute_href()) as src:
                left, bottom, right, top = src.bounds
                if x.min() < left or x.max() > right or y.min() < bottom or y.max() > top:
                    break
                cols = np.floor((x - left) / src.res[0]).astype(int)
                rows = np.floor((top - y) / src.res[1]).astype(int)
                data = src.read(1).astype("float64")
                data[data == src.nodata] = np.nan
                values[band] = data[np.ix_(rows, cols)] / 10000
        if len(values) == len(BANDS):
            by_date[item.datetime.strftime("%Y-%m-%d")] = values
    expected = []
    for date in mask["t"].values:
        bands = by_date[str(date)[:10]]
        cloudy = namespace["cloud_rules"](*(bands[b] for b in BANDS))
        valid = np.all([np.isfinite(v) for v in bands.values()], axis=0)
        expected.append(np.where(valid, cloudy.astype("float64"), np.nan))
    return np.stack(expected)


def test_udf_runtimes_are_listed(udf_connection):
    runtimes = udf_connection.list_udf_runtimes()
    assert "Python" in runtimes
    assert "numpy" in runtimes["Python"]["versions"][runtimes["Python"]["default"]]["libraries"]


def test_cloud_detector_udf_matches_the_rules_on_the_cogs(udf_connection, demo_data, tmp_path):
    bounds, epsg = utm_box_inside_first_tile(udf_connection, "DEMO_SENTINEL2_L2A")
    cube = udf_connection.load_collection(
        "DEMO_SENTINEL2_L2A",
        spatial_extent=dict(zip(("west", "south", "east", "north"), bounds, strict=True), crs=epsg),
        temporal_extent=[START, END],
        bands=BANDS,
    )
    udf = openeo.UDF(CLOUD_UDF, runtime="Python", context={"scale": 10000})
    target = tmp_path / "clouds.nc"
    cube.reduce_dimension(dimension="bands", reducer=udf).download(target, format="netCDF")

    ds = xr.open_dataset(target, decode_coords="all")
    mask = ds[next(iter(ds.data_vars))]
    assert mask.dims == ("t", "y", "x")
    expected = direct_cloud_mask(demo_data / "demo" / "catalog.json", mask)
    np.testing.assert_array_equal(mask.values, expected)
    valid = expected[np.isfinite(expected)]
    assert 0 < valid.mean() < 1, "the demo period should have cloudy and clear pixels"


def test_udf_error_reaches_the_user_with_its_line(udf_connection):
    bounds, epsg = utm_box_inside_first_tile(udf_connection, "DEMO_SENTINEL2_L2A", size_m=200)
    cube = udf_connection.load_collection(
        "DEMO_SENTINEL2_L2A", spatial_extent=dict(zip(("west", "south", "east", "north"), bounds, strict=True),
                                                  crs=epsg),
        temporal_extent=[START, "2023-05-15"], bands=["B04"])
    code = "import xarray\n\ndef apply_datacube(cube, context):\n    return cube / missing_name\n"
    with pytest.raises(openeo.rest.OpenEoApiError) as info:
        cube.apply(openeo.UDF(code)).download(format="netCDF")
    assert 'File "udf.py", line 4, in apply_datacube' in info.value.message
    assert "NameError" in info.value.message


def test_syntax_error_is_reported_by_validation(udf_connection):
    cube = udf_connection.load_collection("DEMO_SENTINEL2_L2A", bands=["B04"])
    errors = cube.apply(openeo.UDF("def apply_datacube(cube, context)\n    return cube\n")).validate()
    assert errors and errors[0]["code"] == "ProcessParameterInvalid"
    assert "line 1" in errors[0]["message"]


def test_normal_requests_are_served_while_a_udf_loops(udf_server, udf_connection):
    bounds, epsg = utm_box_inside_first_tile(udf_connection, "DEMO_SENTINEL2_L2A", size_m=200)
    extent = dict(zip(("west", "south", "east", "north"), bounds, strict=True), crs=epsg)
    stuck = udf_connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=extent,
                                           temporal_extent=[START, "2023-05-15"], bands=["B04"])
    loop = "def apply_datacube(cube, context):\n    while True:\n        pass\n"
    graph = stuck.apply(openeo.UDF(loop)).save_result("netCDF").flat_graph()
    headers = {"Authorization": f"Bearer {udf_connection.auth.bearer}"}
    outcome: dict = {}

    def run_stuck() -> None:
        response = requests.post(f"{udf_server}/openeo/1.2/result", json={"process": {"process_graph": graph}},
                                 headers=headers, timeout=120)
        outcome["status"], outcome["body"], outcome["done"] = response.status_code, response.json(), time.monotonic()

    thread = threading.Thread(target=run_stuck)
    thread.start()
    time.sleep(1.5)
    normal = udf_connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=extent,
                                            temporal_extent=[START, "2023-05-15"], bands=["B04", "B08"])
    for _ in range(2):
        ndvi = normal.ndvi().reduce_dimension(dimension="t", reducer="max").download(format="netCDF")
        assert len(ndvi) > 0
        assert udf_connection.describe_collection("DEMO_SENTINEL2_L2A")["id"] == "DEMO_SENTINEL2_L2A"
    served = time.monotonic()
    thread.join(timeout=120)
    assert "done" in outcome, "the stuck UDF request never finished"
    assert served < outcome["done"], "normal requests had to wait for the stuck UDF"
    assert outcome["status"] == 400 and outcome["body"]["code"] == "UdfFailed"
    assert "did not finish within 10 s" in outcome["body"]["message"]
    # and the server still runs UDFs afterwards
    fine = stuck.apply(openeo.UDF("def apply_datacube(cube, context):\n    return cube + 1\n"))
    assert len(fine.download(format="netCDF")) > 0


def test_the_cloud_detector_udf_draws_a_live_map(udf_connection, tmp_path):
    """The showcase of live maps: a UDF inside an XYZ service's graph, tile by tile, equals the same graph
    downloaded and warped onto the tile."""
    import io

    from PIL import Image
    from rasterio.warp import Resampling, reproject

    from backend.maps.tiles import tile_of

    extent = {"west": 10.33, "south": 45.47, "east": 10.36, "north": 45.49}
    cube = udf_connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=extent,
                                          temporal_extent=[START, END], bands=BANDS)
    udf = openeo.UDF(CLOUD_UDF, runtime="Python", context={"scale": 10000})
    cloudiness = cube.reduce_dimension(dimension="bands", reducer=udf).reduce_dimension(dimension="t",
                                                                                       reducer="mean")
    service = cloudiness.tiled_viewing_service(type="XYZ", configuration={"value_range": [0, 1]})
    tile = tile_of(10.345, 45.48, 14)
    response = requests.get(service.describe_service()["url"].format(z=tile.z, x=tile.x, y=tile.y), timeout=300)
    assert response.status_code == 200, response.text[:500]
    pixels = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))

    cloudiness.download(tmp_path / "cloudiness.tif", format="GTiff")
    with rasterio.open(tmp_path / "cloudiness.tif") as source:
        expected = np.full((256, 256), np.nan, dtype=np.float32)
        reproject(source.read(1).astype(np.float32), expected, src_transform=source.transform, src_crs=source.crs,
                  src_nodata=np.nan, dst_transform=tile.transform(), dst_crs="EPSG:3857", dst_nodata=np.nan,
                  resampling=Resampling.nearest)
    both = (pixels[..., 3] == 255) & ~np.isnan(expected)
    assert both.sum() > 0.9 * (~np.isnan(expected)).sum() > 10_000
    grey = np.clip(np.rint(expected[both] * 255), 0, 255)
    assert np.abs(pixels[..., 0][both].astype(int) - grey).max() <= 1
    levels = np.unique(pixels[..., 0][both])
    assert len(levels) > 2, "some pixels are cloudy on some dates only: the map shows their share"
    service.delete_service()
