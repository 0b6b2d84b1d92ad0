"""Masking through the real evaluator and registry: mask, mask_polygon, filter_spatial — checked
against numpy and rasterio on small Dask cubes and a real GeoTIFF."""

from __future__ import annotations

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import rasterio
import rasterio.features
import rioxarray
import shapely
import xarray as xr
import xvec  # noqa: F401  (registers the .xvec accessor)
from affine import Affine
from shapely.geometry import LineString, Point, Polygon, mapping

from processes.core.errors import OpenEOError
from processes.model.raster_cube import dimension_type, new_cube, with_dimension_type
from tests.processes import run_node as run

UTM = pyproj.CRS.from_epsg(32632)
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5760000.0)


@pytest.fixture
def geotiff_cube(tmp_path):
    """A 2-band float GeoTIFF (60 × 80 pixels of 10 m, some no-data), opened lazily in 16-pixel chunks."""
    rng = np.random.default_rng(2)
    values = rng.uniform(0, 1000, (2, 60, 80)).astype("float32")
    values[:, 5:8, 5:9] = np.nan
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=80, height=60, count=2, dtype="float32", crs=UTM,
                       transform=TRANSFORM, nodata=np.nan) as dst:
        dst.write(values)
    raster = rioxarray.open_rasterio(path, chunks={"band": 1, "y": 16, "x": 16}, masked=True)
    raster = raster.rename({"band": "bands"}).assign_coords(bands=["B04", "B08"])
    cube = with_dimension_type(raster, "bands", "bands")
    cube = with_dimension_type(cube, "y", "spatial", "y")
    cube = with_dimension_type(cube, "x", "spatial", "x")
    return cube, values


def utm_polygon() -> Polygon:
    outer = [(400055, 5759905), (400640, 5759850), (400500, 5759480), (400160, 5759560), (400055, 5759905)]
    hole = [(400300, 5759800), (400400, 5759800), (400400, 5759700), (400300, 5759800)]
    return Polygon(outer, [hole])


def to_wgs84(geom):
    transformer = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def outside_of(geom, shape=(60, 80), transform=TRANSFORM, **kwargs) -> np.ndarray:
    return rasterio.features.geometry_mask([geom], out_shape=shape, transform=transform, **kwargs)


# --- mask_polygon ---------------------------------------------------------------------------------


def test_mask_polygon_on_a_geotiff_equals_rasterio_geometry_mask(geotiff_cube):
    cube, values = geotiff_cube
    polygon = to_wgs84(utm_polygon())
    result = run("mask_polygon", data=cube, mask=mapping(polygon))
    assert result.chunks is not None
    # the reference rasterises the polygon as reprojected to the raster's CRS
    # the polygon has a vertex on a chunk corner (x = 400640 m), where a window's cut of the polygon
    # leaves a stray line that must not be burnt
    outside = outside_of(to_wgs84_back(polygon))
    expected = np.where(outside, np.nan, values)
    np.testing.assert_array_equal(result.values, expected)
    assert 0 < (~outside).sum() < outside.size


def to_wgs84_back(geom):
    transformer = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def test_mask_polygon_inside_with_replacement_leaves_nodata_untouched(geotiff_cube):
    cube, values = geotiff_cube
    polygon = Polygon([(400000, 5760000), (400200, 5760000), (400200, 5759800), (400000, 5759800)])
    frame = gpd.GeoDataFrame(geometry=[polygon], crs=UTM)
    result = run("mask_polygon", data=cube, mask=frame, inside=True, replacement=-1)
    inside = ~outside_of(polygon)
    expected = np.where(inside & ~np.isnan(values), -1, values)
    np.testing.assert_array_equal(result.values, expected)
    assert np.isnan(result.values[:, 5:8, 5:9]).all()


