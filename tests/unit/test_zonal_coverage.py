"""Coverage weights in aggregate_spatial (processing parameter ``aggregate_spatial_pixels: coverage``).

Expected values come from shapely: every pixel's weight is the area of its intersection with the
polygon over the pixel's area, and the weighted statistics are computed with plain numpy over the
GeoTIFF's values. The cube is chunked in 32 px blocks so that polygons straddle windows.
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import rasterio
import rioxarray
import shapely
import xarray as xr
from affine import Affine
from rasterio.transform import from_origin
from shapely.geometry import mapping

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Callback, Evaluator, ProcessGraph
from processes.core.processing_parameters import ProcessingOptions
from processes.library import vector
from processes.model.raster_cube import new_cube
from processes.process_table import build_registry
from processes.zonal.coverage import coverage_fractions
from processes.zonal.reduce import quantile_of_sorted

WEST, NORTH, RES = 600000.0, 5030000.0, 10.0
HEIGHT, WIDTH = 60, 80
DATES = ["2023-05-05", "2023-05-20"]
TRANSFORM = from_origin(WEST, NORTH, RES, RES)


def at(col: float, row: float) -> tuple[float, float]:
    """UTM coordinates of a position in pixel units (columns, rows from the top-left corner)."""
    return WEST + col * RES, NORTH - row * RES


POLYGONS = {
    "field": shapely.Polygon([at(3.3, 2.7), at(40.6, 5.2), at(36.1, 41.9), at(5.8, 38.4)]),  # straddles windows
    "holed": shapely.Polygon([at(45.2, 10.1), at(75.7, 10.1), at(75.7, 50.4), at(45.2, 50.4)],
                             [[at(55.5, 20.5), at(65.5, 20.5), at(65.5, 30.5), at(55.5, 30.5)]]),
    "tiny": shapely.box(*at(20.1, 50.35), *at(20.4, 50.1)),  # inside one pixel, holds no pixel centre
    "multi": shapely.MultiPolygon([shapely.box(*at(2.5, 55.5), *at(8.5, 45.5)),
                                   shapely.box(*at(10.25, 58.75), *at(14.75, 52.25))]),
    "overlap": shapely.box(*at(30.4, 40.6), *at(50.6, 20.4)),  # overlaps "field" and "holed"
}


@pytest.fixture(scope="module")
def raster(tmp_path_factory) -> tuple[np.ndarray, xr.DataArray]:
    """A (t, y, x) float32 cube read lazily from GeoTIFFs (nodata 0 → NaN), and its values."""
    folder = tmp_path_factory.mktemp("tifs")
    rng = np.random.default_rng(7)
    values = rng.integers(1, 10000, (len(DATES), HEIGHT, WIDTH)).astype(np.uint16)
    values[1] = np.where(rng.random((HEIGHT, WIDTH)) < 0.15, 0, values[1])  # scattered no-data on date 2
    layers = []
    for t in range(len(DATES)):
        path = folder / f"{t}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=WIDTH, height=HEIGHT, count=1, dtype="uint16",
                           crs="EPSG:32632", transform=TRANSFORM, nodata=0, tiled=True, blockxsize=32,
                           blockysize=32) as dst:
            dst.write(values[t], 1)
        array = rioxarray.open_rasterio(path, chunks={"x": 32, "y": 32}, masked=True)
        layers.append(array.squeeze("band", drop=True).astype("float32"))
    stacked = xr.concat(layers, "t")
    cube = new_cube(stacked.data, {"t": ("temporal", DATES), "y": ("spatial", stacked.y.values),
                                   "x": ("spatial", stacked.x.values)}, crs=32632, name="S2")
    return np.where(values == 0, np.nan, values.astype(np.float64)), cube


@pytest.fixture(scope="module")
def coverage_evaluator() -> Evaluator:
    env = ProcessEnv(collections=None, options=ProcessingOptions(given={"aggregate_spatial_pixels": "coverage"}))
    return Evaluator(build_registry(), env)


def reducer(evaluator: Evaluator, process_id: str, **arguments) -> Callback:
    nodes = {"r": {"process_id": process_id, "arguments": {"data": {"from_parameter": "data"}, **arguments},
                   "result": True}}
    return Callback(ProcessGraph(nodes, "r"), evaluator, {})


def features(polygons: dict[str, shapely.Geometry]) -> dict:
    to_wgs84 = pyproj.Transformer.from_crs(32632, 4326, always_xy=True)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": name},
         "geometry": mapping(shapely.transform(g, lambda c: np.column_stack(to_wgs84.transform(c[:, 0], c[:, 1]))))}
        for name, g in polygons.items()]}


def shapely_weights(polygon: shapely.Geometry, transform: Affine = TRANSFORM,
                    shape: tuple[int, int] = (HEIGHT, WIDTH)) -> np.ndarray:
    """The fraction of every pixel of the grid the polygon covers."""
    rows, cols = np.indices(shape)
    x0, y0 = transform @ (cols.ravel(), rows.ravel())
    x1, y1 = transform @ (cols.ravel() + 1, rows.ravel() + 1)
    boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
    return (shapely.area(shapely.intersection(boxes, polygon)) / abs(transform.a * transform.e)).reshape(shape)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, p: float) -> float:
    """The weighted type-7 quantile, written out plainly."""
    order = np.argsort(values, kind="stable")
    x, w = values[order], weights[order]
    n = len(x)
    stand = np.array([k * w[k] + (n - 1) * w[:k].sum() for k in range(n)])
    return float(np.interp(p * stand[-1], stand, x))


def expected(values: np.ndarray, weights: np.ndarray, statistic: str) -> float:
    valid = ~np.isnan(values) & (weights > 0)
    v, w = values[valid], weights[valid]
    if statistic == "count":
        return float(w.sum())
    if v.size == 0:
        return np.nan
    mean = float((w * v).sum() / w.sum())
    variance = float((w * (v - mean) ** 2).sum() / (w.sum() - (w**2).sum() / w.sum())) if v.size > 1 else np.nan
    return {
        "mean": mean, "sum": float((w * v).sum()), "min": float(v.min()), "max": float(v.max()),
        "variance": variance, "sd": np.sqrt(variance), "median": weighted_quantile(v, w, 0.5),
    }[statistic]


def test_coverage_fractions_equal_the_intersection_areas():
    for name, polygon in POLYGONS.items():
        pixels, owners, fractions = coverage_fractions(np.array([polygon]), TRANSFORM, (HEIGHT, WIDTH))
        got = np.zeros(HEIGHT * WIDTH)
        got[pixels] = fractions
        assert (owners == 0).all()
        np.testing.assert_allclose(got.reshape(HEIGHT, WIDTH), shapely_weights(polygon), atol=1e-9, err_msg=name)


def test_coverage_fractions_follow_a_grid_whose_rows_run_northwards():
    south_up = Affine(RES, 0, WEST, 0, RES, NORTH - HEIGHT * RES)
    polygon = POLYGONS["field"]
    pixels, _, fractions = coverage_fractions(np.array([polygon]), south_up, (HEIGHT, WIDTH))
    got = np.zeros(HEIGHT * WIDTH)
    got[pixels] = fractions
    np.testing.assert_allclose(got.reshape(HEIGHT, WIDTH), shapely_weights(polygon, south_up), atol=1e-9)


@pytest.mark.parametrize("statistic", ["mean", "sum", "count", "min", "max", "sd", "variance", "median"])
def test_weighted_statistic_per_polygon_equals_numpy_with_shapely_weights(raster, coverage_evaluator, statistic):
    values, cube = raster
    result = vector.aggregate_spatial(cube, features(POLYGONS), reducer(coverage_evaluator, statistic),
                                      env=coverage_evaluator.env).values
    for k, (name, polygon) in enumerate(POLYGONS.items()):
        weights = shapely_weights(polygon)
        for t in range(len(DATES)):
            # the geometries travel as WGS84 GeoJSON: the round trip moves vertices by nanometres
            np.testing.assert_allclose(result[k, t], expected(values[t], weights, statistic), rtol=1e-7,
                                       err_msg=f"{statistic} of {name} on {DATES[t]}")


def test_quantiles_are_weighted_too(raster, coverage_evaluator):
    values, cube = raster
    result = vector.aggregate_spatial(cube, features(POLYGONS), reducer(coverage_evaluator, "quantiles",
                                                                        probabilities=[0.9]),
                                      env=coverage_evaluator.env).values
    weights = shapely_weights(POLYGONS["holed"])
    valid = ~np.isnan(values[1]) & (weights > 0)
    np.testing.assert_allclose(result[1, 1], weighted_quantile(values[1][valid], weights[valid], 0.9), rtol=1e-9)


def test_a_polygon_inside_one_pixel_gets_its_value_only_with_coverage(raster, coverage_evaluator):
    values, cube = raster
    tiny = features({"tiny": POLYGONS["tiny"]})
    centre = vector.aggregate_spatial(cube, tiny, reducer(coverage_evaluator, "mean")).values
    covered = vector.aggregate_spatial(cube, tiny, reducer(coverage_evaluator, "mean"),
                                       env=coverage_evaluator.env).values
    assert np.isnan(centre).all()
    assert covered[0, 0] == values[0, 50, 20]
    area = vector.aggregate_spatial(cube, tiny, reducer(coverage_evaluator, "count"),
                                    env=coverage_evaluator.env).values
    np.testing.assert_allclose(area[0, 0], 0.075, rtol=1e-6)  # 0.3 × 0.25 of the pixel


def test_the_weighted_median_of_equal_weights_is_numpy_s_median():
    rng = np.random.default_rng(3)
    sizes = np.array([1, 2, 5, 8])
    values = np.concatenate([np.sort(rng.random(n)) for n in sizes])
    starts = np.cumsum(sizes) - sizes
    for p in (0.0, 0.1, 0.5, 0.75, 1.0):
        weighted = quantile_of_sorted(values, starts, sizes, p, np.full(len(values), 0.3))
        plain = [np.quantile(values[s:s + n], p) for s, n in zip(starts, sizes, strict=True)]
        np.testing.assert_allclose(weighted, plain, rtol=1e-12)


def test_points_and_lines_keep_their_touched_pixels_with_weight_one(raster, coverage_evaluator):
    values, cube = raster
    point = shapely.Point(*at(12.5, 7.5))  # the centre of pixel (row 7, col 12)
    line = shapely.LineString([at(60.5, 55.5), at(70.5, 55.5)])  # through eleven pixel centres of row 55
    result = vector.aggregate_spatial(cube, features({"point": point, "line": line}),
                                      reducer(coverage_evaluator, "count"), env=coverage_evaluator.env).values
    assert result[0, 0] == 1
    assert result[1, 0] == 11


def test_a_general_reducer_is_refused_with_coverage(raster, coverage_evaluator):
    _, cube = raster
    nodes = {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}},
             "a": {"process_id": "absolute", "arguments": {"x": {"from_node": "m"}}, "result": True}}
    general = Callback(ProcessGraph(nodes, "a"), coverage_evaluator, {})
    with pytest.raises(OpenEOError, match="aggregate_spatial_pixels"):
        vector.aggregate_spatial(cube, features(POLYGONS), general, env=coverage_evaluator.env)


def test_ignore_nodata_false_gives_nodata_where_a_covered_pixel_is_missing(raster, coverage_evaluator):
    values, cube = raster
    result = vector.aggregate_spatial(cube, features(POLYGONS), reducer(coverage_evaluator, "mean",
                                                                        ignore_nodata=False),
                                      env=coverage_evaluator.env).values
    for k, polygon in enumerate(POLYGONS.values()):
        covered = shapely_weights(polygon) > 0
        for t in range(len(DATES)):
            assert np.isnan(result[k, t]) == bool(np.isnan(values[t][covered]).any())


def test_target_dimension_counts_are_covered_areas(raster, coverage_evaluator):
    values, cube = raster
    result = vector.aggregate_spatial(cube, features({"field": POLYGONS["field"]}),
                                      reducer(coverage_evaluator, "mean"), target_dimension="result",
                                      env=coverage_evaluator.env)
    weights = shapely_weights(POLYGONS["field"])
    total, valid = result.sel(result="total_count").values, result.sel(result="valid_count").values
    np.testing.assert_allclose(total[0], weights.sum(), rtol=1e-9)
    np.testing.assert_allclose(valid[0, 1], weights[~np.isnan(values[1])].sum(), rtol=1e-9)
