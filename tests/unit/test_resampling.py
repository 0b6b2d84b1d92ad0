"""resample_spatial, resample_cube_spatial and resample_cube_temporal on a real GeoTIFF and small cubes."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.warp
import rioxarray
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling

from processes.core.errors import DimensionMismatch, DimensionNotAvailable, OpenEOError
from processes.library.resampling import resample_cube_spatial, resample_cube_temporal, resample_spatial
from processes.model.raster_cube import (
    BANDS_ATTR,
    band_metadata,
    dimension_type,
    new_cube,
    with_band_metadata,
    with_dimension_type,
)
from tests.processes import run_node as run

UTM = CRS.from_epsg(32633)
ORIGIN = Affine(10, 0, 500_000, 0, -10, 5_000_000)
HEIGHT, WIDTH = 130, 170


@pytest.fixture
def geotiff(tmp_path):
    """A 2-band 10 m UTM GeoTIFF: a smooth field plus noise, with a hole of no-data."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = np.random.default_rng(3).normal(0, 0.5, (2, HEIGHT, WIDTH))
    values = np.stack([np.sin(rows / 15) * 40 + cols / 3, np.cos(cols / 20) * 30 + rows / 4]) + noise
    values = values.astype("float32")
    values[0, 40:47, 60:70] = np.nan
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=WIDTH, height=HEIGHT, count=2, dtype="float32",
                       crs=UTM, transform=ORIGIN, nodata=np.nan, tiled=True, blockxsize=64, blockysize=64) as dst:
        dst.write(values)
    return path, values


def cube_of(path) -> xr.DataArray:
    """The GeoTIFF as a typed, chunked cube (as load_collection would give it)."""
    array = rioxarray.open_rasterio(path, chunks={"x": 64, "y": 64, "band": 1}, masked=True).squeeze(drop=True)
    array = array.rename({"band": "bands"}) if "band" in array.dims else array
    array = array.assign_coords(bands=["B04", "B08"]) if "bands" in array.dims else array
    array = with_dimension_type(array, "bands", "bands")
    array = with_dimension_type(array, "y", "spatial", "y")
    array = with_dimension_type(array, "x", "spatial", "x")
    array.attrs = {}
    return with_band_metadata(array, {"B04": {"common_name": "red"}, "B08": {"common_name": "nir"}})


def direct_warp(values: np.ndarray, transform: Affine, crs: CRS, shape, method: Resampling) -> np.ndarray:
    """rasterio.warp on the whole array, one band at a time."""
    out = np.full((values.shape[0],) + tuple(shape), np.nan, dtype=values.dtype)
    for band in range(values.shape[0]):
        rasterio.warp.reproject(values[band], out[band], src_transform=ORIGIN, src_crs=UTM, src_nodata=np.nan,
                                dst_transform=transform, dst_crs=crs, dst_nodata=np.nan, resampling=method)
    return out


# --- resample_spatial -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "resampling"), [("near", Resampling.nearest), ("average", Resampling.average),
                                                    ("bilinear", Resampling.bilinear), ("max", Resampling.max)])
def test_resample_10_to_20_m_equals_a_direct_rasterio_warp(geotiff, method, resampling):
    path, values = geotiff
    result = run("resample_spatial", data=cube_of(path), resolution=20, method=method)
    assert result.shape == (2, 65, 85)
    transform = Affine(20, 0, 500_000, 0, -20, 5_000_000)
    np.testing.assert_allclose(result["x"].values, 500_010 + 20.0 * np.arange(85))
    np.testing.assert_allclose(result["y"].values, 4_999_990 - 20.0 * np.arange(65))
    expected = direct_warp(values, transform, UTM, (65, 85), resampling)
    np.testing.assert_array_equal(result.values, expected)


def test_resample_spatial_stays_lazy_and_reads_per_block(geotiff):
    path, _ = geotiff
    computed = []

    def counting(block):
        computed.append(block.shape)
        return block

    cube = cube_of(path)
    cube = cube.copy(data=cube.data.map_blocks(counting, meta=np.array((), dtype=cube.dtype)))
    result = resample_spatial(cube, resolution=5, method="bilinear")
    assert isinstance(result.data, da.Array)
    assert computed == []  # nothing read while building the graph
    with dask.config.set(scheduler="synchronous"):
        result.isel(x=slice(0, 5), y=slice(0, 5)).compute()
    assert 0 < len(computed) < cube.data.npartitions  # a corner needs only the chunks near it