def test_mask_polygon_keeps_dimension_types_and_crs(geotiff_cube):
    cube, _ = geotiff_cube
    result = run("mask_polygon", data=cube, mask=mapping(to_wgs84(utm_polygon())))
    assert [dimension_type(result, d) for d in result.dims] == ["bands", "spatial", "spatial"]
    assert result.rio.crs.to_epsg() == 32632


def test_mask_polygon_takes_an_xvec_vector_cube_in_its_crs(geotiff_cube):
    cube, values = geotiff_cube
    polygon = utm_polygon()
    vectors = xr.DataArray([1.0], dims=("geometry",), coords={"geometry": [polygon]})
    vectors = with_dimension_type(vectors.xvec.set_geom_indexes("geometry", crs=UTM), "geometry", "geometry")
    result = run("mask_polygon", data=cube, mask=vectors)
    np.testing.assert_array_equal(result.values, np.where(outside_of(polygon), np.nan, values))


def test_mask_polygon_refuses_points(geotiff_cube):
    cube, _ = geotiff_cube
    with pytest.raises(OpenEOError) as err:
        run("mask_polygon", data=cube, mask={"type": "Point", "coordinates": [7.6, 51.9]})
    assert err.value.code == "ProcessParameterInvalid"


def test_mask_polygon_builds_the_graph_without_computing(geotiff_cube):
    cube, _ = geotiff_cube

    def explode(block):
        raise AssertionError("computed while building the graph")

    poisoned = cube.copy(data=cube.data.map_blocks(explode, dtype=cube.dtype))
    with dask.config.set(scheduler="synchronous"):
        result = run("mask_polygon", data=poisoned, mask=mapping(to_wgs84(utm_polygon())))
    assert result.chunks is not None


# --- filter_spatial -------------------------------------------------------------------------------


def test_filter_spatial_crops_to_the_bounding_box_and_masks_outside(geotiff_cube):
    cube, values = geotiff_cube
    polygon = utm_polygon()
    result = run("filter_spatial", data=cube, geometries=mapping(to_wgs84(polygon)))
    native = to_wgs84_back(to_wgs84(polygon))
    outside = outside_of(native)
    west, south, east, north = native.bounds  # pixel centres in the bounding box stay
    rows = np.flatnonzero((cube["y"].values >= south) & (cube["y"].values <= north))
    cols = np.flatnonzero((cube["x"].values >= west) & (cube["x"].values <= east))
    window = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    assert result.shape == values[window].shape
    np.testing.assert_array_equal(result.values, np.where(outside, np.nan, values)[window])
    np.testing.assert_array_equal(result["x"].values, cube["x"].values[window[2]])


