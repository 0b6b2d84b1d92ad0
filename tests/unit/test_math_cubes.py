"""Element-wise, reducer and array processes on cubes: lazy, NaN as no-data, along ARRAY_DIM."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from processes.core.errors import OpenEOError, ProcessParameterInvalid
from processes.library import arrays, logic, math, reducers
from processes.model.raster_cube import ARRAY_DIM, TYPE_ATTR, new_cube

NAN = np.nan
# bands × y × x; B04 has no-data at (0, 0), B08 at (1, 1).
B04 = [[NAN, 2.0], [3.0, 4.0]]
B08 = [[8.0, 6.0], [5.0, NAN]]


def _forbid_compute(*args, **kwargs):
    raise AssertionError("a process computed the cube; processes must stay lazy")


@pytest.fixture
def no_compute():
    """Fails the test if anything computes a Dask graph while it runs."""
    with dask.config.set(scheduler=_forbid_compute):
        yield


@pytest.fixture
def cube() -> xr.DataArray:
    values = da.from_array(np.array([B04, B08]), chunks=(1, 1, 2))
    dims = {"bands": ("bands", ["B04", "B08"]), "y": ("spatial", [10.0, 20.0]), "x": ("spatial", [1.0, 2.0])}
    return new_cube(values, dims, crs="EPSG:32632")


@pytest.fixture
def array(cube) -> xr.DataArray:
    """The cube as a reducer of reduce_dimension(dimension="bands") sees it."""
    return cube.rename({"bands": ARRAY_DIM})


def values_of(result: xr.DataArray) -> list:
    return np.asarray(result.compute().values).tolist()


def same(actual: list, expected: list) -> bool:
    return np.allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), equal_nan=True)


def assert_lazy(result) -> None:
    assert isinstance(result, xr.DataArray)
    assert result.chunks is not None, "the result is not Dask-backed"


# --- element-wise ---------------------------------------------------------------------------------
def test_add_on_a_cube_stays_lazy_and_keeps_coordinates(cube, no_compute):
    result = math.add(x=cube, y=1)
    assert_lazy(result)
    assert result.dims == cube.dims
    assert result["bands"].attrs[TYPE_ATTR] == "bands"
    assert result.rio.crs == cube.rio.crs


def test_add_on_a_cube_keeps_nodata(cube):
    assert same(values_of(math.add(x=cube, y=1)), [[[NAN, 3], [4, 5]], [[9, 7], [6, NAN]]])


def test_null_operand_gives_a_cube_of_nodata(cube, no_compute):
    result = math.multiply(x=cube, y=None)
    assert_lazy(result)
    assert bool(np.isnan(result.compute(scheduler="sync")).all())


def test_integer_cubes_do_not_wrap_around(cube):
    counts = cube.fillna(0).astype(np.uint16)
    difference = math.subtract(x=counts.sel(bands="B04"), y=counts.sel(bands="B08"))
    assert difference.dtype.kind == "f"
    assert values_of(difference) == [[-8.0, -4.0], [-2.0, 4.0]]


def test_division_by_zero_gives_infinity_in_cubes(cube):
    with np.errstate(divide="ignore", invalid="ignore"):
        assert same(values_of(math.divide(x=cube.sel(bands="B08"), y=0)), [[np.inf, np.inf], [np.inf, NAN]])


def test_comparison_with_nodata_is_nodata(cube, no_compute):
    result = logic.gt(x=cube.sel(bands="B04"), y=2.5)
    assert_lazy(result)
    assert same(result.compute(scheduler="sync").values.tolist(), [[NAN, 0], [1, 1]])


def test_comparison_of_integer_cubes_stays_boolean(cube):
    counts = cube.fillna(0).astype(np.int16)
    assert logic.gt(x=counts, y=2).dtype == bool


def test_and_follows_the_three_valued_truth_table_on_cubes(cube):
    # B04 > 2.5 is [[null, false], [true, true]]; with false, null and true:
    high = logic.gt(x=cube.sel(bands="B04"), y=2.5)
    assert same(values_of(logic.logical_and(x=high, y=False)), [[0, 0], [0, 0]])
    assert same(values_of(logic.logical_and(x=high, y=True)), [[NAN, 0], [1, 1]])
    assert same(values_of(logic.logical_or(x=high, y=True)), [[1, 1], [1, 1]])
    assert same(values_of(logic.logical_or(x=high, y=None)), [[NAN, NAN], [1, 1]])


def test_if_takes_reject_where_the_value_is_nodata(cube):
    high = logic.gt(x=cube.sel(bands="B04"), y=2.5)
    assert same(values_of(logic.if_then_else(value=high, accept=1, reject=0)), [[0, 0], [1, 1]])


def test_is_nodata_finds_nan_in_cubes(cube):
    assert values_of(logic.is_nodata(x=cube.sel(bands="B04"))) == [[True, False], [False, False]]


# --- reducers along ARRAY_DIM ---------------------------------------------------------------------
def test_mean_reduces_along_the_array_dimension_lazily(array, no_compute):
    result = reducers.mean(data=array)
    assert_lazy(result)
    assert result.dims == ("y", "x")
    assert result.rio.crs == array.rio.crs


def test_mean_ignores_nodata_unless_told_otherwise(array):
    assert same(values_of(reducers.mean(data=array)), [[8, 4], [4, 4]])
    assert same(values_of(reducers.mean(data=array, ignore_nodata=False)), [[NAN, 4], [4, NAN]])


def test_sum_of_nothing_but_nodata_is_nodata(array):
    only_nodata = array.where(False)
    assert same(values_of(reducers.sum_values(data=only_nodata)), [[NAN, NAN], [NAN, NAN]])


def test_sd_is_the_sample_standard_deviation(array):
    with np.errstate(invalid="ignore", divide="ignore"):
        result = values_of(reducers.standard_deviation(data=array))
    assert same(result, [[NAN, np.std([2, 6], ddof=1)], [np.std([3, 5], ddof=1), NAN]])


def test_quantiles_give_an_array_along_the_array_dimension(array, no_compute):
    result = reducers.quantiles(data=array, probabilities=[0.5])
    assert_lazy(result)
    assert result.dims == (ARRAY_DIM, "y", "x")
    assert same(result.compute(scheduler="sync").values.tolist(), [[[8, 4], [4, 4]]])


def test_first_skips_nodata_per_pixel(array, no_compute):
    result = reducers.first(data=array)
    assert_lazy(result)
    assert same(result.compute(scheduler="sync").values.tolist(), [[8, 2], [3, 4]])


def test_count_counts_valid_values_or_those_a_condition_accepts(array):
    assert values_of(reducers.count(data=array)) == [[1, 2], [2, 1]]
    above_four = reducers.count(data=array, condition=lambda x, context: logic.gt(x=x, y=4))
    assert values_of(above_four) == [[1, 1], [1, 0]]


def test_all_ignores_nodata_and_is_nodata_for_nothing_else(array):
    positive = logic.gt(x=array, y=0)
    assert same(values_of(reducers.all_true(data=positive)), [[1, 1], [1, 1]])
    assert same(values_of(reducers.all_true(data=positive, ignore_nodata=False)), [[NAN, 1], [1, NAN]])


def test_a_list_of_cubes_is_stacked_along_the_array_dimension(array, no_compute):
    elements = [arrays.array_element(data=array, index=0), arrays.array_element(data=array, index=1)]
    result = reducers.mean(data=elements)
    assert_lazy(result)
    assert same(result.compute(scheduler="sync").values.tolist(), [[8, 4], [4, 4]])


def test_array_create_from_cubes_gives_an_array(array, no_compute):
    result = arrays.array_create(data=[arrays.array_element(data=array, label="B08"), 1, None])
    assert_lazy(result)
    assert result.sizes[ARRAY_DIM] == 3
    assert same(result.compute(scheduler="sync").isel(y=0, x=0).values.tolist(), [8, 1, NAN])


# --- array processes ------------------------------------------------------------------------------
def test_array_element_by_label_selects_and_drops_the_dimension(array, no_compute):
    result = arrays.array_element(data=array, label="B08")
    assert_lazy(result)
    assert result.dims == ("y", "x")
    assert ARRAY_DIM not in result.coords
    assert same(result.compute(scheduler="sync").values.tolist(), B08)


def test_array_element_by_index(array):
    assert same(values_of(arrays.array_element(data=array, index=0)), B04)


def test_array_element_with_a_missing_label_is_array_element_not_available(array):
    with pytest.raises(OpenEOError) as error:
        arrays.array_element(data=array, label="B99")
    assert error.value.code == "ArrayElementNotAvailable"
    assert "B04, B08" in error.value.message


def test_array_element_with_a_missing_label_may_return_nodata(array):
    result = arrays.array_element(data=array, label="B99", return_nodata=True)
    assert same(values_of(result), [[NAN, NAN], [NAN, NAN]])


def test_array_process_on_a_cube_without_array_dimension_is_invalid(cube):
    with pytest.raises(ProcessParameterInvalid, match="without an array dimension"):
        reducers.mean(data=cube)


def test_array_labels_of_a_temporal_dimension_are_rfc3339_strings():
    series = new_cube(
        da.zeros((2, 1), chunks=1), {"t": ("temporal", ["2024-05-01", "2024-05-11"]), "x": ("spatial", [1.0])}
    ).rename({"t": ARRAY_DIM})
    assert arrays.array_labels(data=series) == ["2024-05-01T00:00:00Z", "2024-05-11T00:00:00Z"]
    assert arrays.array_element(data=series, label="2024-05-11T00:00:00+00:00").dims == ("x",)


def test_array_apply_gets_each_elements_index(array, no_compute):
    result = arrays.array_apply(data=array, process=lambda x, index, label, context: math.add(x=x, y=index))
    assert_lazy(result)
    assert same(result.compute(scheduler="sync").values.tolist(), [B04, (np.array(B08) + 1).tolist()])


def test_array_filter_by_label_on_a_cube(array, no_compute):
    result = arrays.array_filter(
        data=array, condition=lambda x, index, label, context: logic.eq(x=label, y="B08")
    )
    assert result.sizes[ARRAY_DIM] == 1
    assert result[ARRAY_DIM].values.tolist() == ["B08"]


def test_array_filter_by_value_on_a_cube_is_invalid(array):
    with pytest.raises(ProcessParameterInvalid, match="labels or indices"):
        arrays.array_filter(data=array, condition=lambda x, index, label, context: logic.gt(x=x, y=4))


def test_sort_puts_nodata_last_along_the_array_dimension(array):
    assert same(values_of(arrays.sort(data=array, asc=False)), [[[8, 6], [5, 4]], [[NAN, 2], [3, NAN]]])


def test_cumsum_keeps_nodata_in_place(array):
    assert same(values_of(arrays.cumsum(data=array)), [B04, [[8, 8], [8, NAN]]])


def test_array_interpolate_linear_fills_gaps_between_temporal_labels():
    days = ["2024-05-01", "2024-05-02", "2024-05-05"]
    series = new_cube(
        da.from_array(np.array([[1.0], [NAN], [9.0]]), chunks=1),
        {"t": ("temporal", days), "x": ("spatial", [1.0])},
    ).rename({"t": ARRAY_DIM})
    assert values_of(arrays.array_interpolate_linear(data=series)) == [[1.0], [3.0], [9.0]]


# --- plain values ---------------------------------------------------------------------------------
def test_integer_results_stay_integers():
    assert type(math.add(x=1, y=2)) is int
    assert type(reducers.sum_values(data=[1, 2])) is int
    assert type(reducers.minimum(data=[3, None, 1])) is int
    assert type(math.floor(x=2.5)) is int
    assert math.add(x=1, y=None) is None


def test_plain_values_stay_plain_python_values():
    assert type(reducers.mean(data=[1, None, 3])) is float
    assert type(logic.gt(x=np.float64(2.0), y=1)) is bool
    assert type(math.add(x=np.int64(1), y=np.float32(0.5))) is float


def test_text_where_a_number_is_expected_is_invalid():
    with pytest.raises(ProcessParameterInvalid, match="'add'"):
        math.add(x="a", y=1)
