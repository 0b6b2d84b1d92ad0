"""Vector cube outputs: one row/feature per geometry and date, with the features' properties."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
import xvec  # noqa: F401  (registers the .xvec accessor)

from processes.formats import get_output_format
from processes.formats.json import to_json_value
from processes.model.raster_cube import with_dimension_type


@pytest.fixture
def profiles() -> xr.DataArray:
    geoms = [shapely.box(600000, 5030000, 600100, 5030100), shapely.box(600200, 5030000, 600300, 5030100)]
    values = np.array([[[0.1, 0.5], [0.2, np.nan]], [[0.3, 0.7], [0.4, 0.8]]])
    cube = xr.DataArray(values, dims=("geometry", "t", "bands"), coords={
        "geometry": geoms, "t": pd.to_datetime(["2023-05-05", "2023-05-20"]), "bands": ["B04", "B08"],
        "parcel_id": ("geometry", [11, 12]), "crop": ("geometry", ["maize", "wheat"]),
    }).xvec.set_geom_indexes("geometry", crs=32632)
    for dim, kind in (("geometry", "geometry"), ("t", "temporal"), ("bands", "bands")):
        cube = with_dimension_type(cube, dim, kind)
    return cube


def write(fmt, value, tmp_path, **options):
    target = tmp_path / f"out.{get_output_format(fmt).extension}"
    get_output_format(fmt).write(value, target, options)
    return target


def test_csv_has_a_row_per_geometry_and_date_with_properties(profiles, tmp_path):
    table = pd.read_csv(write("CSV", profiles, tmp_path))
    assert list(table.columns) == ["parcel_id", "crop", "date", "B04", "B08"]
    assert table["parcel_id"].tolist() == [11, 11, 12, 12]
    assert table["date"].tolist()[:2] == ["2023-05-05T00:00:00Z", "2023-05-20T00:00:00Z"]
    assert table["B08"].isna().tolist() == [False, True, False, False]


def test_geojson_is_wgs84_with_properties_and_date(profiles, tmp_path):
    doc = json.loads(write("GeoJSON", profiles, tmp_path).read_text())
    assert len(doc["features"]) == 4
    first = doc["features"][0]
    assert first["properties"] == {"parcel_id": 11, "crop": "maize", "date": "2023-05-05T00:00:00Z",
                                   "B04": 0.1, "B08": 0.5}
    lon, lat = first["geometry"]["coordinates"][0][0]
    assert 9 < lon < 12 and 45 < lat < 46


def test_parquet_is_geoparquet(profiles, tmp_path):
    frame = gpd.read_parquet(write("parquet", profiles, tmp_path))
    assert frame.crs.to_epsg() == 32632
    assert frame["crop"].tolist() == ["maize", "maize", "wheat", "wheat"]
    np.testing.assert_allclose(frame["B04"], [0.1, 0.2, 0.3, 0.4])


def test_json_of_a_vector_cube_is_a_list_of_records(profiles):
    records = to_json_value(profiles)
    assert records[1] == {"parcel_id": 11, "crop": "maize", "date": "2023-05-20T00:00:00Z", "B04": 0.2, "B08": None}


def test_netcdf_of_a_vector_cube_round_trips_with_xvec(profiles, tmp_path):
    path = write("netCDF", profiles, tmp_path)
    ds = xr.open_dataset(path).xvec.decode_cf()
    assert set(ds.data_vars) >= {"B04", "B08"}
    assert ds["B04"].sel(t="2023-05-20").values.tolist() == [0.2, 0.4]
    assert ds.geometry.values[0].equals(profiles.geometry.values[0])


def test_raster_formats_refuse_vector_cubes(profiles, tmp_path):
    from processes.core.errors import OpenEOError

    with pytest.raises(OpenEOError, match="GTiff"):
        write("GTiff", profiles, tmp_path)


@pytest.fixture
def many_profiles() -> xr.DataArray:
    """2,000 parcels × 5 dates × 2 bands, lazy (Dask, several blocks along time)."""
    import dask.array as da

    rng = np.random.default_rng(5)
    geoms = shapely.box(600000 + np.arange(2000) * 20.0, 5030000, 600010 + np.arange(2000) * 20.0, 5030010)
    values = rng.random((2000, 5, 2))
    values[rng.random(values.shape) < 0.1] = np.nan
    cube = xr.DataArray(da.from_array(values, chunks=(2000, 2, 2)), dims=("geometry", "t", "bands"), coords={
        "geometry": geoms, "t": pd.date_range("2023-05-01", periods=5, freq="5D"), "bands": ["B04", "B08"],
        "parcel_id": ("geometry", np.arange(2000) + 100), "crop": ("geometry", rng.choice(["maize", "wheat"], 2000)),
    }).xvec.set_geom_indexes("geometry", crs=32632)
    for dim, kind in (("geometry", "geometry"), ("t", "temporal"), ("bands", "bands")):
        cube = with_dimension_type(cube, dim, kind)
    return cube


@pytest.mark.parametrize("fmt", ["CSV", "Parquet", "GeoJSON"])
def test_big_outputs_are_written_in_batches_of_geometries(many_profiles, tmp_path, monkeypatch, fmt):
    from processes.formats import vector as vector_formats

    whole = vector_formats.vector_cube_to_frame(many_profiles)
    monkeypatch.setattr(vector_formats, "BATCH_ROWS", 777)  # 13 batches of 155 parcels
    path = write(fmt, many_profiles, tmp_path)
    got = pd.read_csv(path) if fmt == "CSV" else gpd.read_file(path) if fmt == "GeoJSON" else gpd.read_parquet(path)
    assert len(got) == len(whole) == 10_000
    assert got["parcel_id"].tolist() == whole["parcel_id"].tolist()  # geometry-major: a parcel's dates together
    assert got["date"].astype(str).str[:10].tolist() == whole["date"].str[:10].tolist()
    np.testing.assert_allclose(got["B08"], whole["B08"], equal_nan=True)
    if fmt == "Parquet":
        assert got.crs.to_epsg() == 32632 and got.geometry.equals(whole.geometry)


def test_an_empty_vector_cube_gives_an_empty_table(profiles, tmp_path):
    empty = profiles.isel(geometry=[])
    assert len(gpd.read_parquet(write("Parquet", empty, tmp_path))) == 0
    assert list(pd.read_csv(write("CSV", empty, tmp_path)).columns) == ["parcel_id", "crop", "date", "B04", "B08"]
