"""Dimension processes through the real evaluator and registry, on small Dask cubes and load_collection.

apply_dimension, add/drop/rename_dimension, rename_labels, dimension_labels, filter_labels, trim_cube,
create_data_cube, merge_cubes, flatten_dimensions and unflatten_dimension: values, labels, dimension
types, CRS and band metadata, and that results stay lazy.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Evaluator, parse_process_graph
from processes.formats.cube_json import cube_to_json
from processes.model.raster_cube import (
    AXIS_ATTR,
    band_metadata,
    dimension_type,
    new_cube,
    spatial_dims,
    with_band_metadata,
)
from tests.processes import REGISTRY
from tests.processes import evaluate as run
from tests.processes import run_node as call

DATES = ["2023-01-01", "2023-01-11", "2023-01-21"]
META = {"B02": {"common_name": "blue"}, "B04": {"common_name": "red"}, "B08": {"common_name": "nir"}}


def make_cube(values, dates=DATES, bands=("B02", "B04", "B08"), y=(50.0, 40.0, 30.0, 20.0),
              x=(5.0, 15.0, 25.0, 35.0, 45.0), crs=32632):
    cube = new_cube(
        da.from_array(values, chunks=(1, 1, 2, 5)),
        {"t": ("temporal", pd.to_datetime(list(dates))), "bands": ("bands", list(bands)),
         "y": ("spatial", list(y)), "x": ("spatial", list(x))},
        crs=crs,
    )
    return with_band_metadata(cube, {b: META.get(b, {}) for b in bands})


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    values = rng.uniform(100, 5000, (3, 3, 4, 5)).astype("float32")
    values[1, 0, 0, 0] = np.nan
    return make_cube(values), values


def child(process_id: str, **arguments):
    """A child graph of one process; ``{"from_parameter": …}`` values pass through."""
    return {"process_graph": {"c": {"process_id": process_id, "arguments": arguments, "result": True}}}


def on_data(process_id: str, **arguments):
    return child(process_id, data={"from_parameter": "data"}, **arguments)


def assert_cube_metadata(result, cube):
    """Types, axes, CRS and band metadata as in ``cube``; still lazy."""
    assert result.chunks is not None
    assert [dimension_type(result, d) for d in result.dims] == [dimension_type(cube, d) for d in cube.dims]
    assert spatial_dims(result) == spatial_dims(cube)
    assert result.rio.crs == cube.rio.crs
    assert band_metadata(result) == band_metadata(cube)


def raises(code: str, process_id: str, **arguments):
    with pytest.raises(OpenEOError) as info:
        call(process_id, **arguments)
    assert info.value.code == code, info.value.message
    return info.value


# --- apply_dimension -----------------------------------------------------------------------------


def test_apply_dimension_sort_over_time_keeps_labels_and_metadata(data):
    cube, values = data
    result = call("apply_dimension", data=cube, dimension="t", process=on_data("sort"))
    assert_cube_metadata(result, cube)
    assert list(result.t.values) == list(cube.t.values)
    expected = np.sort(values, axis=0)  # NaN last, as openEO's sort puts no-data
    np.testing.assert_array_equal(result.values, expected)


def test_apply_dimension_cumulative_sum_over_time(data):
    cube, values = data
    result = call("apply_dimension", data=cube, dimension="t", process=on_data("cumsum"))
    expected = np.nancumsum(values, axis=0)
    expected[np.isnan(values)] = np.nan  # no-data stays no-data
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)
    assert_cube_metadata(result, cube)


def test_apply_dimension_with_fewer_values_numbers_the_labels_and_keeps_the_type(data):
    cube, values = data
    result = call("apply_dimension", data=cube, dimension="t", process=on_data("extrema"))
    assert result.dims == cube.dims and result.sizes["t"] == 2
    assert list(result.t.values) == [0, 1]
    assert dimension_type(result, "t") == "temporal"
    np.testing.assert_allclose(result.isel(t=1).values, np.nanmax(values, axis=0))


def test_apply_dimension_to_a_new_target_dimension_replaces_the_source_in_place(data):
    cube, values = data
    result = call("apply_dimension", data=cube, dimension="bands", target_dimension="stats",
                  process=on_data("quantiles", probabilities=[0.25, 0.5, 0.75, 1]))
    assert result.dims == ("t", "stats", "y", "x")
    assert dimension_type(result, "stats") == "other"
    assert list(result.stats.values) == [0, 1, 2, 3]
    assert result.rio.crs == cube.rio.crs and band_metadata(result) == {}
    np.testing.assert_allclose(result.isel(stats=3).values, np.nanmax(values, axis=1))


def test_apply_dimension_fills_an_existing_single_label_target_dimension(data):
    cube, values = data
    with_source = call("add_dimension", data=cube, name="source", label="s2")
    result = call("apply_dimension", data=with_source, dimension="t", target_dimension="source",
                  process=on_data("extrema"))
    assert result.dims == ("source", "bands", "y", "x")
    assert list(result.source.values) == [0, 1]
    np.testing.assert_allclose(result.isel(source=0).values, np.nanmin(values, axis=0))


def test_apply_dimension_refuses_a_target_dimension_with_several_labels(data):
    cube, _ = data
    error = raises("ProcessParameterInvalid", "apply_dimension", data=cube, dimension="t",
                   target_dimension="bands", process=on_data("extrema"))
    assert "'bands'" in error.message


def test_apply_dimension_single_value_per_pixel_is_an_array_of_one(data):
    cube, values = data
    result = call("apply_dimension", data=cube, dimension="t", process=on_data("mean"))
    assert result.sizes["t"] == 1 and list(result.t.values) == [0]
    np.testing.assert_allclose(result.isel(t=0).values, np.nanmean(values, axis=0), rtol=1e-6)


def test_apply_dimension_callback_sees_integer_nodata_as_nan():
    values = np.array([[[1, 255]], [[3, 255]], [[255, 255]]], dtype=np.int64)
    cube = new_cube(da.from_array(values), {"bands": ("bands", ["a", "b", "c"]), "y": ("spatial", [1.0]),
                                            "x": ("spatial", [1.0, 2.0])})
    cube.attrs["_FillValue"] = 255
    result = call("apply_dimension", data=cube, dimension="bands", process=on_data("sort"))
    np.testing.assert_array_equal(result.values[:, 0, 0], [1, 3, np.nan])
    assert np.isnan(result.values[:, 0, 1]).all()


def test_apply_dimension_unknown_dimension(data):
    cube, _ = data
    raises("DimensionNotAvailable", "apply_dimension", data=cube, dimension="z", process=on_data("sort"))


# --- add, drop and rename dimensions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "label", "dim_type", "value"),
    [("b", "B1", "bands", "B1"), ("t2", "2010-01-01T00:00:00.0Z", "temporal", np.datetime64("2010-01-01")),
     ("var", 1, "other", 1)],
)
def test_add_dimension_puts_a_typed_single_label_dimension_first(data, name, label, dim_type, value):
    cube, _ = data
    result = call("add_dimension", data=cube, name=name, label=label, type=dim_type)
    assert result.dims == (name, *cube.dims)
    assert dimension_type(result, name) == dim_type and list(result[name].values) == [value]
    assert result.chunks is not None and result.rio.crs == cube.rio.crs
    assert band_metadata(cube) == band_metadata(result.isel({name: 0}))


def test_add_dimension_spatial_gets_the_first_free_axis(data):
    cube, _ = data
    result = call("add_dimension", data=cube, name="height", label=0, type="spatial")
    assert result["height"].attrs[AXIS_ATTR] == "z"
    raises("DimensionExists", "add_dimension", data=result, name="h2", label=0, type="spatial")


def test_add_dimension_existing_name(data):
    cube, _ = data
    raises("DimensionExists", "add_dimension", data=cube, name="t", label="2020-01-01", type="temporal")


def test_create_data_cube_then_add_dimensions():
    result = run({
        "c": {"process_id": "create_data_cube", "arguments": {}},
        "x": {"process_id": "add_dimension", "arguments": {"data": {"from_node": "c"}, "name": "x", "label": 5.0,
                                                             "type": "spatial"}},
        "y": {"process_id": "add_dimension", "arguments": {"data": {"from_node": "x"}, "name": "y", "label": 7.0,
                                                             "type": "spatial"}, "result": True},
    })
    assert result.dims == ("y", "x") and spatial_dims(result) == ("y", "x")
    assert np.isnan(result.values).all()
    assert cube_to_json(run({"c": {"process_id": "create_data_cube", "arguments": {}, "result": True}})) == {
        "type": "datacube", "nodata": None, "order": [], "dimensions": {}, "data": []}


def test_drop_dimension_with_one_label(data):
    cube, values = data
    one = cube.isel(bands=[1])
    result = call("drop_dimension", data=one, name="bands")
    assert result.dims == ("t", "y", "x") and "bands" not in result.coords
    assert result.rio.crs == cube.rio.crs and result.chunks is not None
    np.testing.assert_array_equal(result.values, values[:, 1])


def test_drop_dimension_errors(data):
    cube, _ = data
    raises("DimensionLabelCountMismatch", "drop_dimension", data=cube, name="t")
    raises("DimensionNotAvailable", "drop_dimension", data=cube, name="foo")


def test_rename_dimension_keeps_type_axis_labels_and_metadata(data):
    cube, _ = data
    result = call("rename_dimension", data=cube, source="bands", target="b")
    assert result.dims == ("t", "b", "y", "x")
    assert dimension_type(result, "b") == "bands" and band_metadata(result) == band_metadata(cube)
    lon = call("rename_dimension", data=cube, source="x", target="lon")
    assert spatial_dims(lon) == ("y", "lon") and list(lon.lon.values) == list(cube.x.values)
    assert lon.rio.crs == cube.rio.crs


def test_rename_dimension_errors(data):
    cube, _ = data
    raises("DimensionNotAvailable", "rename_dimension", data=cube, source="foo", target="bar")
    raises("DimensionExists", "rename_dimension", data=cube, source="t", target="x")


# --- labels --------------------------------------------------------------------------------------


def test_rename_labels_on_bands_moves_the_band_metadata(data):
    cube, values = data
    result = call("rename_labels", data=cube, dimension="bands", source=["B08", "B04"], target=["nir", "red"])
    assert list(result.bands.values) == ["B02", "red", "nir"]
    assert band_metadata(result) == {"B02": {"common_name": "blue"}, "red": {"common_name": "red"},
                                     "nir": {"common_name": "nir"}}
    assert result.chunks is not None
    np.testing.assert_array_equal(result.sel(bands="nir").values, values[:, 2])


def test_rename_labels_of_enumerated_labels_without_source():
    cube = new_cube(da.zeros((3, 2)), {"bands": ("bands", [0, 1, 2]), "x": ("spatial", [1.0, 2.0])})
    result = call("rename_labels", data=cube, dimension="bands", target=["red"])
    assert list(result.bands.values) == ["red", 1, 2]


def test_rename_labels_of_time_accepts_any_rfc3339_form(data):
    cube, _ = data
    result = call("rename_labels", data=cube, dimension="t", source=["2023-01-11T01:00:00+01:00"],
                  target=["2023-02-01T00:00:00Z"])
    assert result.t.dtype.kind == "M"
    assert [str(v)[:10] for v in result.t.values] == ["2023-01-01", "2023-02-01", "2023-01-21"]


@pytest.mark.parametrize(
    ("arguments", "code"),
    [({"target": ["B1", "B2", "B3"]}, "LabelsNotEnumerated"),
     ({"target": ["B1"], "source": ["B02", "B04"]}, "LabelMismatch"),
     ({"target": ["bar"], "source": ["foo"]}, "LabelNotAvailable"),
     ({"target": ["B08"], "source": ["B04"]}, "LabelExists")],
)
def test_rename_labels_errors(data, arguments, code):
    cube, _ = data
    raises(code, "rename_labels", data=cube, dimension="bands", **arguments)


def test_dimension_labels(data):
    cube, _ = data
    assert call("dimension_labels", data=cube, dimension="t") == [
        "2023-01-01T00:00:00Z", "2023-01-11T00:00:00Z", "2023-01-21T00:00:00Z"]
    assert call("dimension_labels", data=cube, dimension="bands") == ["B02", "B04", "B08"]
    assert call("dimension_labels", data=cube, dimension="x") == [5.0, 15.0, 25.0, 35.0, 45.0]
    raises("DimensionNotAvailable", "dimension_labels", data=cube, dimension="foo")


def test_filter_labels_on_numeric_labels(data):
    cube, values = data
    condition = child("lt", x={"from_parameter": "value"}, y=30)
    result = call("filter_labels", data=cube, dimension="x", condition=condition)
    assert list(result.x.values) == [5.0, 15.0, 25.0]
    assert_cube_metadata(result, cube)
    np.testing.assert_array_equal(result.values, values[..., :3])


def test_filter_labels_with_a_process_of_plain_values(data):
    cube, _ = data
    # array_contains doesn't look into a cube: the condition is asked label by label
    condition = child("array_contains", data=[15, 35], value={"from_parameter": "value"})
    result = call("filter_labels", data=cube, dimension="x", condition=condition)
    assert list(result.x.values) == [15.0, 35.0]


def test_filter_labels_on_bands_and_dates_sees_strings(data):
    cube, _ = data
    bands = call("filter_labels", data=cube, dimension="bands",
                 condition=child("neq", x={"from_parameter": "value"}, y="B04"))
    assert list(bands.bands.values) == ["B02", "B08"]
    assert band_metadata(bands) == {"B02": {"common_name": "blue"}, "B08": {"common_name": "nir"}}
    dates = call("filter_labels", data=cube, dimension="t",
                 condition=child("eq", x={"from_parameter": "value"}, y="2023-01-11T00:00:00Z"))
    assert [str(v)[:10] for v in dates.t.values] == ["2023-01-11"]


def test_trim_cube_trims_ordered_dimensions_at_the_ends_and_others_anywhere(data):
    cube, values = data
    values = values.copy()
    values[:, :, 0, :] = np.nan  # first row
    values[:, :, :, -1] = np.nan  # last column
    values[:, 1] = np.nan  # the middle band
    values[1] = np.nan  # the middle date
    result = call("trim_cube", data=make_cube(values))
    assert list(result.bands.values) == ["B02", "B08"]
    assert len(result.t) == 3  # a gap inside a time series stays
    assert list(result.y.values) == [40.0, 30.0, 20.0] and list(result.x.values) == [5.0, 15.0, 25.0, 35.0]
    assert_cube_metadata(result, cube.isel(bands=[0, 2]))


def test_trim_cube_reads_nothing_when_only_validating(data):
    cube, _ = data

    def unreadable(block):
        raise AssertionError("validation must not read the data")

    lazy = cube.copy(data=cube.data.map_blocks(unreadable, dtype=cube.dtype))
    graph = parse_process_graph({"process_graph": {"n": {"process_id": "trim_cube", "arguments": {
        "data": {"from_parameter": "cube"}}, "result": True}}})
    result = Evaluator(REGISTRY, ProcessEnv(collections=None, validate_only=True)).evaluate(graph, {"cube": lazy})
    assert result.sizes == cube.sizes


# --- merge_cubes ---------------------------------------------------------------------------------


def test_merge_cubes_with_other_bands_appends_them(data):
    cube, values = data
    result = call("merge_cubes", cube1=cube.sel(bands=["B08", "B02"]), cube2=cube.sel(bands=["B04"]))
    assert list(result.bands.values) == ["B08", "B02", "B04"]
    assert_cube_metadata(result, cube.sel(bands=["B08", "B02", "B04"]))
    assert result.dtype == cube.dtype
    np.testing.assert_array_equal(result.values, values[:, [2, 0, 1]])


def test_merge_cubes_of_different_dates_sorts_them(data):
    cube, values = data
    result = call("merge_cubes", cube1=cube.isel(t=[2]), cube2=cube.isel(t=[0, 1]))
    assert list(result.t.values) == list(cube.t.values)
    assert_cube_metadata(result, cube)
    np.testing.assert_array_equal(result.values, values)


def test_merge_cubes_overlap_needs_a_resolver(data):
    cube, _ = data
    error = raises("OverlapResolverMissing", "merge_cubes", cube1=cube.isel(t=[0, 1]), cube2=cube.isel(t=[1, 2]))
    assert "overlap_resolver" in error.message


def test_merge_cubes_resolves_the_overlap_and_keeps_the_rest(data):
    cube, values = data
    other = cube.isel(t=[1, 2]).copy(data=cube.isel(t=[1, 2]).data * 10)
    resolver = child("subtract", x={"from_parameter": "y"}, y={"from_parameter": "x"})
    result = call("merge_cubes", cube1=cube.isel(t=[0, 1]), cube2=other, overlap_resolver=resolver)
    assert_cube_metadata(result, cube)
    np.testing.assert_array_equal(result.values[0], values[0])
    np.testing.assert_allclose(result.values[1], values[1] * 9, rtol=1e-6)
    np.testing.assert_allclose(result.values[2], values[2] * 10, rtol=1e-6)


def test_merge_cubes_broadcasts_a_lower_dimensional_cube(data):
    cube, values = data
    dem = cube.isel(t=0, bands=0, drop=True)
    resolver = child("add", x={"from_parameter": "x"}, y={"from_parameter": "y"})
    result = call("merge_cubes", cube1=cube, cube2=dem, overlap_resolver=resolver)
    assert result.dims == cube.dims
    assert_cube_metadata(result, cube)
    np.testing.assert_allclose(result.values, values + values[0, 0], rtol=1e-6)


def test_merge_cubes_mosaics_adjacent_tiles_with_nodata_between(data):
    cube, values = data
    left, right = cube.isel(x=[0, 1]), cube.isel(x=[3, 4])
    result = call("merge_cubes", cube1=right, cube2=left)
    assert list(result.x.values) == [5.0, 15.0, 35.0, 45.0]
    assert_cube_metadata(result, cube)
    np.testing.assert_array_equal(result.values, values[..., [0, 1, 3, 4]])
    shifted = call("merge_cubes", cube1=left.isel(t=[0]), cube2=right.isel(t=[1]))
    assert shifted.sizes == {"t": 2, "bands": 3, "y": 4, "x": 4}
    assert np.isnan(shifted.isel(t=0, x=[2, 3]).values).all() and np.isnan(shifted.isel(t=1, x=[0, 1]).values).all()
    np.testing.assert_array_equal(shifted.isel(t=1, x=[2, 3]).values, values[1][..., [3, 4]])


def test_merge_cubes_snaps_nearly_equal_coordinates_to_the_grid(data):
    cube, values = data
    other = cube.sel(bands=["B04"]).assign_coords(x=cube.x + 1e-9)
    other["x"].attrs.update(cube.x.attrs)
    result = call("merge_cubes", cube1=cube.sel(bands=["B02"]), cube2=other)
    assert list(result.x.values) == list(cube.x.values) and result.sizes["bands"] == 2


def test_merge_cubes_resamples_another_crs_or_grid_onto_cube1(data):
    cube, values = data
    utm33 = cube.sel(bands=["B04"]).rio.write_crs(32633)
    shifted = cube.sel(bands=["B08"]).assign_coords(x=cube.x + 3)
    shifted["x"].attrs.update(cube.x.attrs)
    for other in (utm33, shifted):
        result = call("merge_cubes", cube1=cube.sel(bands=["B02"]), cube2=other)
        assert list(result.x.values) == list(cube.x.values) and list(result.y.values) == list(cube.y.values)
        assert result.sizes["bands"] == 2 and result.rio.crs == cube.rio.crs
        np.testing.assert_array_equal(result.isel(bands=0).values, values[:, 0])


def test_merge_cubes_refuses_dimensions_of_other_types(data):
    cube, _ = data
    other_type = call("rename_dimension", data=call("drop_dimension", data=cube.isel(t=[0]), name="t"),
                      source="bands", target="t")
    error = raises("ProcessParameterInvalid", "merge_cubes", cube1=cube, cube2=other_type)
    assert "'t'" in error.message


def test_merge_cubes_of_separately_added_dimensions_stacks_them(data):
    cube, values = data
    one = call("add_dimension", data=cube, name="source", label="a")
    two = call("add_dimension", data=cube * 2, name="source", label="b")
    result = call("merge_cubes", cube1=one, cube2=two)
    assert list(result.source.values) == ["a", "b"]
    np.testing.assert_allclose(result.sel(source="b").values, values * 2)


# --- flatten and unflatten -----------------------------------------------------------------------


def test_flatten_and_unflatten_round_trip(data):
    cube, values = data
    flat = call("flatten_dimensions", data=cube, dimensions=["bands", "t"], target_dimension="bt")
    assert flat.dims == ("bt", "y", "x") and flat.sizes["bt"] == 9
    assert flat.bt.values[1] == "B02~2023-01-11T00:00:00Z"
    assert dimension_type(flat, "bt") == "other" and flat.chunks is not None and flat.rio.crs == cube.rio.crs
    np.testing.assert_array_equal(flat.values[1], values[1, 0])
    back = call("unflatten_dimension", data=flat, dimension="bt", target_dimensions=["b", "time"])
    assert back.dims == ("b", "time", "y", "x")
    assert list(back.b.values) == ["B02", "B04", "B08"]
    np.testing.assert_array_equal(back.values, values.transpose(1, 0, 2, 3))


def test_flatten_and_unflatten_errors(data):
    cube, _ = data
    raises("TargetDimensionExists", "flatten_dimensions", data=cube, dimensions=["t", "bands"], target_dimension="x")
    raises("DimensionNotAvailable", "flatten_dimensions", data=cube, dimensions=["t", "z"], target_dimension="tz")
    raises("ProcessParameterInvalid", "unflatten_dimension", data=cube, dimension="bands",
           target_dimensions=["a", "b"])


# --- cubes from load_collection ------------------------------------------------------------------

LC = "DEMO_SENTINEL2_L2A"
BOX = {"west": 601000, "south": 5037000, "east": 601300, "north": 5037300, "crs": 32632}


@pytest.fixture(scope="module")
def load_env(demo_data) -> ProcessEnv:
    from processes.data.stac_sources import CollectionCatalog, open_static

    return ProcessEnv(collections=CollectionCatalog(open_static(demo_data / "demo" / "catalog.json")))


def load(bands: list[str], dates=("2023-05-01", "2023-07-01")) -> dict:
    return {"process_id": "load_collection", "arguments": {
        "id": LC, "spatial_extent": BOX, "temporal_extent": list(dates), "bands": bands}}


def run_loaded(env: ProcessEnv, nodes: dict):
    return Evaluator(REGISTRY, env).evaluate(parse_process_graph({"process_graph": nodes}))


def test_merge_of_two_loads_with_different_bands_equals_one_load(load_env):
    merged = run_loaded(load_env, {"a": load(["B04"]), "b": load(["B08"]), "m": {
        "process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "a"}, "cube2": {"from_node": "b"}},
        "result": True}})
    both = run_loaded(load_env, {"a": {**load(["B04", "B08"]), "result": True}})
    assert_cube_metadata(merged, both)
    np.testing.assert_array_equal(merged.values, both.values)


def test_merge_of_two_loads_with_overlapping_dates(load_env):
    resolver = child("max", data=[{"from_parameter": "x"}, {"from_parameter": "y"}])
    merged = run_loaded(load_env, {"a": load(["B04"], ("2023-05-01", "2023-06-10")),
                                   "b": load(["B04"], ("2023-05-15", "2023-07-01")), "m": {
        "process_id": "merge_cubes", "arguments": {"cube1": {"from_node": "a"}, "cube2": {"from_node": "b"},
                                                   "overlap_resolver": resolver}, "result": True}})
    whole = run_loaded(load_env, {"a": {**load(["B04"]), "result": True}})
    assert list(merged.t.values) == list(whole.t.values)
    assert_cube_metadata(merged, whole)
    np.testing.assert_array_equal(merged.values, whole.values)


@pytest.mark.parametrize(("process", "expected"), [
    ("sort", lambda v: np.sort(v, axis=0)),
    ("cumsum", lambda v: np.where(np.isnan(v), np.nan, np.nancumsum(v, axis=0))),
])
def test_apply_dimension_over_time_of_a_load(load_env, process, expected):
    nodes = {"a": load(["B04", "B08"]), "s": {"process_id": "apply_dimension", "arguments": {
        "data": {"from_node": "a"}, "dimension": "t", "process": on_data(process)}, "result": True}}
    result = run_loaded(load_env, nodes)
    cube = run_loaded(load_env, {"a": {**load(["B04", "B08"]), "result": True}})
    assert_cube_metadata(result, cube)
    assert list(result.t.values) == list(cube.t.values)
    np.testing.assert_allclose(result.values, expected(cube.values), rtol=1e-6)


def test_rename_labels_of_loaded_bands_keeps_their_metadata(load_env):
    nodes = {"a": load(["B04", "B08"]), "r": {"process_id": "rename_labels", "arguments": {
        "data": {"from_node": "a"}, "dimension": "bands", "source": ["B08"], "target": ["nir"]}, "result": True}}
    result = run_loaded(load_env, nodes)
    assert list(result.bands.values) == ["B04", "nir"]
    assert band_metadata(result)["nir"]["common_name"] == "nir"
    assert band_metadata(result)["B04"]["common_name"] == "red"
    assert result.chunks is not None and result.rio.crs.to_epsg() == 32632
