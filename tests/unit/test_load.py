"""load_collection over the generated demo catalog (real COGs, real Dask)."""

from __future__ import annotations

import time

import numpy as np
import pystac
import pytest
import rasterio

from processes.core.env import Limits, ProcessEnv
from processes.core.errors import NoDataAvailable, OpenEOError, ProcessGraphComplexity
from processes.data.load import load_collection
from processes.data.stac_sources import CollectionCatalog, open_static
from processes.model.raster_cube import band_metadata, dimension_type, spatial_dims

LC = "DEMO_SENTINEL2_L2A"
# inside tile 1 of the small demo (upper-left E 600000, N 5040000, 512 px at 10 m)
BOX = {"west": 601000, "south": 5037000, "east": 601500, "north": 5037500, "crs": 32632}


@pytest.fixture(scope="module")
def env(demo_data) -> ProcessEnv:
    return ProcessEnv(collections=CollectionCatalog(open_static(demo_data / "demo" / "catalog.json")))


@pytest.fixture(scope="module")
def items(demo_data) -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(str(demo_data / "demo" / "catalog.json"))
    return sorted(catalog.get_child(LC).get_items(), key=lambda i: (i.datetime, i.id))


def test_cube_has_typed_dimensions_crs_and_is_lazy(env):
    cube = load_collection(LC, BOX, ["2023-05-01", "2023-06-01"], ["B04", "B08"], env=env)
    assert cube.dims == ("t", "bands", "y", "x")
    assert [dimension_type(cube, d) for d in cube.dims] == ["temporal", "bands", "spatial", "spatial"]
    assert spatial_dims(cube) == ("y", "x")
    assert cube.rio.crs.to_epsg() == 32632
    assert cube.chunks is not None
    assert cube.dtype == np.float32


def test_pixels_are_those_whose_centres_lie_in_the_box(env):
    cube = load_collection(LC, BOX, ["2023-05-01", "2023-06-01"], ["B04"], env=env)
    assert cube.x.values[0] == 601005 and cube.x.values[-1] == 601495
    assert cube.y.values[0] == 5037495 and cube.y.values[-1] == 5037005


def test_values_equal_the_cog_pixels(env, items):
    cube = load_collection(LC, BOX, ["2023-05-01", "2023-05-10"], ["B08"], env=env)
    item = next(i for i in items if i.id == "S2_DEMO_T1_20230505")
    with rasterio.open(item.assets["B08"].get_absolute_href()) as src:
        window = rasterio.windows.from_bounds(601000, 5037000, 601500, 5037500, src.transform)
        expected = src.read(1, window=window).astype("float32")
    expected[expected == 0] = np.nan
    np.testing.assert_array_equal(cube.isel(t=0, bands=0).values, expected)


def test_temporal_extent_is_left_closed(env):
    cube = load_collection(LC, BOX, ["2023-05-05T10:30:00Z", "2023-05-20T10:30:00Z"], ["B04"], env=env)
    assert [str(t)[:10] for t in cube.t.values] == ["2023-05-05"]


def test_tiles_of_one_day_are_mosaicked(env):
    across = {"west": 604000, "south": 5037000, "east": 606000, "north": 5038000, "crs": 32632}
    cube = load_collection(LC, across, ["2023-05-01", "2023-06-01"], ["B04"], env=env)
    assert cube.sizes["t"] == 2  # two dates, each from two tiles
    assert not np.isnan(cube.isel(t=0, bands=0).values).all(axis=0).any()


def test_common_band_names_select_bands_and_metadata_is_kept(env):
    cube = load_collection(LC, BOX, ["2023-05-01", "2023-06-01"], ["red", "nir"], env=env)
    assert list(cube.bands.values) == ["B04", "B08"]
    assert band_metadata(cube)["B08"]["common_name"] == "nir"


def test_twenty_metre_bands_are_resampled_to_the_ten_metre_grid(env):
    cube = load_collection(LC, BOX, ["2023-05-01", "2023-06-01"], ["B04", "SCL"], env=env)
    scl = cube.sel(bands="SCL").isel(t=0).values
    assert scl.shape == (50, 50)
    assert np.array_equal(scl[::2, ::2], scl[1::2, 1::2])  # each 20 m pixel covers 2 × 2 pixels


