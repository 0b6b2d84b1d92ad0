"""Vector cubes and zonal statistics: aggregate_spatial on a real GeoTIFF-backed cube, load_geojson,
load_url, vector_buffer, vector_reproject, filter_vector, vector_to_raster.

Expected values of aggregate_spatial come from numpy over ``rasterio.features.geometry_mask`` of
each polygon (pixel-centre rule), computed directly from the GeoTIFF.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time

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
from rasterio.transform import from_origin
from shapely.geometry import mapping

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Callback, Evaluator, ProcessGraph, parse_process_graph
from processes.data import vector_files
from processes.formats import get_output_format
from processes.library import vector
from processes.model import vector_cube
from processes.model.raster_cube import ARRAY_DIM, dimension_type, new_cube
from processes.process_table import build_registry

WEST, NORTH, RES = 600000.0, 5030000.0, 10.0
HEIGHT, WIDTH = 240, 300
DATES = ["2023-05-05", "2023-05-20", "2023-06-04"]
BANDS = ["B04", "B08"]
TRANSFORM = from_origin(WEST, NORTH, RES, RES)
UTM = pyproj.CRS.from_epsg(32632)
TO_WGS84 = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(build_registry(), ProcessEnv(collections=None))


def reducer(evaluator: Evaluator, process_id: str, **arguments) -> Callback:
    nodes = {"r": {"process_id": process_id, "arguments": {"data": {"from_parameter": "data"}, **arguments},
                   "result": True}}
    return Callback(ProcessGraph(nodes, "r"), evaluator, {})


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> tuple[np.ndarray, xr.DataArray]:
    """A (t, bands, y, x) float32 cube read lazily from GeoTIFFs (nodata 0 → NaN), and its values."""
    folder = tmp_path_factory.mktemp("tifs")
    rng = np.random.default_rng(42)
    values = rng.integers(1, 10000, (len(DATES), len(BANDS), HEIGHT, WIDTH)).astype(np.uint16)
    values[0, :, 100:130, 40:90] = 0  # a cloud: nodata inside parcel "a" on the first date
    values[1, 0, :, :] = np.where(rng.random((HEIGHT, WIDTH)) < 0.1, 0, values[1, 0])
    layers = []
    for t, _ in enumerate(DATES):
        bands = []
        for b, band in enumerate(BANDS):
            path = folder / f"{t}_{band}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=WIDTH, height=HEIGHT, count=1, dtype="uint16",
                               crs="EPSG:32632", transform=TRANSFORM, nodata=0, tiled=True, blockxsize=64,
                               blockysize=64, compress="deflate") as dst:
                dst.write(values[t, b], 1)
            array = rioxarray.open_rasterio(path, chunks={"x": 128, "y": 128}, masked=True)
            bands.append(array.squeeze("band", drop=True).astype("float32"))
        layers.append(xr.concat(bands, "bands"))
    stacked = xr.concat(layers, "t")
    cube = new_cube(stacked.data, {"t": ("temporal", DATES), "bands": ("bands", BANDS),
                                   "y": ("spatial", stacked.y.values), "x": ("spatial", stacked.x.values)},
                    crs=32632, name="S2")
    expected = np.where(values == 0, np.nan, values.astype(np.float32))
    return expected, cube


def utm_box(col0: float, row0: float, col1: float, row1: float) -> shapely.Polygon:
    """A box in pixel units of the test grid (columns/rows from the top-left corner), in UTM."""
    return shapely.box(WEST + col0 * RES, NORTH - row1 * RES, WEST + col1 * RES, NORTH - row0 * RES)


def to_wgs84(geom):
    return shapely.transform(geom, lambda c: np.column_stack(TO_WGS84.transform(c[:, 0], c[:, 1])))


def feature_collection(geoms: dict[str, shapely.Geometry], wgs84: bool = True) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name, "rank": k},
         "geometry": mapping(to_wgs84(g) if wgs84 else g)} for k, (name, g) in enumerate(geoms.items())]}


PARCELS = {
    "a": shapely.Polygon([(WEST + 303, NORTH - 900), (WEST + 1207, NORTH - 950), (WEST + 1100, NORTH - 1480),
                          (WEST + 420, NORTH - 1390)]),
    "b": utm_box(150.3, 20.2, 201.7, 60.9),
    "c": shapely.Point(WEST + 2001.5, NORTH - 1999.5).buffer(300),
    "edge": utm_box(280.5, 200.5, 330, 260),  # partly outside the cube
}


def numpy_statistic(expected: np.ndarray, geom_utm, statistic) -> np.ndarray:
    """(t, bands) statistic of the pixels whose centre lies in the polygon (NaN if there are none)."""
    mask = rasterio.features.geometry_mask([geom_utm], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    result = np.full(expected.shape[:2], np.nan)
    if not mask.any():
        return result
    for t in range(expected.shape[0]):
        for b in range(expected.shape[1]):
            values = expected[t, b][mask].astype(np.float64)
            valid = values[~np.isnan(values)]
            result[t, b] = statistic(valid) if valid.size else (0 if statistic is len else np.nan)
    return result


STATISTICS = {
    "mean": np.mean, "median": np.median, "count": len, "max": np.max, "min": np.min, "sum": np.sum,
    "sd": lambda v: np.std(v, ddof=1) if v.size > 1 else np.nan,
    "variance": lambda v: np.var(v, ddof=1) if v.size > 1 else np.nan,
}


@pytest.mark.parametrize("process_id", list(STATISTICS))
def test_statistic_per_polygon_equals_numpy_over_the_polygon_mask(raster, evaluator, process_id):
    expected, cube = raster
    result = vector.aggregate_spatial(cube, feature_collection(PARCELS), reducer(evaluator, process_id))
    assert isinstance(result.data, da.Array)
    values = result.values
    for k, geom in enumerate(PARCELS.values()):
        want = numpy_statistic(expected, geom, STATISTICS[process_id])
        np.testing.assert_allclose(values[k], want, rtol=1e-9, err_msg=f"{process_id} of parcel {k}")


def test_cloud_pixels_are_left_out_and_count_counts_valid_pixels(raster, evaluator):
    expected, cube = raster
    geoms = {"a": PARCELS["a"]}
    counted = vector.aggregate_spatial(cube, feature_collection(geoms), reducer(evaluator, "count")).values
    everything = vector.aggregate_spatial(
        cube, feature_collection(geoms), reducer(evaluator, "count", condition=True)).values
    mask = rasterio.features.geometry_mask([PARCELS["a"]], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    assert everything[0, 0, 0] == mask.sum()
    assert counted[0, 0, 0] == np.sum(mask & ~np.isnan(expected[0, 0])) < mask.sum()


def test_ignore_nodata_false_gives_nodata_where_a_pixel_is_missing(raster, evaluator):
    _, cube = raster
    result = vector.aggregate_spatial(cube, feature_collection({"a": PARCELS["a"]}),
                                      reducer(evaluator, "mean", ignore_nodata=False)).values
    assert np.isnan(result[0, 0, 0])  # the cloud on the first date
    assert np.isnan(result[0, 1, 0])  # scattered nodata in B04 on the second date
    assert not np.isnan(result[0, 2]).any()


def test_overlapping_polygons_each_get_all_their_pixels(raster, evaluator):
    expected, cube = raster
    geoms = {"big": utm_box(10, 10, 80, 70), "inner": utm_box(30.2, 30.2, 50.2, 50.2),
             "crossing": utm_box(60, 5, 120, 40)}
    for process_id in ("mean", "median", "count", "max"):
        result = vector.aggregate_spatial(cube, feature_collection(geoms), reducer(evaluator, process_id)).values
        for k, geom in enumerate(geoms.values()):
            want = numpy_statistic(expected, geom, STATISTICS[process_id])
            np.testing.assert_allclose(result[k], want, rtol=1e-9, err_msg=f"{process_id} of {k}")


def test_geometries_in_another_crs_are_reprojected_and_keep_their_crs(raster, evaluator):
    expected, cube = raster
    mercator = pyproj.Transformer.from_crs(UTM, 3857, always_xy=True)
    in_mercator = [shapely.transform(g, lambda c: np.column_stack(mercator.transform(c[:, 0], c[:, 1])))
                   for g in (PARCELS["a"], PARCELS["b"])]
    frame = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=in_mercator, crs=3857)
    geometries = vector_cube.vector_cube(vector_cube.features_of(frame, "test", "geometries"))
    result = vector.aggregate_spatial(cube, geometries, reducer(evaluator, "mean"))
    assert vector_cube.cube_crs(result, "geometry").to_epsg() == 3857
    assert result.geometry.values[0].equals(in_mercator[0])
    # the reprojected polygon's edges are straight in UTM only approximately: compare with its UTM original
    want = numpy_statistic(expected, PARCELS["b"], np.mean)
    np.testing.assert_allclose(result.values[1], want, rtol=1e-3)


def test_points_take_the_pixel_they_fall_in(raster, evaluator):
    expected, cube = raster
    points = {"p1": shapely.Point(WEST + 55.5, NORTH - 123.0), "p2": shapely.Point(WEST + 58.0, NORTH - 128.0),
              "p3": shapely.Point(WEST + 2222.2, NORTH - 1111.1)}
    result = vector.aggregate_spatial(cube, feature_collection(points), reducer(evaluator, "mean")).values
    for k, p in enumerate(points.values()):
        row, col = int((NORTH - p.y) // RES), int((p.x - WEST) // RES)
        np.testing.assert_allclose(result[k], expected[:, :, row, col])
    assert (result[0] == result[1])[~np.isnan(result[0])].all()  # p1 and p2 share a pixel


def test_geometries_outside_the_cube_and_empty_ones_give_nodata(raster, evaluator):
    _, cube = raster
    geoms = {"inside": PARCELS["b"], "far": shapely.box(700000, 5000000, 700100, 5000100)}
    fc = feature_collection(geoms)
    fc["features"].append({"type": "Feature", "properties": {"name": "none"}, "geometry": None})
    for process_id in ("mean", "count", "median"):
        result = vector.aggregate_spatial(cube, fc, reducer(evaluator, process_id))
        assert result.sizes["geometry"] == 3
        assert not np.isnan(result.values[0]).any()
        assert np.isnan(result.values[1:]).all()


def test_the_result_is_a_vector_cube_with_properties_for_the_output_formats(raster, evaluator, tmp_path):
    _, cube = raster
    result = vector.aggregate_spatial(cube, feature_collection(PARCELS), reducer(evaluator, "mean"))
    assert result.dims == ("geometry", "t", "bands")
    assert [dimension_type(result, d) for d in result.dims] == ["geometry", "temporal", "bands"]
    assert vector_cube.cube_crs(result, "geometry").to_epsg() == 4326
    assert list(result["name"].values) == list(PARCELS)
    assert result["rank"].dtype == np.int64
    csv = tmp_path / "out.csv"
    get_output_format("CSV").write(result, csv, {})
    table = pd.read_csv(csv)
    assert list(table.columns) == ["name", "rank", "date", "B04", "B08"]
    assert len(table) == len(PARCELS) * len(DATES)
    nc = tmp_path / "out.nc"
    get_output_format("netCDF").write(result, nc, {"compression": True})
    back = xr.open_dataset(nc).xvec.decode_cf()
    np.testing.assert_allclose(back["B08"].values, result.sel(bands="B08").values)


def test_target_dimension_adds_total_and_valid_counts(raster, evaluator):
    expected, cube = raster
    result = vector.aggregate_spatial(cube, feature_collection({"a": PARCELS["a"]}), reducer(evaluator, "mean"),
                                      target_dimension="result")
    assert list(result["result"].values) == ["value", "total_count", "valid_count"]
    assert dimension_type(result, "result") == "other"
    mask = rasterio.features.geometry_mask([PARCELS["a"]], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    assert result.sel(result="total_count").values[0, 0, 0] == mask.sum()
    assert result.sel(result="valid_count").values[0, 0, 0] == np.sum(mask & ~np.isnan(expected[0, 0]))
    with pytest.raises(OpenEOError) as error:
        vector.aggregate_spatial(cube, feature_collection(PARCELS), reducer(evaluator, "mean"), target_dimension="t")
    assert error.value.code == "TargetDimensionExists"


def test_a_general_reducer_gets_every_geometry_s_values(raster, evaluator):
    expected, cube = raster
    nodes = {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
             "plus": {"process_id": "add", "arguments": {"x": {"from_node": "m"}, "y": 1}, "result": True}}
    general = Callback(ProcessGraph(nodes, "plus"), evaluator, {})
    result = vector.aggregate_spatial(cube, feature_collection(PARCELS), general, target_dimension="stats")
    fast = vector.aggregate_spatial(cube, feature_collection(PARCELS), reducer(evaluator, "mean"),
                                    target_dimension="stats")
    np.testing.assert_allclose(result.sel(stats="value").values, fast.sel(stats="value").values + 1)
    np.testing.assert_allclose(result.sel(stats=["total_count", "valid_count"]).values,
                               fast.sel(stats=["total_count", "valid_count"]).values)


def test_quantiles_with_one_probability_and_the_array_a_reducer_sees(raster, evaluator):
    expected, cube = raster
    fc = feature_collection({"b": PARCELS["b"]})
    q = vector.aggregate_spatial(cube, fc, reducer(evaluator, "quantiles", probabilities=[0.25])).values
    np.testing.assert_allclose(q[0], numpy_statistic(expected, PARCELS["b"], lambda v: np.quantile(v, 0.25)))
    seen = {}

    class Spy:
        single_process = None

        def __call__(self, data, context=None):
            seen["dims"] = data.dims
            return data.max(ARRAY_DIM)

    vector.aggregate_spatial(cube, fc, Spy())
    assert seen["dims"] == ("geometry", "t", "bands", ARRAY_DIM)


def test_five_thousand_parcels_aggregate_quickly(evaluator):
    rng = np.random.default_rng(7)
    size = 2048
    values = da.random.default_rng(1).random((4, 2, size, size), chunks=(1, 1, 1024, 1024)).astype(np.float32)
    x = WEST + RES * (np.arange(size) + 0.5)
    y = NORTH - RES * (np.arange(size) + 0.5)
    cube = new_cube(values, {"t": ("temporal", DATES + ["2023-06-20"]), "bands": ("bands", BANDS),
                             "y": ("spatial", y), "x": ("spatial", x)}, crs=32632)
    extent = shapely.box(WEST, NORTH - RES * size, WEST + RES * size, NORTH)
    seeds = shapely.multipoints(np.column_stack([rng.uniform(WEST, WEST + RES * size, 5000),
                                                 rng.uniform(NORTH - RES * size, NORTH, 5000)]))
    parcels = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=extent)), extent)
    frame = gpd.GeoDataFrame({"parcel": np.arange(len(parcels))}, geometry=shapely.buffer(parcels, -5), crs=32632)
    geometries = vector_cube.vector_cube(vector_cube.features_of(frame, "test", "geometries"))
    started = time.perf_counter()
    result = vector.aggregate_spatial(cube, geometries, reducer(evaluator, "mean")).compute()
    elapsed = time.perf_counter() - started
    print(f"\naggregate_spatial mean: {len(parcels)} parcels over 4 dates x 2 bands x {size}² px in {elapsed:.2f}s")
    assert result.shape == (len(parcels), 4, 2)
    assert np.isfinite(result.values).mean() > 0.99
    assert elapsed < 60


# --- through the evaluator ---------------------------------------------------------------------
def test_load_geojson_then_aggregate_spatial_in_a_process_graph(raster):
    expected, cube = raster
    graph = parse_process_graph({"process_graph": {
        "load": {"process_id": "load_geojson", "arguments": {"data": feature_collection({"b": PARCELS["b"]})}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_parameter": "cube"}, "geometries": {"from_node": "load"},
            "reducer": {"process_graph": {"m": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}},
                                                "result": True}}}}, "result": True},
    }})
    result = Evaluator(build_registry(), ProcessEnv(collections=None)).evaluate(graph, {"cube": cube})
    np.testing.assert_allclose(result.values[0], numpy_statistic(expected, PARCELS["b"], np.max))
    assert list(result["name"].values) == ["b"]


# --- load_geojson --------------------------------------------------------------------------------
PLACES = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": "f1", "properties": {"crop": "maize", "area": 2.5, "obs": [1, 2, 3]},
     "geometry": {"type": "Point", "coordinates": [11.3, 46.5]}},
    {"type": "Feature", "id": "f2", "properties": {"crop": "wheat", "obs": [4]},
     "geometry": {"type": "Polygon", "coordinates": [[[11, 46], [11.1, 46], [11.1, 46.1], [11, 46]]]}},
]}


def test_load_geojson_without_properties_is_one_dimensional_and_keeps_them_as_coordinates():
    cube = vector_files.load_geojson(PLACES)
    assert cube.dims == ("geometry",)
    assert vector_cube.cube_crs(cube, "geometry").to_epsg() == 4326
    assert list(cube["crop"].values) == ["maize", "wheat"]
    assert list(cube["id"].values) == ["f1", "f2"]


def test_load_geojson_scalar_properties_become_labels():
    cube = vector_files.load_geojson(PLACES, ["area", "crop"])
    assert cube.dims == ("geometry", "properties")
    assert dimension_type(cube, "properties") == "other"
    assert list(cube["properties"].values) == ["area", "crop"]
    assert cube.values[0].tolist() == [2.5, "maize"]
    assert cube.values[1, 0] is None
    single = vector_files.load_geojson(PLACES, ["area"])
    assert single.values[:, 0].tolist()[0] == 2.5 and np.isnan(single.values[1, 0])


def test_load_geojson_array_property_gives_index_labels_padded_with_nodata():
    cube = vector_files.load_geojson(PLACES, ["obs"])
    assert list(cube["properties"].values) == [0, 1, 2]
    np.testing.assert_array_equal(cube.values, [[1, 2, 3], [4, np.nan, np.nan]])


def test_load_geojson_refuses_geometry_collections_and_unknown_properties():
    collection = {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1, 2]}]}
    with pytest.raises(OpenEOError, match="GeometryCollection"):
        vector_files.load_geojson(collection)
    with pytest.raises(OpenEOError, match="nope"):
        vector_files.load_geojson(PLACES, ["nope"])


# --- load_url ------------------------------------------------------------------------------------
@pytest.fixture
def http_folder(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("fmt", "name"), [("GeoJSON", "p.geojson"), ("GPKG", "p.gpkg"), ("Parquet", "p.parquet"),
                                           ("FlatGeobuf", "p.fgb")])
def test_load_url_reads_vector_files_over_http(http_folder, fmt, name):
    folder, root = http_folder
    frame = gpd.GeoDataFrame({"crop": ["maize", "wheat"]}, geometry=[PARCELS["a"], PARCELS["b"]], crs=32632)
    if fmt == "Parquet":
        frame.to_parquet(folder / name)
    else:
        frame.to_file(folder / name, driver=fmt, engine="pyogrio")
    cube = vector_files.load_url(f"{root}/{name}", fmt.lower(), env=ProcessEnv(collections=None))
    assert cube.sizes["geometry"] == 2
    assert vector_cube.cube_crs(cube, "geometry").to_epsg() == 32632
    wheat = list(cube["crop"].values).index("wheat")  # FlatGeobuf stores features in spatial-index order
    assert sorted(cube["crop"].values) == ["maize", "wheat"]
    assert cube.geometry.values[wheat].equals(PARCELS["b"])


def test_load_url_refuses_local_paths_and_unsuitable_files(http_folder):
    folder, root = http_folder
    env = ProcessEnv(collections=None)
    with pytest.raises(OpenEOError, match="http"):
        vector_files.load_url(str(folder / "x.geojson"), "GeoJSON", env=env)
    (folder / "not.gpkg").write_text("hello")
    with pytest.raises(OpenEOError) as error:
        vector_files.load_url(f"{root}/not.gpkg", "GPKG", env=env)
    assert error.value.code == "FormatUnsuitable"
    with pytest.raises(OpenEOError, match="GeoJSON, Parquet"):
        vector_files.load_url(f"{root}/not.gpkg", "Shapefile", env=env)


# --- geometry processes --------------------------------------------------------------------------
def test_vector_buffer_needs_meters_and_keeps_properties():
    cube = vector_files.load_geojson(PLACES)
    with pytest.raises(OpenEOError) as error:
        vector.vector_buffer(cube, 10)
    assert error.value.code == "UnitMismatch"
    utm = vector.vector_reproject(cube, 32632)
    grown = vector.vector_buffer(utm, 10)
    assert grown.geometry.values[0].area == pytest.approx(np.pi * 100, rel=0.01)
    assert list(grown["crop"].values) == ["maize", "wheat"]
    assert dimension_type(grown, "geometry") == "geometry"
    shrunk = vector.vector_buffer(utm, -1e6)
    assert shapely.is_empty(shrunk.geometry.values).all()


def test_vector_reproject_changes_the_crs_of_the_geometries_only():
    cube = vector_files.load_geojson(PLACES, ["area"])
    moved = vector.vector_reproject(cube, 32632)
    assert vector_cube.cube_crs(moved, "geometry").to_epsg() == 32632
    assert moved.geometry.values[0].x == pytest.approx(TO_WGS84.transform(11.3, 46.5, direction="INVERSE")[0])
    assert dimension_type(moved, "geometry") == "geometry"
    np.testing.assert_array_equal(moved.values, cube.values)
    with pytest.raises(OpenEOError) as error:
        vector.vector_reproject(cube, 32632, dimension="nope")
    assert error.value.code == "DimensionNotAvailable"


def test_filter_vector_keeps_the_geometries_in_relation_to_the_union():
    cube = vector_files.load_geojson(PLACES)
    area = vector_files.load_geojson({"type": "Polygon", "coordinates": [[[11.2, 46.4], [11.4, 46.4], [11.4, 46.6],
                                                                    [11.2, 46.6], [11.2, 46.4]]]})
    assert list(vector.filter_vector(cube, area)["crop"].values) == ["maize"]
    assert list(vector.filter_vector(cube, area, "disjoint")["crop"].values) == ["wheat"]
    assert list(vector.filter_vector(cube, area, "within")["crop"].values) == ["maize"]


def test_vector_to_raster_paints_the_values_of_each_parcel(raster, evaluator):
    _, cube = raster
    means = vector.aggregate_spatial(cube, feature_collection({"a": PARCELS["a"], "b": PARCELS["b"]}),
                                     reducer(evaluator, "mean"))
    painted = vector.vector_to_raster(means, cube)
    assert painted.dims == ("t", "bands", "y", "x")
    assert painted.rio.crs.to_epsg() == 32632
    values = painted.values
    mask_b = rasterio.features.geometry_mask([PARCELS["b"]], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    np.testing.assert_allclose(values[:, :, mask_b], np.repeat(means.values[1][:, :, None], mask_b.sum(), axis=2))
    mask_a = rasterio.features.geometry_mask([to_wgs84(PARCELS["a"])], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    outside = ~mask_b & ~rasterio.features.geometry_mask([PARCELS["a"]], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    assert np.isnan(values[:, :, outside]).all()
    assert mask_a.sum() == 0  # (the WGS84 outline is not what is painted: it is reprojected first)


def test_vector_to_raster_makes_properties_bands(raster):
    _, cube = raster
    loaded = vector_files.load_geojson(feature_collection({"b": PARCELS["b"]}), ["rank"])
    painted = vector.vector_to_raster(loaded, cube)
    assert painted.dims == ("properties", "y", "x")
    assert dimension_type(painted, "properties") == "bands"
    mask_b = rasterio.features.geometry_mask([PARCELS["b"]], (HEIGHT, WIDTH), TRANSFORM, invert=True)
    assert (painted.values[0][mask_b] == 0).all() and np.isnan(painted.values[0][~mask_b]).all()


def test_processes_are_registered_and_input_formats_are_json(evaluator):
    for process_id in {**vector.PROCESSES, **vector_files.PROCESSES}:
        assert process_id in evaluator.registry
    assert set(json.loads(json.dumps(vector_files.INPUT_FORMATS))) == {"GeoJSON", "Parquet", "GPKG", "FlatGeobuf"}