def test_filter_spatial_keeps_the_pixel_of_a_point_and_the_pixels_of_a_line(geotiff_cube):
    cube, values = geotiff_cube
    point = Point(400123.0, 5759877.0)  # in pixel row 12, column 12
    result = run("filter_spatial", data=cube, geometries=gpd.GeoDataFrame(geometry=[point], crs=UTM))
    assert result.shape == (2, 1, 1)
    np.testing.assert_array_equal(result.values[:, 0, 0], values[:, 12, 12])
    line = LineString([(400101, 5759899), (400333, 5759777)])
    result = run("filter_spatial", data=cube, geometries=gpd.GeoDataFrame(geometry=[line], crs=UTM))
    touched = ~outside_of(line, all_touched=True)
    rows, cols = np.flatnonzero(touched.any(axis=1)), np.flatnonzero(touched.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    np.testing.assert_array_equal(np.isfinite(result.values[0]), touched[window] & np.isfinite(values[0][window]))


def test_filter_spatial_without_overlap_gives_an_empty_cube(geotiff_cube):
    cube, _ = geotiff_cube
    far = {"type": "Polygon", "coordinates": [[[16.1, 48.1], [16.1, 48.6], [16.6, 48.6], [16.1, 48.1]]]}
    result = run("filter_spatial", data=cube, geometries=far)
    assert result.sizes["y"] == 0 and result.sizes["x"] == 0


# --- mask -----------------------------------------------------------------------------------------


@pytest.fixture
def series():
    rng = np.random.default_rng(4)
    values = rng.uniform(0, 1, (3, 2, 6, 8)).astype("float32")
    cube = new_cube(
        da.from_array(values, chunks=(1, 1, 3, 4)),
        {
            "t": ("temporal", pd.to_datetime(["2023-05-01", "2023-05-11", "2023-05-21"])),
            "bands": ("bands", ["B04", "B08"]),
            "y": ("spatial", 5759995.0 - 10 * np.arange(6)),
            "x": ("spatial", 400005.0 + 10 * np.arange(8)),
        },
        crs=UTM,
    )
    return cube, values


def test_mask_broadcasts_a_spatial_mask_over_time_and_bands(series):
    cube, values = series
    clouds = np.random.default_rng(5).random((6, 8)) < 0.3
    mask = new_cube(da.from_array(clouds), {"y": ("spatial", cube["y"].values), "x": ("spatial", cube["x"].values)},
                    crs=UTM)
    result = run("mask", data=cube, mask=mask)
    assert result.chunks is not None and result.dims == cube.dims
    np.testing.assert_array_equal(result.values, np.where(clouds, np.nan, values))
    assert dimension_type(result, "t") == "temporal"


def test_mask_with_a_numeric_mask_per_date_and_a_replacement(series):
    cube, values = series
    scl = np.random.default_rng(6).integers(0, 3, (3, 6, 8))
    mask = new_cube(scl, {"t": ("temporal", cube["t"].values), "y": ("spatial", cube["y"].values),
                          "x": ("spatial", cube["x"].values)}, crs=UTM)
    result = run("mask", data=cube, mask=mask, replacement=0)
    np.testing.assert_array_equal(result.values, np.where((scl != 0)[:, None], 0, values))


def test_mask_of_an_integer_cube_replaces_with_its_nodata_value():
    values = np.arange(12, dtype=np.int64).reshape(3, 4)
    cube = new_cube(values, {"y": ("spatial", [2.0, 1.0, 0.0]), "x": ("spatial", [0.0, 1.0, 2.0, 3.0])})
    cube.attrs["_FillValue"] = 255
    mask = new_cube(values % 2 == 0, {"y": ("spatial", [2.0, 1.0, 0.0]), "x": ("spatial", [0.0, 1.0, 2.0, 3.0])})
    result = run("mask", data=cube, mask=mask)
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result.values, np.where(values % 2 == 0, 255, values))


def test_mask_on_a_coarser_grid_is_resampled_by_nearest_neighbour(series):
    cube, values = series
    coarse = np.array([[True, False, False, True], [False, True, False, False], [False, False, True, True]])
    mask = new_cube(coarse, {"y": ("spatial", 5759990.0 - 20 * np.arange(3)),
                             "x": ("spatial", 400010.0 + 20 * np.arange(4))}, crs=UTM)
    result = run("mask", data=cube, mask=mask)
    fine = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(result.values, np.where(fine, np.nan, values))


def test_mask_in_another_crs_is_reprojected_lazily(series):
    cube, values = series
    to_wgs = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)
    lon0, lat0 = to_wgs.transform(400000.0, 5760000.0)
    lons, lats = lon0 + 0.00005 + 0.0001 * np.arange(14), lat0 - 0.00005 - 0.0001 * np.arange(8)
    pattern = (np.add.outer(np.arange(8), np.arange(14)) % 3) == 0
    mask = new_cube(da.from_array(pattern, chunks=(4, 7)), {"y": ("spatial", lats), "x": ("spatial", lons)},
                    crs=4326)
    result = run("mask", data=cube, mask=mask)
    assert result.chunks is not None
    gx, gy = np.meshgrid(cube["x"].values, cube["y"].values)
    lon, lat = to_wgs.transform(gx, gy)
    rows = np.abs(lat[..., None] - lats).argmin(axis=-1)
    cols = np.abs(lon[..., None] - lons).argmin(axis=-1)
    np.testing.assert_array_equal(result.values, np.where(pattern[rows, cols], np.nan, values))