def test_properties_filter_on_cloud_cover(env, items):
    def at_most_10(value):
        return value <= 10

    cube = load_collection(LC, BOX, ["2023-01-01", "2024-01-01"], ["B04"], {"eo:cloud_cover": at_most_10}, env=env)
    clear_days = sorted({i.datetime.strftime("%Y-%m-%d") for i in items
                         if i.id.startswith("S2_DEMO_T1") and i.properties["eo:cloud_cover"] <= 10})
    assert [str(t)[:10] for t in cube.t.values] == clear_days


def test_geojson_extent_masks_pixels_outside_the_polygon(env):
    import pyproj

    to_wgs = pyproj.Transformer.from_crs(32632, 4326, always_xy=True)
    triangle = [to_wgs.transform(x, y) for x, y in
                [(601000, 5037000), (601500, 5037000), (601000, 5037500), (601000, 5037000)]]
    polygon = {"type": "Polygon", "coordinates": [triangle]}
    cube = load_collection(LC, polygon, ["2023-05-01", "2023-06-01"], ["B04"], env=env)
    values = cube.isel(t=0, bands=0).values
    assert np.isnan(values[0, -1])  # north-east corner: outside the triangle
    assert not np.isnan(values[-1, 0])  # south-west corner: inside


def test_unknown_band_lists_the_bands(env):
    with pytest.raises(OpenEOError, match="B99.*B02, B03, B04") as err:
        load_collection(LC, BOX, ["2023-05-01", "2023-06-01"], ["B99"], env=env)
    assert err.value.code == "ProcessParameterInvalid"


def test_extent_outside_the_data_is_no_data_available(env):
    with pytest.raises(NoDataAvailable):
        load_collection(LC, {"west": 0, "south": 0, "east": 1, "north": 1}, ["2023-05-01", "2023-06-01"], None,
                        env=env)


def test_empty_temporal_extent_is_an_error(env):
    with pytest.raises(OpenEOError) as err:
        load_collection(LC, BOX, ["2023-06-01", "2023-05-01"], None, env=env)
    assert err.value.code == "TemporalExtentEmpty"


def test_size_limit_names_the_limit_and_who_sets_it(env):
    limited = ProcessEnv(collections=env.collections, limits=Limits(max_pixels=1000, scope="synchronous processing"))
    with pytest.raises(ProcessGraphComplexity, match="synchronous processing allows at most 1,000"):
        load_collection(LC, BOX, ["2023-05-01", "2023-06-01"], None, env=limited)


@pytest.mark.parametrize("extent", [
    {"west": -2e7, "south": -1e7, "east": 2e7, "north": 1e7, "crs": 32632},
    {"west": -180, "south": -90, "east": 180, "north": 90},
])
def test_a_world_sized_extent_is_refused_before_anything_is_built(env, extent):
    limited = ProcessEnv(collections=env.collections, limits=Limits(max_pixels=400_000_000))
    started = time.perf_counter()
    with pytest.raises(ProcessGraphComplexity, match="400,000,000"):
        load_collection(LC, extent, ["2023-05-01", "2023-06-01"], None, env=limited)
    assert time.perf_counter() - started < 5  # generous for CI: it is milliseconds


def test_an_extent_just_past_the_data_edge_is_no_data_available(env):
    # the WGS84 search box of this extent touches the items, their native footprint ends at x = 610240
    with pytest.raises(NoDataAvailable):
        load_collection(LC, {"west": 610240, "south": 5034000, "east": 610300, "north": 5035000, "crs": 32632},
                        ["2023-05-01", "2023-06-01"], ["B04"], env=env)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), -1e308])
def test_non_finite_or_absurd_coordinates_are_invalid_parameters(env, bad):
    extent = {"west": bad, "south": 5034000, "east": 610300, "north": 5035000, "crs": 32632}
    with pytest.raises(OpenEOError) as err:
        load_collection(LC, extent, ["2023-05-01", "2023-06-01"], ["B04"], env=env)
    assert err.value.code == "ProcessParameterInvalid" and "finite" in err.value.message


def test_loaded_values_are_not_named_after_the_collection(env):
    from processes.formats.output_format import cube_name

    cube = load_collection(LC, BOX, ["2023-05-01", "2023-05-10"], ["B04"], env=env)
    assert cube_name(cube.isel(bands=0, drop=True)) == "data"
