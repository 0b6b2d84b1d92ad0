"""Collections beyond Sentinel-2, through the real server and the real openEO client.

The shared real ``DEM`` catalog (served through ``TERRACUBE_STAC``, items without ``datetime``) and the
demo's two DEMs load as cubes without a time dimension; the demo's Sentinel-5P-like daily grids give
monthly means. Every result is checked against the COGs or the daily grids, read directly.
"""

from __future__ import annotations

import glob
import warnings

import numpy as np
import pytest
import rasterio
import rasterio.windows
import xarray as xr

from tests.conftest import shared_path

DEMO_DEMS = ("DEMO_DEM_SRTM30", "DEMO_DEM_EUDEM25")
S5P = "DEMO_SENTINEL5P_L3"
# inside the demo Sentinel-2 scene (UTM 32N E 600000-610240, N 5034880-5040000)
SCENE_BOX = {"west": 601000, "south": 5036000, "east": 603000, "north": 5038000, "crs": 32632}
OETZTAL_BOX = {"west": 10.70, "south": 46.75, "east": 10.82, "north": 46.84}
PO_VALLEY = {"west": 8.5, "south": 44.6, "east": 12.0, "north": 46.0}


def test_shared_dem_is_described_without_time_dimension(connection):
    shared_path("dem/catalog.json")
    dims = connection.describe_collection("DEM")["cube:dimensions"]
    assert "t" not in dims
    assert dims["x"]["reference_system"] == 4326 and dims["x"]["axis"] == "x"
    assert dims["bands"]["values"] == ["DEM"]


def test_shared_dem_reads_back_equal_to_its_cog(connection, tmp_path):
    cog = shared_path("dem/srtm_oetztal.tif")
    target = tmp_path / "dem.tif"
    connection.load_collection("DEM", spatial_extent=OETZTAL_BOX).download(target, format="GTiff")

    with rasterio.open(target) as got, rasterio.open(cog) as src:
        assert got.crs.to_epsg() == 4326 and got.count == 1
        # the COG's own grid: the result's corner is one of its pixel corners, the pixel size its own
        col = (got.transform.c - src.transform.c) / src.transform.a
        row = (got.transform.f - src.transform.f) / src.transform.e
        assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
        assert got.transform.a == pytest.approx(src.transform.a, rel=1e-9)
        window = rasterio.windows.Window(round(col), round(row), got.width, got.height)
        expected = src.read(1, window=window).astype("float32")
        values = got.read(1)
    assert values.shape == expected.shape == (108, 144)
    np.testing.assert_array_equal(values, expected)


def test_demo_dems_and_s5p_are_listed_and_described(connection):
    assert set(DEMO_DEMS + (S5P,)) <= set(connection.list_collection_ids())
    for collection_id in DEMO_DEMS + (S5P,):
        doc = connection.describe_collection(collection_id)
        assert doc["license"] == "proprietary" and "generated demo data" in doc["description"]
        assert doc["extent"]["spatial"]["bbox"] and doc["extent"]["temporal"]["interval"]
        bands = doc["summaries"]["eo:bands"]
        assert all(band.get("unit") for band in bands), bands
        assert all(band.get("unit") for asset in doc["item_assets"].values() for band in asset["raster:bands"])
    for collection_id in DEMO_DEMS:
        dims = connection.describe_collection(collection_id)["cube:dimensions"]
        assert set(dims) == {"x", "y", "bands"}
    s5p = connection.describe_collection(S5P)
    assert s5p["cube:dimensions"]["bands"]["values"] == ["CO", "NO2", "CH4", "QA"]
    assert s5p["cube:dimensions"]["t"]["extent"] == ["2023-01-01T00:00:00Z", "2023-01-31T00:00:00Z"]
    assert {b["name"]: b["unit"] for b in s5p["summaries"]["eo:bands"]}["NO2"] == "mol/m2"


def test_monthly_mean_of_daily_no2_agrees_with_the_days(connection, live_server, tmp_path):
    daily = connection.load_collection(S5P, spatial_extent=PO_VALLEY, temporal_extent=["2023-01-01", "2023-02-01"],
                                       bands=["NO2"])
    daily.download(tmp_path / "daily.nc", format="netCDF")
    daily.aggregate_temporal_period(period="month", reducer="mean").download(tmp_path / "monthly.nc", format="netCDF")

    days = xr.open_dataset(tmp_path / "daily.nc")["NO2"]
    month = xr.open_dataset(tmp_path / "monthly.nc")["NO2"]
    assert days.sizes["t"] == 31 and month.sizes["t"] == 1
    assert str(month.t.values[0]) == "2023-01"  # openEO's label of a month
    assert np.isnan(days.values).any() and not np.isnan(month.values).all()  # gaps on days, a full month mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels without any valid day
        expected = np.nanmean(days.values, axis=0)
    np.testing.assert_allclose(month.isel(t=0).values, expected, rtol=1e-5, equal_nan=True)
    # the days are the COGs' values
    first = sorted(glob.glob(str(live_server.data_dir / "demo" / S5P / "*" / "*_NO2.tif")))[0]
    with rasterio.open(first) as src:
        window = rasterio.windows.from_bounds(8.5, 44.6, 12.0, 46.0, src.transform).round_offsets().round_lengths()
        expected_day = src.read(1, window=window)
    np.testing.assert_array_equal(days.isel(t=0).values, expected_day)


def test_difference_of_two_demo_dems(connection, tmp_path):
    srtm = connection.load_collection("DEMO_DEM_SRTM30", spatial_extent=SCENE_BOX)
    eudem = connection.load_collection("DEMO_DEM_EUDEM25", spatial_extent=SCENE_BOX)
    (srtm - eudem.resample_cube_spatial(target=srtm, method="bilinear")).download(tmp_path / "d.tif", format="GTiff")
    with rasterio.open(tmp_path / "d.tif") as src:
        difference = src.read(1)
        assert src.crs.to_epsg() == 4326
    valid = difference[~np.isnan(difference)]
    assert 0 < np.isnan(difference).mean() < 0.05  # the SRTM-like voids
    assert -3.0 < float(np.median(valid)) < 0.0  # EU-DEM-like is 1.5 m higher
    assert 1.0 < float(valid.std()) < 6.0  # noise, shift and smoothing


def test_dem_resampled_and_merged_with_sentinel2(connection, tmp_path):
    s2 = connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=SCENE_BOX,
                                    temporal_extent=["2023-06-01", "2023-07-01"], bands=["B04", "B08"])
    dem = connection.load_collection("DEMO_DEM_SRTM30", spatial_extent=SCENE_BOX)
    merged = s2.merge_cubes(dem.resample_cube_spatial(target=s2, method="bilinear"))
    merged.download(tmp_path / "merged.nc", format="netCDF")
    ds = xr.open_dataset(tmp_path / "merged.nc", decode_coords="all")
    assert {"B04", "B08", "DEM"} <= set(ds.data_vars)
    assert ds.rio.crs.to_epsg() == 32632 and ds.sizes["x"] == ds.sizes["y"] == 200 and ds.sizes["t"] == 2
    elevation = ds["DEM"].values
    np.testing.assert_array_equal(elevation[0], elevation[1])  # the same surface on every date
    assert 30 < np.nanmedian(elevation) < 150