@pytest.mark.parametrize("labels", [["B04"], ["B04", "B05"]])
def test_mask_with_other_band_labels_is_incompatible(series, labels):
    cube, _ = series
    mask = new_cube(np.zeros((len(labels), 6, 8), dtype=bool),
                    {"bands": ("bands", labels), "y": ("spatial", cube["y"].values),
                     "x": ("spatial", cube["x"].values)}, crs=UTM)
    with pytest.raises(OpenEOError) as err:
        run("mask", data=cube, mask=mask)
    assert err.value.code == "IncompatibleDataCubes"


def test_mask_with_a_dimension_the_data_lacks_is_incompatible(series):
    cube, _ = series
    mask = new_cube(np.zeros((2, 6, 8), dtype=bool),
                    {"scene": ("other", ["a", "b"]), "y": ("spatial", cube["y"].values),
                     "x": ("spatial", cube["x"].values)}, crs=UTM)
    with pytest.raises(OpenEOError) as err:
        run("mask", data=cube, mask=mask)
    assert err.value.code == "IncompatibleDataCubes"


# --- apply_polygon --------------------------------------------------------------------------------
def _apply_polygon_cube():
    import dask.array as dask_array

    from processes.model.raster_cube import new_cube

    values = np.arange(2 * 10 * 12, dtype="float64").reshape(2, 10, 12)
    return new_cube(dask_array.from_array(values, chunks=(1, 5, 6)),
                    {"t": ("temporal", pd.to_datetime(["2023-01-01", "2023-01-02"])),
                     "y": ("spatial", 100.0 - 10 * np.arange(10) - 5), "x": ("spatial", 10 * np.arange(12) + 5.0)},
                    crs="EPSG:32632"), values


def _square(west, south, east, north):
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def _as_utm_features(*polygons):
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": p} for p in polygons]}


def test_apply_polygon_processes_each_polygon_and_masks_the_rest():
    from processes.library.masking import apply_polygon
    from processes.model.geometry import reproject_geometries

    cube, values = _apply_polygon_cube()
    import pyproj
    from shapely.geometry import mapping, shape

    utm = [shape(_square(0, 60, 40, 100)), shape(_square(60, 0, 120, 30))]
    wgs84 = reproject_geometries(utm, pyproj.CRS("EPSG:32632"), pyproj.CRS("EPSG:4326"))
    seen = []

    def double_and_count(data, context):
        seen.append(data.sizes)
        return data * context

    result = apply_polygon(cube, _as_utm_features(*[mapping(g) for g in wgs84]), double_and_count,
                           mask_value=-1, context=2)
    got = result.compute().values
    expected = np.full(values.shape, -1.0)
    expected[:, 0:4, 0:4] = values[:, 0:4, 0:4] * 2     # first square: rows 0-3 (y 95..65), cols 0-3
    expected[:, 7:10, 6:12] = values[:, 7:10, 6:12] * 2  # second square: rows 7-9, cols 6-11
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert len(seen) == 2 and seen[0]["x"] == 4 and seen[1]["x"] == 6  # each callback saw only its window


def test_apply_polygon_refuses_overlapping_polygons():
    import pyproj
    from shapely.geometry import mapping, shape

    from processes.core.errors import OpenEOError
    from processes.library.masking import apply_polygon
    from processes.model.geometry import reproject_geometries

    cube, _ = _apply_polygon_cube()
    utm = [shape(_square(0, 40, 60, 100)), shape(_square(30, 0, 90, 70))]
    wgs84 = reproject_geometries(utm, pyproj.CRS("EPSG:32632"), pyproj.CRS("EPSG:4326"))
    with pytest.raises(OpenEOError) as info:
        apply_polygon(cube, _as_utm_features(*[mapping(g) for g in wgs84]), lambda data, context: data)
    assert info.value.code == "GeometriesOverlap"
