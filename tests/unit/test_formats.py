"""Output formats: COG validity, band names, georeferencing, netCDF CF, JSON, options, registry."""

from __future__ import annotations

import json
import math

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from processes.cube import new_cube
from processes.cube_json import cube_from_json, cube_to_json
from processes.errors import FormatArgumentInvalid, FormatUnsupported, OpenEOError
from processes.formats import file_formats_document, get_output_format
from processes.formats.json import to_json_value

X0, Y0 = 600000.0, 5040000.0


def cube(n_t=0, bands=("B04", "B08"), size=600, dtype="float32", chunks=256):
    rng = np.random.default_rng(0)
    shape = ([n_t] if n_t else []) + [len(bands), size, size]
    values = rng.uniform(0, 1, shape).astype(dtype)
    if dtype.startswith("float"):
        values[..., 0, 0] = np.nan
    dims = {}
    if n_t:
        dims["t"] = ("temporal", pd.date_range("2023-01-01", periods=n_t, freq="15D"))
    dims["bands"] = ("bands", list(bands))
    dims["y"] = ("spatial", Y0 - 5 - 10 * np.arange(size))
    dims["x"] = ("spatial", X0 + 5 + 10 * np.arange(size))
    data = da.from_array(values, chunks=(1,) * (len(shape) - 2) + (chunks, chunks))
    return new_cube(data, dims, crs=32632), values


def write(fmt, value, tmp_path, **options):
    target = tmp_path / f"out.{get_output_format(fmt).extension}"
    get_output_format(fmt).write(value, target, options)
    return target


def test_gtiff_is_a_cloud_optimized_geotiff(tmp_path):
    c, _ = cube()
    path = write("GTiff", c, tmp_path)
    with rasterio.open(path) as src:
        assert src.driver == "GTiff"
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert src.overviews(1)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.compression is not None


def test_gtiff_values_georeferencing_and_band_names(tmp_path):
    c, values = cube()
    path = write("GTiff", c, tmp_path)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32632
        assert src.transform.c == X0 and src.transform.f == Y0 and src.transform.a == 10
        assert src.descriptions == ("B04", "B08")
        assert np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(), values)
        stats = src.tags(2)
        assert float(stats["STATISTICS_MAXIMUM"]) == pytest.approx(np.nanmax(values[1]))
        assert float(stats["STATISTICS_MEAN"]) == pytest.approx(np.nanmean(values[1]), rel=1e-6)


def test_gtiff_of_several_dates_has_a_band_per_date_and_band(tmp_path):
    c, values = cube(n_t=2, size=64)
    path = write("GTiff", c, tmp_path)
    with rasterio.open(path) as src:
        assert src.descriptions == ("B04_2023-01-01", "B08_2023-01-01", "B04_2023-01-16", "B08_2023-01-16")
        tags = src.tags(3)
        assert (tags["band"], tags["datetime"]) == ("B04", "2023-01-16T00:00:00Z")
        np.testing.assert_array_equal(src.read(4), values[1, 1])


def test_gtiff_of_one_date_keeps_the_date_as_tag(tmp_path):
    c, _ = cube(n_t=1, size=32)
    with rasterio.open(write("GTiff", c, tmp_path)) as src:
        assert src.count == 2
        assert src.tags()["datetime"] == "2023-01-01T00:00:00Z"


def test_gtiff_keeps_integer_types(tmp_path):
    c, values = cube(size=64, dtype="uint16")
    with rasterio.open(write("GTiff", c, tmp_path, compression="zstd", overviews=False)) as src:
        assert src.dtypes == ("uint16", "uint16")
        assert not src.overviews(1)
        np.testing.assert_array_equal(src.read(), values)


def test_gtiff_flips_a_south_up_cube(tmp_path):
    c, values = cube(size=32)
    flipped = c.isel(y=slice(None, None, -1))
    with rasterio.open(write("GTiff", flipped, tmp_path)) as src:
        assert src.transform.e < 0
        np.testing.assert_array_equal(src.read(1), values[0])