def test_reprojecting_to_epsg_4326_gives_the_bounds_of_the_source(geotiff):
    path, values = geotiff
    result = run("resample_spatial", data=cube_of(path), projection=4326, method="bilinear")
    assert result.rio.crs.to_epsg() == 4326
    west, south, east, north = rasterio.warp.transform_bounds(UTM, "EPSG:4326", 500_000, 5_000_000 - 10 * HEIGHT,
                                                              500_000 + 10 * WIDTH, 5_000_000, densify_pts=21)
    left, bottom, right, top = result.rio.bounds()
    res_x, res_y = result.rio.resolution()
    assert left == pytest.approx(west) and top == pytest.approx(north)
    assert right == pytest.approx(east, abs=abs(res_x)) and right >= east - 1e-9
    assert bottom == pytest.approx(south, abs=abs(res_y)) and bottom <= south + 1e-9
    # the values match one warp of the whole array (GDAL approximates the transform per block: tiny shifts)
    expected = direct_warp(values, result.rio.transform(), CRS.from_epsg(4326), result.shape[1:], Resampling.bilinear)
    valid = np.isfinite(expected) & np.isfinite(result.values)
    assert valid.sum() > 0.9 * np.isfinite(expected).sum()
    assert np.nanmax(np.abs(result.values - expected)[valid]) < 0.5  # noise of 0.5 on a smooth field


def test_resample_spatial_keeps_bands_metadata_and_dimension_types(geotiff):
    path, _ = geotiff
    result = resample_spatial(cube_of(path), resolution=40, projection=3035)
    assert result.dims == ("bands", "y", "x")
    assert [dimension_type(result, d) for d in result.dims] == ["bands", "spatial", "spatial"]
    assert result["x"].attrs["openeo:axis"] == "x"
    assert band_metadata(result)["B08"] == {"common_name": "nir"}
    assert BANDS_ATTR in result["bands"].attrs
    assert result.rio.resolution() == pytest.approx((40, -40))


@pytest.mark.parametrize(("align", "left", "top"), [
    ("upper-left", 500_000, 5_000_000), ("lower-right", 500_000 + 1700 - 6 * 300, 4_998_700 + 5 * 300),
    ("lower-left", 500_000, 4_998_700 + 5 * 300), ("upper-right", 500_000 + 1700 - 6 * 300, 5_000_000),
])
def test_resample_spatial_aligns_the_grid_to_the_given_corner(geotiff, align, left, top):
    path, _ = geotiff
    result = resample_spatial(cube_of(path), resolution=300, align=align)
    assert result.shape == (2, 5, 6)  # 1300 m × 1700 m in 300 m pixels, covering the whole extent
    assert result.rio.transform() == pytest.approx(Affine(300, 0, left, 0, -300, top))


def test_resample_spatial_takes_separate_x_and_y_resolutions(geotiff):
    path, _ = geotiff
    result = resample_spatial(cube_of(path), resolution=[20, 50])
    assert result.shape == (2, 26, 85)
    assert result.rio.resolution() == pytest.approx((20, -50))


def test_resample_spatial_without_a_change_returns_the_cube(geotiff):
    path, _ = geotiff
    cube = cube_of(path)
    assert resample_spatial(cube, resolution=10, projection=32633) is cube


def test_resample_spatial_refuses_an_unknown_projection(geotiff):
    path, _ = geotiff
    with pytest.raises(OpenEOError) as err:
        run("resample_spatial", data=cube_of(path), projection=999999)
    assert err.value.code == "ProcessParameterInvalid"


def test_resample_spatial_warps_south_up_cubes_and_integer_cubes(geotiff):
    path, values = geotiff
    cube = cube_of(path)
    flipped = cube.isel(y=slice(None, None, -1)).fillna(0).astype("int32")
    result = resample_spatial(flipped, resolution=20, method="near")
    expected = direct_warp(np.nan_to_num(values).astype("int32").astype("float64"),
                           Affine(20, 0, 500_000, 0, -20, 5_000_000), UTM, (65, 85), Resampling.nearest)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result.values, expected)


