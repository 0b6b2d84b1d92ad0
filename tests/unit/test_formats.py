"""Output formats: the registry and options, GTiff (COG), netCDF (CF), JSON — on real files in tmp_path."""

from __future__ import annotations

import datetime
import json
import math
import threading

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import xarray as xr

from processes.core.errors import FormatArgumentInvalid, FormatUnsupported, OpenEOError
from processes.formats import (
    OutputFormat,
    file_formats_document,
    get_output_format,
    output_formats,
)
from processes.formats import json as json_format
from processes.formats.json import to_json_value
from processes.model.raster_cube import new_cube, with_band_metadata, with_dimension_type

X0, Y0 = 600000.0, 5040000.0
DATES = ["2023-01-01", "2023-01-16", "2023-01-31"]


def make_cube(n_t=0, bands=("B04", "B08"), size=600, dtype="float32", chunks=256, crs=32632, dates=DATES):
    """A dask-backed cube on a 10 m UTM grid (pixel centres), random values, NaN in the corner for floats."""
    rng = np.random.default_rng(0)
    shape = ([n_t] if n_t else []) + ([len(bands)] if bands else []) + [size, size]
    if dtype == "bool":
        values = rng.uniform(0, 1, shape) > 0.5
    else:
        values = (rng.uniform(0, 1, shape) * (1000 if np.dtype(dtype).kind in "iu" else 1)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        values[..., 0, 0] = np.nan
    dims = {}
    if n_t:
        dims["t"] = ("temporal", list(dates)[:n_t])
    if bands:
        dims["bands"] = ("bands", list(bands))
    dims["y"] = ("spatial", Y0 - 5 - 10 * np.arange(size))
    dims["x"] = ("spatial", X0 + 5 + 10 * np.arange(size))
    data = da.from_array(values, chunks=(1,) * (len(shape) - 2) + (chunks, chunks))
    return new_cube(data, dims, crs=crs), values


def write(fmt, value, tmp_path, **options):
    target = tmp_path / f"out.{get_output_format(fmt).extension}"
    get_output_format(fmt).write(value, target, options)
    return target


# --- registry and options -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["GTiff", "GTIFF", "gtiff", "GeoTIFF"])
def test_format_names_are_case_insensitive(name):
    assert get_output_format(name).name == "GTiff"


def test_unknown_format_is_format_unsupported_listing_the_formats():
    with pytest.raises(FormatUnsupported, match="'BMP' is not supported.*GTiff, netCDF, JSON"):
        get_output_format("BMP")


def test_output_formats_are_keyed_by_canonical_name():
    formats = output_formats()
    assert {"GTiff", "netCDF", "JSON"} <= set(formats)
    assert all(isinstance(fmt, OutputFormat) and key == fmt.name for key, fmt in formats.items())


def test_registry_refuses_two_formats_with_the_same_name():
    from processes.formats.registry import _registry

    twin = OutputFormat(name="gtiff", title="", description="", gis_data_types=("raster",), media_type="",
                        extension="tif", writer=lambda value, target, options: None)
    with pytest.raises(ValueError, match="registered twice"):
        _registry(get_output_format("GTiff"), twin)


def test_file_formats_document_lists_outputs_with_parameters():
    doc = file_formats_document()
    assert doc["input"] == {}
    gtiff = doc["output"]["GTiff"]
    assert gtiff["gis_data_types"] == ["raster"]
    assert gtiff["parameters"]["compression"] == {
        "type": "string", "description": "Compression of the tiles (lossless).",
        "enum": ["deflate", "lzw", "zstd", "none"], "default": "deflate"}
    assert doc["output"]["netCDF"]["parameters"]["compression"]["default"] is True
    assert json.loads(json.dumps(doc)) == doc


def test_file_formats_document_takes_the_input_formats():
    assert file_formats_document({"GTiff": {"gis_data_types": ["raster"], "parameters": {}}})["input"] == {
        "GTiff": {"gis_data_types": ["raster"], "parameters": {}}}


def test_output_format_is_immutable():
    fmt = get_output_format("GTiff")
    with pytest.raises(AttributeError):
        fmt.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        fmt.parameters["compression"]["default"] = "lzw"  # type: ignore[index]


def test_options_get_defaults_and_canonical_spelling():
    options = get_output_format("GTiff").options({"COMPRESSION": "ZSTD"})
    assert options == {"compression": "zstd", "overviews": True, "tile_size": 256, "overview_resampling": None}


def test_unknown_option_names_the_option_and_the_supported_ones():
    with pytest.raises(FormatArgumentInvalid, match="no option 'colour'.*compression, overviews, tile_size"):
        get_output_format("GTiff").options({"colour": "red"})


@pytest.mark.parametrize("option, value", [("tile_size", "big"), ("tile_size", True), ("overviews", "yes"),
                                           ("compression", 3), ("compression", None)])
def test_option_of_the_wrong_type_is_format_argument_invalid(option, value):
    with pytest.raises(FormatArgumentInvalid, match=option):
        get_output_format("GTiff").options({option: value})


def test_option_outside_its_enum_lists_the_allowed_values():
    with pytest.raises(FormatArgumentInvalid, match="tile_size.*64, 128, 256"):
        get_output_format("GTiff").options({"tile_size": 300})
    with pytest.raises(FormatArgumentInvalid, match="deflate, lzw, zstd, none"):
        get_output_format("GTiff").options({"compression": "jpeg"})


def test_check_refuses_unsuitable_data_before_computing():
    with pytest.raises(OpenEOError) as err:
        get_output_format("GTiff").check(42, {})
    assert err.value.code == "FormatUnsuitable"
    assert "raster data cube" in err.value.message


# --- GTiff --------------------------------------------------------------------------------------------


def test_gtiff_is_a_cloud_optimized_geotiff(tmp_path):
    cube, _ = make_cube()
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.driver == "GTiff"
        assert src.profile["tiled"] and src.block_shapes == [(256, 256), (256, 256)]
        assert src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.compression.name == "deflate"


def test_gtiff_leaves_only_the_target_file(tmp_path):
    cube, _ = make_cube(size=64)
    write("GTiff", cube, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_gtiff_values_and_georeferencing_equal_the_cube(tmp_path):
    cube, values = make_cube()
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.crs.to_epsg() == 32632
        assert tuple(src.transform)[:6] == (10.0, 0.0, X0, 0.0, -10.0, Y0)
        assert (src.width, src.height, src.count) == (600, 600, 2)
        assert src.dtypes == ("float32", "float32")
        np.testing.assert_array_equal(src.read(), values)


def test_gtiff_bands_are_described_by_their_labels(tmp_path):
    cube, _ = make_cube(size=32, bands=("B04", "B08", "SCL"))
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.descriptions == ("B04", "B08", "SCL")
        assert src.tags(3)["band"] == "SCL"


def test_gtiff_band_tags_carry_band_metadata(tmp_path):
    cube, _ = make_cube(size=32)
    cube = with_band_metadata(cube, {"B04": {"common_name": "red", "center_wavelength": 0.665}, "B08": {}})
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.tags(1)["common_name"] == "red" and src.tags(1)["center_wavelength"] == "0.665"


def test_gtiff_float_nodata_is_nan(tmp_path):
    cube, _ = make_cube(size=32)
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert math.isnan(src.nodata)
        assert src.read_masks(1)[0, 0] == 0 and src.read_masks(1)[0, 1] == 255


def test_gtiff_bands_carry_statistics_of_the_valid_pixels(tmp_path):
    cube, values = make_cube()
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        stats = src.tags(2)
    assert float(stats["STATISTICS_MINIMUM"]) == np.nanmin(values[1])
    assert float(stats["STATISTICS_MAXIMUM"]) == np.nanmax(values[1])
    assert float(stats["STATISTICS_MEAN"]) == pytest.approx(np.nanmean(values[1].astype("float64")), rel=1e-12)
    assert float(stats["STATISTICS_STDDEV"]) == pytest.approx(np.nanstd(values[1].astype("float64")), rel=1e-9)
    assert float(stats["STATISTICS_VALID_PERCENT"]) == pytest.approx(100 * (1 - 1 / 600**2))


def test_gtiff_of_several_dates_has_a_band_per_date_and_band_date_major(tmp_path):
    cube, values = make_cube(n_t=2, size=64)
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.descriptions == ("B04_2023-01-01", "B08_2023-01-01", "B04_2023-01-16", "B08_2023-01-16")
        assert src.tags(3)["band"] == "B04" and src.tags(3)["datetime"] == "2023-01-16T00:00:00Z"
        np.testing.assert_array_equal(src.read(2), values[0, 1])
        np.testing.assert_array_equal(src.read(3), values[1, 0])


def test_gtiff_names_dates_with_their_time_when_not_midnight(tmp_path):
    cube, _ = make_cube(n_t=2, size=16, dates=["2023-01-01T10:30:00Z", "2023-01-01T10:40:00Z"])
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.descriptions[:2] == ("B04_2023-01-01T10:30:00Z", "B08_2023-01-01T10:30:00Z")
        assert src.tags(4)["datetime"] == "2023-01-01T10:40:00Z"


def test_gtiff_names_period_labels_as_they_are(tmp_path):
    cube, _ = make_cube(n_t=2, size=16)
    cube = cube.assign_coords(t=xr.DataArray(["2023-djf", "2023-mam"], dims="t", attrs=cube["t"].attrs))
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.descriptions[1:3] == ("B08_2023-djf", "B04_2023-mam")
        assert src.tags(3)["period"] == "2023-mam" and "datetime" not in src.tags(3)


def test_gtiff_of_one_date_drops_the_time_dimension_and_keeps_the_date_as_tag(tmp_path):
    cube, values = make_cube(n_t=1, size=32)
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.count == 2 and src.descriptions == ("B04", "B08")
        assert src.tags()["datetime"] == "2023-01-01T00:00:00Z"
        np.testing.assert_array_equal(src.read(), values[0])


def test_gtiff_without_bands_dimension_is_one_band_named_after_the_cube(tmp_path):
    cube, values = make_cube(size=32, bands=())
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.count == 1 and src.descriptions == ("data",)
        np.testing.assert_array_equal(src.read(1), values)
    with rasterio.open(write("GTiff", cube.rename("ndvi"), tmp_path)) as src:
        assert src.descriptions == ("ndvi",)


def test_gtiff_keeps_integer_types_and_takes_options(tmp_path):
    cube, values = make_cube(size=64, dtype="uint16")
    with rasterio.open(write("GTiff", cube, tmp_path, compression="zstd", overviews=False)) as src:
        assert src.dtypes == ("uint16", "uint16")
        assert src.compression.name == "zstd"
        assert src.overviews(1) == [] and src.nodata is None
        np.testing.assert_array_equal(src.read(), values)


def test_gtiff_integer_nodata_comes_from_the_fill_value(tmp_path):
    cube, _ = make_cube(size=32, dtype="int16")
    cube.attrs["_FillValue"] = -9999
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.nodata == -9999


def test_gtiff_stores_booleans_as_uint8(tmp_path):
    cube, values = make_cube(size=32, dtype="bool")
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.dtypes[0] == "uint8"
        np.testing.assert_array_equal(src.read(), values.astype("uint8"))


def test_gtiff_narrows_int64_whose_values_fit_int32(tmp_path):
    cube, values = make_cube(size=32, dtype="int64")
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.dtypes[0] == "int32"
        assert src.descriptions == ("B04", "B08") and "STATISTICS_MEAN" in src.tags(1)
        np.testing.assert_array_equal(src.read(), values)


def test_gtiff_keeps_int64_whose_values_need_it(tmp_path):
    cube, values = make_cube(size=16, dtype="int64")
    cube = cube + 2**40
    with rasterio.open(write("GTiff", cube, tmp_path)) as src:
        assert src.dtypes[0] == "int64"
        np.testing.assert_array_equal(src.read(), values + 2**40)


def test_gtiff_overviews_of_integers_use_nearest_and_of_floats_average(tmp_path):
    stripes = np.tile(np.array([0, 100], dtype="uint8"), (512, 256))  # columns alternate 0, 100
    dims = {"y": ("spatial", Y0 - 5 - 10 * np.arange(512)), "x": ("spatial", X0 + 5 + 10 * np.arange(512))}
    for dtype in ("uint8", "float32"):
        cube = new_cube(da.from_array(stripes.astype(dtype), chunks=256), dims, crs=32632)
        (tmp_path / dtype).mkdir()
        with rasterio.open(write("GTiff", cube, tmp_path / dtype), overview_level=0) as overview:
            seen = set(np.unique(overview.read(1)).tolist())
        assert seen <= {0, 100} if dtype == "uint8" else seen == {50}


def test_gtiff_tile_size_sets_the_block_shape(tmp_path):
    cube, _ = make_cube(size=600)
    with rasterio.open(write("GTiff", cube, tmp_path, tile_size=512, compression="none")) as src:
        assert src.block_shapes[0] == (512, 512) and src.compression is None


def test_gtiff_flips_a_south_up_cube(tmp_path):
    cube, values = make_cube(size=32)
    with rasterio.open(write("GTiff", cube.isel(y=slice(None, None, -1)), tmp_path)) as src:
        assert tuple(src.transform)[:6] == (10.0, 0.0, X0, 0.0, -10.0, Y0)
        np.testing.assert_array_equal(src.read(1), values[0])


def test_gtiff_of_numpy_backed_cube(tmp_path):
    cube, values = make_cube(size=32)
    with rasterio.open(write("GTiff", cube.compute(), tmp_path)) as src:
        np.testing.assert_array_equal(src.read(), values)


def test_gtiff_computes_each_chunk_once_window_by_window(tmp_path):
    cube, values = make_cube(n_t=2, size=600, chunks=200)
    computed: list[tuple[int, ...]] = []
    lock = threading.Lock()

    def record(block):
        with lock:
            computed.append(block.shape)
        return block

    counted = cube.copy(data=cube.data.map_blocks(record, meta=np.array((), dtype=cube.dtype)))
    with rasterio.open(write("GTiff", counted, tmp_path)) as src:
        np.testing.assert_array_equal(src.read(4), values[1, 1])
    # 2 dates × 2 bands × 3 × 3 windows, each computed exactly once; never the whole cube at once
    assert len(computed) == 36 and set(computed) == {(1, 1, 200, 200)}


def test_gtiff_refuses_extra_dimensions_naming_them(tmp_path):
    cube, _ = make_cube(size=16)
    odd = cube.expand_dims(other=[1, 2]).copy()
    with pytest.raises(OpenEOError, match="other.*reduce_dimension") as err:
        write("GTiff", odd, tmp_path)
    assert err.value.code == "FormatUnsuitable"


@pytest.mark.parametrize("value", [42, {"a": 1}, xr.DataArray([1, 2])])
def test_gtiff_refuses_values_that_are_no_raster_cube(value, tmp_path):
    with pytest.raises(OpenEOError, match="GTiff needs a raster data cube") as err:
        write("GTiff", value, tmp_path)
    assert err.value.code == "FormatUnsuitable"


def test_gtiff_refuses_an_empty_cube(tmp_path):
    cube, _ = make_cube(size=16)
    with pytest.raises(OpenEOError, match="empty") as err:
        write("GTiff", cube.isel(x=slice(0, 0)), tmp_path)
    assert err.value.code == "DataCubeEmpty"


def test_gtiff_refuses_an_irregular_grid(tmp_path):
    cube, _ = make_cube(size=16)
    with pytest.raises(OpenEOError, match="x coordinates are not evenly spaced.*resample_spatial"):
        write("GTiff", cube.isel(x=[0, 1, 3, 4]), tmp_path)


def test_gtiff_of_a_single_pixel_takes_the_size_from_the_other_axis(tmp_path):
    cube, values = make_cube(size=16)
    with rasterio.open(write("GTiff", cube.isel(y=[3]), tmp_path)) as src:
        assert tuple(src.transform)[:6] == (10.0, 0.0, X0, 0.0, -10.0, Y0 - 30)
        np.testing.assert_array_equal(src.read(1), values[0, 3:4])


# --- netCDF -------------------------------------------------------------------------------------------


def test_netcdf_has_a_variable_per_band_with_values_and_time(tmp_path):
    cube, values = make_cube(n_t=2, size=40)
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert set(ds.data_vars) == {"B04", "B08"}
        assert ds["B08"].dims == ("t", "y", "x") and ds["B08"].attrs["long_name"] == "B08"
        np.testing.assert_array_equal(ds["B08"].values, values[:, 1])
        np.testing.assert_array_equal(ds["x"].values, cube["x"].values)
        np.testing.assert_array_equal(ds["y"].values, cube["y"].values)
        assert list(ds["t"].values) == list(pd.to_datetime(DATES[:2]).values)
        assert ds["t"].encoding["units"].startswith("seconds since 1970-01-01")


def test_netcdf_writes_period_labels_as_text(tmp_path):
    # aggregate_temporal_period labels its time steps "2023-05", "2023-06": text, not CF time
    cube, values = make_cube(n_t=2, size=20)
    cube = with_dimension_type(cube.assign_coords(t=np.array(["2023-05", "2023-06"], dtype=object)), "t", "temporal")
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert list(ds["t"].values) == ["2023-05", "2023-06"]
        assert ds["t"].attrs["openeo_dimension_type"] == "temporal"
        np.testing.assert_array_equal(ds["B04"].values, values[:, 0])


def test_netcdf_is_cf_with_a_grid_mapping_xarray_reads(tmp_path):
    cube, _ = make_cube(n_t=2, size=40)
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert list(ds.data_vars) == ["B04", "B08"] and "spatial_ref" in ds.coords
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.rio.crs.to_epsg() == 32632 and ds["B04"].rio.crs.to_epsg() == 32632
        assert (ds["B04"].attrs | ds["B04"].encoding)["grid_mapping"] == "spatial_ref"
        assert "crs_wkt" in ds["spatial_ref"].attrs and "spatial_ref" in ds["spatial_ref"].attrs
        assert {k: ds["x"].attrs[k] for k in ("standard_name", "units", "axis")} == {
            "standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}
        assert ds["y"].attrs["standard_name"] == "projection_y_coordinate" and ds["y"].attrs["axis"] == "Y"
        assert ds["t"].attrs["standard_name"] == "time"
        assert not any(k.startswith("openeo:") for v in ds.variables.values() for k in v.attrs)


def test_netcdf_band_opens_in_gdal_with_crs_and_transform(tmp_path):
    cube, values = make_cube(size=40)
    path = write("netCDF", cube, tmp_path)
    with rasterio.open(f'NETCDF:"{path}":B04') as src:
        assert src.crs.to_epsg() == 32632
        assert tuple(src.transform)[:6] == pytest.approx((10.0, 0.0, X0, 0.0, -10.0, Y0))
        np.testing.assert_array_equal(src.read(1), values[0])


def test_netcdf_float_fill_value_is_nan_and_compression_is_zlib(tmp_path):
    cube, values = make_cube(size=40)
    with xr.open_dataset(write("netCDF", cube, tmp_path), mask_and_scale=False, decode_coords="all") as ds:
        assert math.isnan(ds["B04"].attrs["_FillValue"]) and math.isnan(ds["B04"].values[0, 0])
        assert ds["B04"].encoding["zlib"] and ds["B04"].encoding["complevel"] == 4
        assert ds["B04"].dtype == np.float32
    with xr.open_dataset(write("netCDF", cube, tmp_path, compression=False), decode_coords="all") as ds:
        assert not ds["B04"].encoding["zlib"]


def test_netcdf_variable_names_are_valid_and_distinct(tmp_path):
    cube, values = make_cube(size=8, bands=("B8A", "nir-08", "nir 08", "1"))
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert list(ds.data_vars) == ["B8A", "nir_08", "nir_08_2", "1"]
        assert [ds[v].attrs["long_name"] for v in ds.data_vars] == ["B8A", "nir-08", "nir 08", "1"]
        np.testing.assert_array_equal(ds["1"].values, values[3])


def test_netcdf_without_bands_dimension_has_one_variable_named_after_the_cube(tmp_path):
    cube, values = make_cube(size=8, bands=())
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert list(ds.data_vars) == ["data"]
    with xr.open_dataset(write("netCDF", cube.rename("ndvi"), tmp_path), decode_coords="all") as ds:
        assert list(ds.data_vars) == ["ndvi"]
        np.testing.assert_array_equal(ds["ndvi"].values, values)


def test_netcdf_of_a_geographic_cube_has_latitude_and_longitude(tmp_path):
    dims = {"y": ("spatial", [46.5, 46.4]), "x": ("spatial", [11.1, 11.2, 11.3])}
    cube = new_cube(da.zeros((2, 3), dtype="float32"), dims, crs=4326)
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert ds["x"].attrs["standard_name"] == "longitude" and ds["x"].attrs["units"] == "degrees_east"
        assert ds["y"].attrs["standard_name"] == "latitude" and ds["y"].attrs["units"] == "degrees_north"
        assert ds.rio.crs.to_epsg() == 4326


def test_netcdf_keeps_integer_types_without_a_made_up_fill_value(tmp_path):
    cube, values = make_cube(size=8, dtype="int16")
    with xr.open_dataset(write("netCDF", cube, tmp_path), decode_coords="all") as ds:
        assert ds["B04"].dtype == np.int16 and "_FillValue" not in ds["B04"].encoding
        np.testing.assert_array_equal(ds["B04"].values, values[0])


def test_netcdf_computes_each_chunk_once(tmp_path):
    cube, values = make_cube(n_t=2, size=300, chunks=100)
    computed = []
    counted = cube.copy(data=cube.data.map_blocks(lambda b: computed.append(b.shape) or b,
                                                  meta=np.array((), dtype=cube.dtype)))
    with xr.open_dataset(write("netCDF", counted, tmp_path), decode_coords="all") as ds:
        np.testing.assert_array_equal(ds["B08"].values, values[:, 1])
    assert len(computed) == 2 * 2 * 9 and set(computed) == {(1, 1, 100, 100)}


@pytest.mark.parametrize("value", [42, xr.DataArray([1, 2])])
def test_netcdf_refuses_values_that_are_no_cube(value, tmp_path):
    with pytest.raises(OpenEOError, match="netCDF output needs a raster data cube") as err:
        write("netCDF", value, tmp_path)
    assert err.value.code == "FormatUnsuitable"


# --- JSON ---------------------------------------------------------------------------------------------


def test_json_keeps_plain_values():
    value = {"a": [1, 2.5, "x", True, None], "b": {"c": False}}
    assert to_json_value(value) == value


def test_json_turns_nan_and_infinity_into_null():
    assert to_json_value([1.0, math.nan, math.inf, -math.inf, np.float32("nan")]) == [1.0, None, None, None, None]


def test_json_turns_numpy_values_into_numbers_and_lists():
    assert to_json_value([np.float32(2.5), np.int64(3), np.bool_(True)]) == [2.5, 3, True]
    assert to_json_value(np.array([[1, 2], [3, 4]], dtype="uint8")) == [[1, 2], [3, 4]]
    assert to_json_value(np.array([1.5, np.nan])) == [1.5, None]
    assert type(to_json_value(np.int64(3))) is int


def test_json_writes_datetimes_as_iso_8601_in_utc():
    assert to_json_value(pd.Timestamp("2023-01-05T10:30:00Z")) == "2023-01-05T10:30:00Z"
    assert to_json_value(pd.Timestamp("2023-01-05T11:30:00+01:00")) == "2023-01-05T10:30:00Z"
    assert to_json_value(datetime.datetime(2023, 1, 5, 10, 30)) == "2023-01-05T10:30:00Z"
    assert to_json_value(np.datetime64("2023-01-05T10:30:00.500")) == "2023-01-05T10:30:00.5Z"
    assert to_json_value(np.array(["2023-01-05", "NaT"], dtype="datetime64[ns]")) == ["2023-01-05T00:00:00Z", None]
    assert to_json_value(datetime.date(2023, 1, 5)) == "2023-01-05"


def test_json_of_a_labeled_array_and_a_zero_dimensional_array():
    assert to_json_value(xr.DataArray(da.from_array(np.array([1.0, np.nan])), dims=("__array__",))) == [1.0, None]
    assert to_json_value(xr.DataArray(np.float64(7.5))) == 7.5


def test_json_of_a_geometry_is_geojson():
    assert to_json_value(shapely.Point(1, 2)) == {"type": "Point", "coordinates": [1.0, 2.0]}


def test_json_of_a_raster_cube_is_the_datacube_form(tmp_path):
    cube, values = make_cube(n_t=2, size=3)
    doc = json.loads(write("JSON", cube, tmp_path).read_text(encoding="utf-8"))
    assert doc["type"] == "datacube" and doc["order"] == ["t", "bands", "y", "x"]
    assert doc["dimensions"]["x"] == {"type": "spatial", "axis": "x", "values": [X0 + 5, X0 + 15, X0 + 25],
                                      "reference_system": "EPSG:32632"}
    assert doc["dimensions"]["t"] == {"type": "temporal", "values": ["2023-01-01T00:00:00Z", "2023-01-16T00:00:00Z"]}
    assert doc["dimensions"]["bands"] == {"type": "bands", "values": ["B04", "B08"]}
    assert doc["nodata"] is None  # NaN → null
    assert doc["data"][0][0][0][0] is None
    np.testing.assert_allclose(np.array(doc["data"], dtype=float), values, rtol=1e-6, equal_nan=True)


def test_json_file_is_utf8(tmp_path):
    path = write("JSON", {"name": "Bozen/Bolzano – Südtirol"}, tmp_path)
    assert json.loads(path.read_bytes().decode("utf-8")) == {"name": "Bozen/Bolzano – Südtirol"}


def test_json_refuses_a_cube_over_the_size_limit_recommending_gtiff(monkeypatch, tmp_path):
    monkeypatch.setattr(json_format, "MAX_CUBE_VALUES", 100)
    cube, _ = make_cube(size=8)
    with pytest.raises(OpenEOError, match="128 values.*limited to 100.*GTiff or netCDF") as err:
        write("JSON", cube, tmp_path)
    assert err.value.code == "FormatUnsuitable"
    with pytest.raises(OpenEOError, match="GTiff or netCDF"):
        to_json_value(cube)


def test_json_refuses_values_it_has_no_form_for():
    with pytest.raises(OpenEOError, match="type object has no JSON form"):
        to_json_value(object())


def _read_like_the_official_tests(path) -> xr.DataArray:
    """openeo-test-suite's load_netcdf_dataarray: open_dataarray, else one variable per band."""
    try:
        return xr.open_dataarray(path)
    except ValueError:
        return xr.open_dataset(path, decode_coords="all").to_dataarray(dim="bands")


@pytest.mark.parametrize("bands", [["B04"], ["B04", "B08"]])
def test_netcdf_keeps_the_bands_dimension_for_any_number_of_bands(tmp_path, bands):
    path = write("netCDF", make_cube(n_t=2, bands=tuple(bands), size=32)[0], tmp_path)
    back = _read_like_the_official_tests(path)
    assert set(back.dims) == {"bands", "t", "y", "x"} and list(back["bands"].values) == bands
    with xr.open_dataset(path, decode_coords="all") as ds:
        assert ds.rio.crs.to_epsg() == 32632


@pytest.mark.parametrize("name", ["GeoTIFF", "COG", "GeoParquet", "gtiff", "NETCDF"])
def test_every_accepted_format_name_is_listed_in_file_formats(name):
    from processes.formats import file_formats_document

    listed = {n.lower() for n in file_formats_document()["output"]}
    assert get_output_format(name) is not None and name.lower() in listed


def test_names_that_are_not_listed_are_refused():
    from processes.core.errors import FormatUnsupported

    for name in ("tiff", "nc"):
        with pytest.raises(FormatUnsupported):
            get_output_format(name)