def test_gtiff_refuses_extra_dimensions(tmp_path):
    c, _ = cube(size=16)
    odd = c.expand_dims(other=[1, 2]).copy()
    with pytest.raises(OpenEOError, match="reduce"):
        write("GTiff", odd, tmp_path)


def test_unknown_option_and_wrong_type_are_format_argument_errors(tmp_path):
    c, _ = cube(size=16)
    with pytest.raises(FormatArgumentInvalid, match="compression, overviews"):
        write("GTiff", c, tmp_path, colour="red")
    with pytest.raises(FormatArgumentInvalid, match="tile_size"):
        write("GTiff", c, tmp_path, tile_size="big")


def test_netcdf_has_a_variable_per_band_and_cf_crs(tmp_path):
    c, values = cube(n_t=2, size=40)
    path = write("netCDF", c, tmp_path)
    ds = xr.open_dataset(path, decode_coords="all")
    assert set(ds.data_vars) == {"B04", "B08"}
    assert ds["B08"].dims == ("t", "y", "x")
    assert ds.rio.crs.to_epsg() == 32632
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds["x"].attrs["standard_name"] == "projection_x_coordinate"
    np.testing.assert_array_equal(ds["B08"].values, values[:, 1])
    assert pd.Timestamp(ds.t.values[1]) == pd.Timestamp("2023-01-16")
    with rasterio.open(f'NETCDF:"{path}":B04') as src:
        assert src.crs.to_epsg() == 32632
        assert src.transform.c == X0 and src.transform.f == Y0


def test_json_turns_nan_and_infinity_into_null():
    assert to_json_value([1.0, math.nan, math.inf, np.float32(2.5), np.int64(3)]) == [1.0, None, None, 2.5, 3]
    assert to_json_value(pd.Timestamp("2023-01-05T10:30:00Z")) == "2023-01-05T10:30:00Z"


def test_json_of_a_cube_round_trips_through_the_datacube_form(tmp_path):
    c, values = cube(n_t=2, size=3)
    path = write("JSON", c, tmp_path)
    doc = json.loads(path.read_text())
    assert doc["type"] == "datacube" and doc["order"] == ["t", "bands", "y", "x"]
    assert doc["dimensions"]["x"]["reference_system"] == "EPSG:32632"
    assert doc["dimensions"]["t"]["values"] == ["2023-01-01T00:00:00Z", "2023-01-16T00:00:00Z"]
    assert doc["data"][0][0][0][0] is None  # NaN → null
    back = cube_from_json(doc)
    assert back.dims == c.dims
    np.testing.assert_allclose(back.values, values, equal_nan=True, rtol=1e-6)


def test_cube_json_reads_the_process_test_form():
    doc = {
        "type": "datacube", "nodata": None, "order": ["bands", "x"],
        "dimensions": {"bands": {"type": "bands", "values": ["a", "b"]},
                       "x": {"type": "spatial", "axis": "x", "values": [1, 2], "reference_system": 4326}},
        "data": [[1, None], [3, 4]],
    }
    c = cube_from_json(doc)
    assert c.sel(bands="a").values.tolist()[0] == 1 and np.isnan(c.sel(bands="a").values[1])
    assert cube_to_json(c)["dimensions"]["x"]["axis"] == "x"


def test_unknown_format_lists_the_formats():
    with pytest.raises(FormatUnsupported, match="GTiff, netCDF, JSON"):
        get_output_format("BMP")
    assert get_output_format("gtiff").name == "GTiff"


def test_file_formats_document_lists_outputs_with_parameters():
    doc = file_formats_document()
    assert doc["output"]["GTiff"]["gis_data_types"] == ["raster"]
    assert doc["output"]["GTiff"]["parameters"]["compression"]["default"] == "deflate"
