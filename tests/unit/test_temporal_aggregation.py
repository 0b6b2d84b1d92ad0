"""Temporal aggregation through the real evaluator and registry: aggregate_temporal(_period),
climatological_normal, anomaly — checked against numpy/pandas on small Dask cubes."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest

from processes.core.errors import OpenEOError
from processes.library.temporal_aggregation import aggregate_temporal_period
from processes.model.raster_cube import (
    BANDS_ATTR,
    band_metadata,
    dimension_type,
    new_cube,
    with_band_metadata,
)
from tests.processes import run_node as run


def daily_cube(start: str, days: int, bands=("B04", "B08"), seed: int = 3):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 100, (days, len(bands), 3, 4)).astype("float32")
    values[rng.random(values.shape) < 0.1] = np.nan
    dates = pd.date_range(start, periods=days, freq="D")
    cube = new_cube(
        da.from_array(values, chunks=(7, 1, 3, 2)),
        {
            "t": ("temporal", dates),
            "bands": ("bands", list(bands)),
            "y": ("spatial", [30.0, 20.0, 10.0]),
            "x": ("spatial", [5.0, 15.0, 25.0, 35.0]),
        },
        crs=32633,
    )
    cube = with_band_metadata(cube, {b: {"common_name": b.lower()} for b in bands})
    return cube, values, dates


def reducer(process_id: str, **arguments):
    return {"process_graph": {"r": {"process_id": process_id,
                                    "arguments": {"data": {"from_parameter": "data"}, **arguments}, "result": True}}}


def numpy_by_period(values: np.ndarray, dates: pd.DatetimeIndex, freq: str, func) -> np.ndarray:
    periods = dates.to_period(freq)
    return np.stack([func(values[periods == p], axis=0) for p in periods.unique()])


def test_monthly_max_of_a_dask_cube_equals_numpy():
    cube, values, dates = daily_cube("2024-01-01", 91)
    result = run("aggregate_temporal_period", data=cube, period="month", reducer=reducer("max"))
    assert result.chunks is not None  # still lazy
    assert list(result["t"].values) == ["2024-01", "2024-02", "2024-03"]
    expected = numpy_by_period(values, dates, "M", np.nanmax)
    np.testing.assert_allclose(result.values, expected)


def test_aggregation_keeps_dimension_types_crs_and_band_metadata():
    cube, _, _ = daily_cube("2024-01-01", 40)
    result = run("aggregate_temporal_period", data=cube, period="month", reducer=reducer("mean"))
    assert result.dims == cube.dims
    assert [dimension_type(result, d) for d in result.dims] == ["temporal", "bands", "spatial", "spatial"]
    assert result.rio.crs.to_epsg() == 32633
    assert band_metadata(result) == {"B04": {"common_name": "b04"}, "B08": {"common_name": "b08"}}
    assert BANDS_ATTR in result["bands"].attrs


def test_reducer_runs_once_per_distinct_group_length():
    cube, values, dates = daily_cube("2024-01-01", 91)  # January 31, February 29, March 31 days
    calls = []

    def counting_max(data, context=None):
        calls.append(dict(data.sizes))
        return data.max("__array__")

    result = aggregate_temporal_period(cube, "month", counting_max)
    assert len(calls) == 2
    assert sorted(c["__array__"] for c in calls) == [29, 31]
    np.testing.assert_allclose(result.values, numpy_by_period(values, dates, "M", np.nanmax))


def test_sum_without_ignoring_nodata_sees_only_the_groups_dates():
    cube, values, dates = daily_cube("2023-01-01", 59, seed=5)
    cube = cube.fillna(1.0)
    result = run("aggregate_temporal_period", data=cube, period="month",
                 reducer=reducer("sum", ignore_nodata=False))
    expected = numpy_by_period(np.nan_to_num(values, nan=1.0), dates, "M", np.sum)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5)


def test_periods_without_dates_are_no_data_and_labelled():
    cube, values, _ = daily_cube("2020-01-01", 1)
    later, later_values, _ = daily_cube("2022-06-01", 1)
    both = __import__("xarray").concat([cube, later], dim="t")
    result = run("aggregate_temporal_period", data=both, period="year", reducer=reducer("mean"))
    assert list(result["t"].values) == ["2020", "2021", "2022"]
    assert np.isnan(result.values[1]).all()
    np.testing.assert_allclose(result.values[2], later_values[0])


def test_count_of_an_empty_period_is_zero():
    cube, _, _ = daily_cube("2020-01-01", 1)
    later, _, _ = daily_cube("2020-03-01", 1)
    both = __import__("xarray").concat([cube, later], dim="t")
    result = run("aggregate_temporal_period", data=both, period="month", reducer=reducer("count"))
    assert (result.values[1] == 0).all()


@pytest.mark.parametrize(
    ("period", "date", "label"),
    [
        ("hour", "2020-06-01T13:45:00", "2020-06-01-13"),
        ("day", "2020-12-31", "2020-366"),
        ("day", "2021-02-01", "2021-032"),
        ("week", "2023-01-01", "2022-52"),
        ("week", "2023-01-02", "2023-01"),
        ("dekad", "2024-01-21", "2024-03"),
        ("dekad", "2024-02-10", "2024-04"),
        ("dekad", "2024-12-31", "2024-36"),
        ("month", "2024-06-30", "2024-06"),
        ("season", "2023-12-01", "2023-djf"),
        ("season", "2024-02-29", "2023-djf"),
        ("season", "2024-03-01", "2024-mam"),
        ("tropical-season", "2024-04-30", "2023-ndjfma"),
        ("tropical-season", "2024-05-01", "2024-mjjaso"),
        ("year", "2023-06-28", "2023"),
        ("decade", "2029-12-31", "2020"),
        ("decade-ad", "2030-12-31", "2021"),
        ("decade-ad", "2031-01-01", "2031"),
    ],
)
def test_period_labels(period, date, label):
    cube = new_cube(np.ones((1, 1, 1)), {"t": ("temporal", [date]), "y": ("spatial", [0.0]),
                                         "x": ("spatial", [0.0])})
    result = run("aggregate_temporal_period", data=cube, period=period, reducer=reducer("mean"))
    assert list(result["t"].values) == [label]


def test_aggregate_temporal_with_overlapping_intervals_and_labels():
    cube, values, dates = daily_cube("2024-01-01", 30)
    intervals = [["2024-01-01", "2024-01-11"], ["2024-01-06", "2024-01-21"], ["2023-01-01", "2023-02-01"]]
    result = run("aggregate_temporal", data=cube, intervals=intervals, labels=["a", "b", "c"],
                 reducer=reducer("median"))
    assert list(result["t"].values) == ["a", "b", "c"]
    np.testing.assert_allclose(result.values[0], np.nanmedian(values[0:10], axis=0))
    np.testing.assert_allclose(result.values[1], np.nanmedian(values[5:20], axis=0))
    assert np.isnan(result.values[2]).all()


def test_aggregate_temporal_default_labels_are_the_interval_starts():
    cube, _, _ = daily_cube("2024-01-01", 10)
    result = run("aggregate_temporal", data=cube, reducer=reducer("mean"),
                 intervals=[["2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"], ["2024-01-05", "2024-01-11"]])
    assert list(result["t"].values) == ["2024-01-01T00:00:00Z", "2024-01-05"]
    only_instants = run("aggregate_temporal", data=cube, reducer=reducer("mean"),
                        intervals=[["2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"]])
    assert only_instants["t"].values.dtype.kind == "M"


def test_aggregate_temporal_with_times_of_day_across_midnight():
    dates = pd.to_datetime(["2024-01-01T03:00", "2024-01-01T12:00", "2024-01-01T20:00", "2024-01-02T05:59"])
    values = np.arange(4.0).reshape(4, 1, 1)
    cube = new_cube(values, {"t": ("temporal", dates), "y": ("spatial", [0.0]), "x": ("spatial", [0.0])})
    result = run("aggregate_temporal", data=cube, reducer=reducer("sum"),
                 intervals=[["06:00:00", "18:00:00"], ["18:00:00", "06:00:00"]])
    assert result.values.ravel().tolist() == [1.0, 0.0 + 2.0 + 3.0]


@pytest.mark.parametrize(
    ("intervals", "labels", "code"),
    [
        ([["2024-01-05", "2024-01-01"]], None, "TemporalExtentEmpty"),
        ([["2024-01-01", "2024-01-05"], ["2024-01-01", "2024-01-09"]], None, "DistinctDimensionLabelsRequired"),
        ([["2024-01-01", "2024-01-05"]], ["a", "b"], "ProcessParameterInvalid"),
    ],
)
def test_aggregate_temporal_errors(intervals, labels, code):
    cube, _, _ = daily_cube("2024-01-01", 10)
    extra = {"labels": labels} if labels is not None else {}
    with pytest.raises(OpenEOError) as err:
        run("aggregate_temporal", data=cube, intervals=intervals, reducer=reducer("mean"), **extra)
    assert err.value.code == code


def test_two_temporal_dimensions_need_the_dimension_parameter():
    cube = new_cube(np.ones((2, 2, 1, 1)), {"t": ("temporal", ["2024-01-01", "2024-01-02"]),
                                            "t2": ("temporal", ["2024-01-01", "2024-01-02"]),
                                            "y": ("spatial", [0.0]), "x": ("spatial", [0.0])})
    with pytest.raises(OpenEOError) as err:
        run("aggregate_temporal_period", data=cube, period="day", reducer=reducer("mean"))
    assert err.value.code == "TooManyDimensions"
    result = run("aggregate_temporal_period", data=cube, period="day", reducer=reducer("mean"), dimension="t2")
    assert list(result["t2"].values) == ["2024-001", "2024-002"]


def test_building_the_graph_computes_nothing():
    cube, _, _ = daily_cube("2024-01-01", 60)

    def explode(block):
        raise AssertionError("computed while building the graph")

    poisoned = cube.copy(data=cube.data.map_blocks(explode, dtype=cube.dtype))
    with dask.config.set(scheduler="synchronous"):
        result = run("aggregate_temporal_period", data=poisoned, period="dekad", reducer=reducer("mean"))
    assert result.chunks is not None


def test_climatological_normal_is_the_monthly_mean_over_the_period():
    cube, values, dates = daily_cube("2019-12-01", 3 * 365 + 31, seed=7)
    result = run("climatological_normal", data=cube, period="month", climatology_period=[2020, 2021])
    assert list(result["t"].values) == [f"{m:02d}" for m in range(1, 13)]
    assert dimension_type(result, "t") == "temporal"
    in_period = (dates.year >= 2020) & (dates.year <= 2021)
    for month in (1, 2, 12):
        chosen = in_period & (dates.month == month)
        np.testing.assert_allclose(result.values[month - 1], np.nanmean(values[chosen], axis=0), rtol=1e-5)


def test_climatological_normal_winter_takes_the_december_before_the_period():
    cube, values, dates = daily_cube("2019-12-01", 3 * 365 + 31, seed=7)
    result = run("climatological_normal", data=cube, period="season", climatology_period=[2020, 2021])
    assert list(result["t"].values) == ["djf", "mam", "jja", "son"]
    winter = dates.month.isin([12, 1, 2]) & (dates >= "2019-12-01") & (dates < "2021-12-01")
    np.testing.assert_allclose(result.values[0], np.nanmean(values[winter], axis=0), rtol=1e-5)


def test_anomaly_subtracts_the_normal_of_each_month():
    cube, values, dates = daily_cube("2020-01-01", 2 * 366, seed=11)
    monthly = run("aggregate_temporal_period", data=cube, period="month", reducer=reducer("mean"))
    normals = run("climatological_normal", data=cube, period="month", climatology_period=[2020, 2021])
    result = run("anomaly", data=monthly, normals=normals, period="month")
    assert list(result["t"].values) == list(monthly["t"].values)
    month_of_label = [int(label[5:]) - 1 for label in monthly["t"].values]
    expected = monthly.values - normals.values[month_of_label]
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-4)
    assert result.rio.crs.to_epsg() == 32633


def test_anomaly_of_dates_uses_their_period():
    cube, values, dates = daily_cube("2021-01-01", 59)
    normals = run("climatological_normal", data=cube, period="month", climatology_period=[2020, 2021])
    result = run("anomaly", data=cube, normals=normals, period="month")
    january = values[:31] - np.nanmean(values[:31], axis=0)
    np.testing.assert_allclose(result.values[:31], january, rtol=1e-5, atol=1e-4)
