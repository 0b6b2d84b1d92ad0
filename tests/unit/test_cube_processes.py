"""Cube processes through the real evaluator and registry: apply, reduce_dimension, filters, ndvi."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from processes.core.errors import DimensionNotAvailable, OpenEOError
from processes.model.raster_cube import band_dim, dimension_type, new_cube
from tests.processes import REGISTRY
from tests.processes import evaluate as run


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    values = rng.uniform(100, 5000, (3, 3, 4, 5)).astype("float32")
    values[0, 1, 0, 0] = np.nan
    cube = new_cube(
        da.from_array(values, chunks=(1, 1, 4, 5)),
        {
            "t": ("temporal", pd.to_datetime(["2023-01-01", "2023-01-11", "2023-01-21"])),
            "bands": ("bands", ["B02", "B04", "B08"]),
            "y": ("spatial", [50.0, 40.0, 30.0, 20.0]),
            "x": ("spatial", [5.0, 15.0, 25.0, 35.0, 45.0]),
        },
        crs=32632,
    )
    from processes.model.raster_cube import with_band_metadata

    cube = with_band_metadata(cube, {"B02": {"common_name": "blue"}, "B04": {"common_name": "red"},
                                     "B08": {"common_name": "nir"}})
    return cube, values


def data_node():
    return {"from_parameter": "cube"}


def reducer(process_id, **arguments):
    return {"process_graph": {"r": {"process_id": process_id,
                                    "arguments": {"data": {"from_parameter": "data"}, **arguments}, "result": True}}}


def test_reduce_dimension_over_time_with_max(data):
    cube, values = data
    result = run({"r": {"process_id": "reduce_dimension", "arguments": {
        "data": data_node(), "dimension": "t", "reducer": reducer("max")}, "result": True}}, cube=cube)
    assert result.dims == ("bands", "y", "x")
    assert dimension_type(result, "bands") == "bands"
    assert result.rio.crs.to_epsg() == 32632
    np.testing.assert_allclose(result.values, np.nanmax(values, axis=0))


def test_reduce_dimension_over_bands_with_a_band_math_graph(data):
    cube, values = data
    graph = {"process_graph": {
        "nir": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B08"}},
        "red": {"process_id": "array_element", "arguments": {"data": {"from_parameter": "data"}, "label": "B04"}},
        "d": {"process_id": "subtract", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
        "s": {"process_id": "add", "arguments": {"x": {"from_node": "nir"}, "y": {"from_node": "red"}}},
        "q": {"process_id": "divide", "arguments": {"x": {"from_node": "d"}, "y": {"from_node": "s"}}, "result": True},
    }}
    result = run({"r": {"process_id": "reduce_dimension", "arguments": {
        "data": data_node(), "dimension": "bands", "reducer": graph}, "result": True}}, cube=cube)
    expected = (values[:, 2] - values[:, 1]) / (values[:, 2] + values[:, 1])
    assert result.dims == ("t", "y", "x")
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)


def test_reduce_dimension_unknown_dimension(data):
    cube, _ = data
    with pytest.raises(DimensionNotAvailable, match="'time'.*t \\(temporal\\)"):
        run({"r": {"process_id": "reduce_dimension", "arguments": {
            "data": data_node(), "dimension": "time", "reducer": reducer("mean")}, "result": True}}, cube=cube)


def test_reduce_dimension_needs_one_value_per_array(data):
    cube, _ = data
    with pytest.raises(OpenEOError, match="single value"):
        run({"r": {"process_id": "reduce_dimension", "arguments": {
            "data": data_node(), "dimension": "t", "reducer": {"process_graph": {"a": {
                "process_id": "add", "arguments": {"x": {"from_parameter": "data"}, "y": 1}, "result": True}}}},
            "result": True}}, cube=cube)


def test_apply_with_linear_scale_range_and_context(data):
    cube, values = data
    process = {"process_graph": {"s": {"process_id": "linear_scale_range", "arguments": {
        "x": {"from_parameter": "x"}, "inputMin": 0, "inputMax": {"from_parameter": "context"},
        "outputMin": 0, "outputMax": 255}, "result": True}}}
    result = run({"a": {"process_id": "apply", "arguments": {
        "data": data_node(), "process": process, "context": 5000}, "result": True}}, cube=cube)
    assert result.dims == cube.dims
    np.testing.assert_allclose(result.values, np.clip(values, 0, 5000) / 5000 * 255, rtol=1e-5)


def test_filter_bbox_keeps_pixel_centres_in_the_box(data):
    cube, _ = data
    result = run({"f": {"process_id": "filter_bbox", "arguments": {
        "data": data_node(), "extent": {"west": 10, "east": 25, "south": 30, "north": 45, "crs": 32632}},
        "result": True}}, cube=cube)
    assert result.x.values.tolist() == [15.0, 25.0]
    assert result.y.values.tolist() == [40.0, 30.0]


def test_filter_temporal_is_left_closed(data):
    cube, _ = data
    result = run({"f": {"process_id": "filter_temporal", "arguments": {
        "data": data_node(), "extent": ["2023-01-11", "2023-01-21"]}, "result": True}}, cube=cube)
    assert [str(t)[:10] for t in result.t.values] == ["2023-01-11"]


def test_filter_bands_by_name_and_common_name(data):
    cube, _ = data
    result = run({"f": {"process_id": "filter_bands", "arguments": {
        "data": data_node(), "bands": ["nir", "B02"]}, "result": True}}, cube=cube)
    assert result.bands.values.tolist() == ["B08", "B02"]


def test_filter_bands_unknown_band(data):
    cube, _ = data
    with pytest.raises(OpenEOError, match="B99"):
        run({"f": {"process_id": "filter_bands", "arguments": {"data": data_node(), "bands": ["B99"]},
                   "result": True}}, cube=cube)


def test_ndvi_by_common_names_drops_the_band_dimension(data):
    cube, values = data
    result = run({"n": {"process_id": "ndvi", "arguments": {"data": data_node()}, "result": True}}, cube=cube)
    assert band_dim(result) is None
    np.testing.assert_allclose(result.values, (values[:, 2] - values[:, 1]) / (values[:, 2] + values[:, 1]),
                               rtol=1e-6)


def test_ndvi_with_target_band_appends_a_band(data):
    cube, _ = data
    result = run({"n": {"process_id": "ndvi", "arguments": {"data": data_node(), "target_band": "NDVI"},
                        "result": True}}, cube=cube)
    assert result.bands.values.tolist() == ["B02", "B04", "B08", "NDVI"]


def test_ndvi_without_red_band_is_ambiguous(data):
    cube, _ = data
    with pytest.raises(OpenEOError) as err:
        run({"n": {"process_id": "ndvi", "arguments": {"data": data_node(), "red": "B05"}, "result": True}},
            cube=cube)
    assert err.value.code == "RedBandAmbiguous"


def test_every_registered_process_has_a_spec():
    for pid in REGISTRY:
        assert REGISTRY[pid].spec["id"] == pid
