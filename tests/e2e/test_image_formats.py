"""End to end: pictures and animations through the real server and the openEO Python client.

The PNG of a scaled NDVI is checked against the GTiff of the same graph and against NDVI computed
directly from the COGs; the GIF of B04 against the netCDF of the same cube.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import xarray as xr
from openeo.rest import OpenEoApiError
from PIL import Image

from tests.e2e.test_python_client import direct_ndvi_max

warnings.filterwarnings("ignore", category=UserWarning, module="openeo")

COLLECTION = "DEMO_SENTINEL2_L2A"
EXTENT = {"west": 601000, "south": 5036000, "east": 602000, "north": 5037000, "crs": 32632}
DATES = ["2023-05-01", "2023-07-01"]


def test_file_formats_list_the_picture_formats(connection):
    output = connection.list_file_formats()["output"]
    assert {"PNG", "JPEG", "GIF", "MP4"} <= set(output)
    assert "value_range" in output["PNG"]["parameters"] and "fps" in output["GIF"]["parameters"]


def test_png_of_a_scaled_ndvi_has_its_levels_on_the_extent_grid(connection, live_server, tmp_path):
    cube = connection.load_collection(COLLECTION, spatial_extent=EXTENT, temporal_extent=DATES, bands=["B04", "B08"])
    scaled = cube.ndvi().reduce_dimension(dimension="t", reducer="max").linear_scale_range(-1, 1, 0, 255)
    scaled.download(tmp_path / "ndvi.png", format="PNG")
    scaled.download(tmp_path / "ndvi.tif", format="GTiff")

    with Image.open(tmp_path / "ndvi.png") as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("LA"))
    with rasterio.open(tmp_path / "ndvi.tif") as src:
        values = src.read(1)
    assert pixels.shape[:2] == values.shape == (100, 100)  # 1 km at 10 m, pixel centres inside the extent
    nan = np.isnan(values)
    assert (pixels[..., 1][nan] == 0).all() and (pixels[..., 1][~nan] == 255).all()
    np.testing.assert_array_equal(pixels[..., 0][~nan], np.rint(values[~nan]).astype(np.uint8))

    # and the levels are those of NDVI straight from the COGs (float64 there: rounding may differ by one)
    bounds = (EXTENT["west"], EXTENT["south"], EXTENT["east"], EXTENT["north"])
    ndvi, _ = direct_ndvi_max(live_server.data_dir / "demo" / "catalog.json", COLLECTION, bounds, *DATES)
    expected = np.rint((np.clip(ndvi, -1, 1) + 1) / 2 * 255)
    assert np.array_equal(np.isnan(ndvi), nan)
    assert np.abs(pixels[..., 0][~nan].astype(int) - expected[~nan]).max() <= 1


def test_gif_of_b04_has_a_frame_per_date_in_order(connection, tmp_path):
    b04 = connection.load_collection(COLLECTION, spatial_extent=EXTENT, temporal_extent=DATES, bands=["B04"])
    b04.download(tmp_path / "b04.gif", format="GIF", options={"value_range": [0, 3000], "fps": 4})
    b04.download(tmp_path / "b04.nc", format="netCDF")

    cube = xr.open_dataset(tmp_path / "b04.nc")["B04"].sortby("t")
    assert cube.sizes["t"] >= 3
    with Image.open(tmp_path / "b04.gif") as image:
        assert image.n_frames == cube.sizes["t"]
        assert image.size == (cube.sizes["x"], cube.sizes["y"])
        for i in range(image.n_frames):
            image.seek(i)
            frame = np.asarray(image.convert("L"))
            values = cube.isel(t=i).values.astype("float32")
            levels = np.rint(np.clip(values, 0.0, 3000.0) / 3000.0 * 255.0)
            np.testing.assert_array_equal(frame, np.where(np.isnan(values), 0, levels))


def test_png_of_raw_reflectances_is_refused_with_how_to_scale(connection, tmp_path):
    cube = connection.load_collection(COLLECTION, spatial_extent=EXTENT, temporal_extent=DATES, bands=["B04"])
    with pytest.raises(OpenEoApiError) as err:
        cube.reduce_dimension(dimension="t", reducer="max").download(tmp_path / "raw.png", format="PNG")
    assert err.value.http_status_code == 400
    assert err.value.code == "FormatUnsuitable"
    assert "linear_scale_range" in err.value.message and "value_range" in err.value.message