# --- resample_cube_spatial ----------------------------------------------------------------------------------


def test_resample_cube_spatial_takes_the_grid_and_labels_of_the_target(geotiff):
    path, values = geotiff
    transform = Affine(25, 0, 500_012.5, 0, -25, 4_999_987.5)
    target = new_cube(np.zeros((3, 40, 50)), {
        "t": ("temporal", ["2023-01-01", "2023-01-02", "2023-01-03"]),
        "y": ("spatial", 4_999_987.5 - 12.5 - 25.0 * np.arange(40)),
        "x": ("spatial", 500_012.5 + 12.5 + 25.0 * np.arange(50)),
    }, crs=32633)
    result = run("resample_cube_spatial", data=cube_of(path), target=target, method="average")
    assert result.dims == ("bands", "y", "x")
    np.testing.assert_array_equal(result["x"].values, target["x"].values)
    np.testing.assert_array_equal(result["y"].values, target["y"].values)
    expected = direct_warp(values, transform, UTM, (40, 50), Resampling.average)
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)


def test_resample_cube_spatial_to_a_target_in_another_crs(geotiff):
    path, _ = geotiff
    other = resample_spatial(cube_of(path), resolution=30, projection=3035, method="bilinear")
    result = resample_cube_spatial(cube_of(path), other, method="bilinear")
    assert result.rio.crs.to_epsg() == 3035
    assert result.shape == other.shape
    np.testing.assert_array_equal(result["x"].values, other["x"].values)
    np.testing.assert_allclose(result.values, other.values, equal_nan=True)


def test_resample_cube_spatial_onto_its_own_grid_changes_nothing(geotiff):
    path, values = geotiff
    cube = cube_of(path)
    result = resample_cube_spatial(cube, cube.isel(bands=0))
    np.testing.assert_array_equal(result.values, values)


# --- resample_cube_temporal ---------------------------------------------------------------------------------


def time_cube(dates, values=None):
    values = np.arange(len(dates), dtype=float)[:, None, None] * np.ones((len(dates), 2, 2)) \
        if values is None else values
    return new_cube(da.from_array(values, chunks=(1, 2, 2)), {
        "t": ("temporal", dates), "y": ("spatial", [15.0, 5.0]), "x": ("spatial", [5.0, 15.0])}, crs=32633)


def test_resample_cube_temporal_takes_the_nearest_label_and_the_earlier_one_on_ties():
    data = time_cube(["2023-01-01", "2023-01-05", "2023-01-09", "2023-01-20"])
    target = time_cube(["2023-01-03", "2023-01-06", "2023-01-31", "2022-12-01"])
    result = run("resample_cube_temporal", data=data, target=target)
    assert list(pd.DatetimeIndex(result["t"].values)) == list(pd.DatetimeIndex(target["t"].values))
    assert dimension_type(result, "t") == "temporal"
    np.testing.assert_array_equal(result.values[:, 0, 0], [0, 1, 3, 0])  # Jan 3 is as near to Jan 1 as to Jan 5
    assert result.rio.crs.to_epsg() == 32633
    assert isinstance(result.data, da.Array)


def test_resample_cube_temporal_with_valid_within_skips_no_data_per_pixel():
    values = np.array([[[1.0, 1.0], [1.0, 1.0]], [[np.nan, 2.0], [2.0, np.nan]], [[3.0, 3.0], [np.nan, np.nan]]])
    data = time_cube(["2023-01-01", "2023-01-10", "2023-01-12"], values)
    target = time_cube(["2023-01-10", "2023-02-01"])
    result = resample_cube_temporal(data, target, valid_within=5)
    np.testing.assert_array_equal(result.values[0], [[3.0, 2.0], [2.0, np.nan]])
    assert np.isnan(result.values[1]).all()  # nothing within 5 days of Feb 1


def test_resample_cube_temporal_errors():
    data = time_cube(["2023-01-01"])
    other = data.rename(t="when")
    with pytest.raises(DimensionMismatch):
        resample_cube_temporal(data, other)
    with pytest.raises(DimensionNotAvailable):
        resample_cube_temporal(data, other, dimension="t")
    with pytest.raises(DimensionMismatch):
        resample_cube_temporal(data, data, dimension="x")
