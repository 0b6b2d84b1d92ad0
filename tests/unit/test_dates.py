"""Date processes: spec examples, RFC 3339 in and out, calendar rules, time zones, cubes, errors."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.core.graph import Evaluator, parse_process_graph
from processes.core.specs import get_spec
from processes.library.dates import PROCESSES, date_between, date_difference, date_shift
from processes.process_table import build_registry


def _examples() -> list:
    return [
        pytest.param(process_id, index, id=f"{process_id}-{index}")
        for process_id in sorted(PROCESSES)
        for index in range(len(get_spec(process_id).get("examples", [])))
    ]


@pytest.mark.parametrize(("process_id", "index"), _examples())
def test_process_returns_its_spec_example(process_id, index):
    example = get_spec(process_id)["examples"][index]
    assert PROCESSES[process_id](**example["arguments"]) == example["returns"]


def test_date_processes_run_in_a_process_graph():
    graph = {
        "shift": {
            "process_id": "date_shift",
            "arguments": {"date": "2020-01-31", "value": 1, "unit": "month"},
        },
        "between": {
            "process_id": "date_between",
            "arguments": {
                "x": {"from_node": "shift"},
                "min": "2020-02-01",
                "max": "2020-03-01",
                "exclude_max": True,
            },
            "result": True,
        },
    }
    evaluator = Evaluator(build_registry(), ProcessEnv(collections=None))
    assert evaluator.evaluate(parse_process_graph({"process_graph": graph})) is True


# --- date_shift -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("date", "value", "unit", "expected"),
    [
        ("2020-01-31", 1, "month", "2020-02-29"),
        ("2021-01-31", 1, "month", "2021-02-28"),
        ("2020-03-31", -13, "month", "2019-02-28"),
        ("2020-05-31T08:00:00Z", 1, "month", "2020-06-30T08:00:00Z"),
        ("2020-02-29", -4, "year", "2016-02-29"),
        ("2020-02-29", 3, "year", "2023-02-28"),
        ("2020-12-28", 1, "week", "2021-01-04"),
        ("2020-01-01T23:30:00-05:00", 1, "day", "2020-01-02T23:30:00-05:00"),
        ("2020-01-01T23:30:00+05:30", 45, "minute", "2020-01-02T00:15:00+05:30"),
        ("2020-01-01T00:00:00Z", -1, "millisecond", "2019-12-31T23:59:59.999Z"),
        ("2020-01-01T00:00:00.5Z", 0, "second", "2020-01-01T00:00:00.500Z"),
        ("2020-01-01T00:00:00.000Z", 1, "day", "2020-01-02T00:00:00Z"),
        ("2020-01-01T00:00:00.123456Z", 1, "second", "2020-01-01T00:00:01.123456Z"),
        ("2020-01-01", -1, "millisecond", "2019-12-31"),
        ("2020-01-01", 23, "hour", "2020-01-01"),
        ("2020-06-15T12:00:00", 1, "hour", "2020-06-15T13:00:00Z"),
        ("2020-06-15t12:00:00z", 1, "hour", "2020-06-15T13:00:00Z"),
        ("2016-12-31T23:59:60Z", 1, "second", "2017-01-01T00:00:00Z"),
        ("0001-01-01", 0, "day", "0001-01-01"),
    ],
)
def test_date_shift(date, value, unit, expected):
    assert date_shift(date, value, unit) == expected


def test_date_shift_keeps_the_time_on_calendar_units_and_the_offset_always():
    assert date_shift("2021-03-27T02:30:00+01:00", 1, "day") == "2021-03-28T02:30:00+01:00"
    assert date_shift("2021-03-31T00:00:00+02:00", -7, "day") == "2021-03-24T00:00:00+02:00"


def test_date_shift_accepts_integral_floats_and_propagates_null():
    assert date_shift("2020-01-01", 2.0, "day") == "2020-01-03"
    assert date_shift(None, 1, "day") is None


def test_date_shift_takes_numpy_datetimes_as_utc():
    assert date_shift(np.datetime64("2020-01-31T06:00:00"), 1, "month") == "2020-02-29T06:00:00Z"


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        (("2020-13-01", 1, "day"), "date"),
        (("2020-02-30", 1, "day"), "date"),
        (("2020-01-01T25:00:00Z", 1, "day"), "date"),
        (("01/02/2020", 1, "day"), "date"),
        (("2020-01-01T00:00:00+0200", 1, "day"), "date"),
        ((20200101, 1, "day"), "date"),
        (("2020-01-01", 1.5, "day"), "value"),
        (("2020-01-01", True, "day"), "value"),
        (("2020-01-01", None, "day"), "value"),
        (("2020-01-01", 1, "days"), "unit"),
        (("9999-12-31", 1, "day"), "value"),
        (("0001-01-01", -1, "month"), "value"),
        (("2020-01-01", 10**12, "year"), "value"),
    ],
)
def test_date_shift_rejects_invalid_arguments(arguments, parameter):
    with pytest.raises(OpenEOError) as info:
        date_shift(*arguments)
    assert info.value.code == "ProcessParameterInvalid"
    assert f"parameter '{parameter}'" in str(info.value)


# --- date_difference ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("date1", "date2", "unit", "expected"),
    [
        ("2020-01-01", "2020-01-01T00:00:00.001Z", "millisecond", 1),
        ("2020-01-01T00:00:00Z", "2020-01-01T00:01:30Z", "minute", 1.5),
        ("2020-01-01T00:00:00+02:00", "2020-01-01", "hour", 2),
        ("2020-01-01", "2020-01-15", "week", 2),
        ("2020-01-01", "2021-01-01", "day", 366),
        ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z", "second", 1),
        ("2020-01-31", "2020-02-29", "month", 1),
        ("2020-01-01", "2020-01-16T12:00:00Z", "month", 0.5),
        ("2020-03-01", "2020-02-15", "month", -15 / 29),
        ("2020-02-29", "2021-02-28", "year", 1),
        ("2020-01-01", "2021-07-01", "year", 1.5),
        ("9999-12-01", "9999-12-15", "month", 14 / 31),
    ],
)
def test_date_difference(date1, date2, unit, expected):
    assert date_difference(date1, date2, unit) == pytest.approx(expected, abs=1e-12)


def test_date_difference_counts_back_what_date_shift_added():
    for start in ["2020-01-31", "2019-08-31T10:00:00Z", "2020-02-29"]:
        for months in [-25, -1, 1, 7, 13]:
            assert date_difference(start, date_shift(start, months, "month"), "month") == months


def test_date_difference_returns_whole_numbers_as_integers():
    assert date_difference("2020-01-02", "2020-01-01") == -86400
    assert isinstance(date_difference("2020-01-02", "2020-01-01"), int)
    assert isinstance(date_difference("2020-01-01T00:00:00Z", "2020-01-01T00:00:00.5Z"), float)


def test_date_difference_propagates_null():
    assert date_difference(None, "2020-01-01") is None
    assert date_difference("2020-01-01", None, "day") is None


def test_date_difference_rejects_invalid_arguments():
    with pytest.raises(OpenEOError, match="parameter 'date2'"):
        date_difference("2020-01-01", "tomorrow")
    with pytest.raises(OpenEOError, match="parameter 'unit'"):
        date_difference("2020-01-01", "2020-01-02", "decade")


# --- date_between ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "low", "high", "exclude_max", "expected"),
    [
        ("2020-06-01", "2020-01-01", "2021-01-01", False, True),
        ("2021-01-01", "2020-01-01", "2021-01-01", False, True),
        ("2021-01-01", "2020-01-01", "2021-01-01", True, False),
        ("2020-01-01T00:00:00Z", "2020-01-01", "2020-01-01", False, True),
        ("2020-01-01T12:00:00Z", "2020-01-01", "2020-01-01", False, False),
        ("2020-01-01T01:00:00+01:00", "2020-01-01", "2020-01-01", False, True),
        ("2021-06-01", "2022-01-01", "2020-01-01", False, False),
        ("12:00:00", "10:00:00", "14:00:00", False, True),
        ("14:00:00", "10:00:00", "14:00:00", True, False),
        ("2020-01-01T12:30:00+01:00", "11:00:00", "12:00:00", False, True),
        ("2020-01-01T12:30:00Z", "11:00:00", "12:00:00", False, False),
        ("2020-06-01T11:00:00Z", "2020-01-01", "12:00:00", False, True),
    ],
)
def test_date_between(x, low, high, exclude_max, expected):
    assert date_between(x, low, high, exclude_max=exclude_max) is expected


def test_date_between_propagates_null():
    assert date_between(None, "2020-01-01", "2021-01-01") is None


def test_date_between_refuses_a_time_of_day_with_date_bounds():
    with pytest.raises(OpenEOError, match="bounds must be times of day too"):
        date_between("12:00:00", "2020-01-01", "2021-01-01")


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        (("2020-01-01", "2019-01-01", "2021-02-30"), "max"),
        (("2020-01-01", "25:00:00", "2021-01-01"), "min"),
        (("2020-01-01", None, "2021-01-01"), "min"),
        ((2020, "2019-01-01", "2021-01-01"), "x"),
    ],
)
def test_date_between_rejects_invalid_arguments(arguments, parameter):
    with pytest.raises(OpenEOError, match=f"parameter '{parameter}'"):
        date_between(*arguments)


def test_date_between_rejects_a_non_boolean_exclude_max():
    with pytest.raises(OpenEOError, match="exclude_max"):
        date_between("2020-01-01", "2019-01-01", "2021-01-01", exclude_max="yes")


# --- cubes of datetime64 ------------------------------------------------------------------------
@pytest.fixture
def times() -> xr.DataArray:
    values = np.array(
        ["2020-01-31T10:00", "2020-02-29", "NaT", "2019-12-31T23:59:59.5"], dtype="datetime64[ns]"
    )
    return xr.DataArray(da.from_array(values, chunks=2), dims="t")


def test_date_shift_on_a_cube_clamps_to_month_ends_lazily(times):
    shifted = date_shift(times, 1, "month")
    assert shifted.chunks is not None
    expected = ["2020-02-29T10:00", "2020-03-29", "NaT", "2020-01-31T23:59:59.5"]
    np.testing.assert_array_equal(shifted.values, np.array(expected, dtype="datetime64[ns]"))


def test_date_shift_on_a_cube_by_years_and_hours(times):
    years = date_shift(times, -1, "year").values
    np.testing.assert_array_equal(
        years,
        np.array(["2019-01-31T10:00", "2019-02-28", "NaT", "2018-12-31T23:59:59.5"], dtype="datetime64[ns]"),
    )
    hours = date_shift(times, 36, "hour").values
    np.testing.assert_array_equal(
        hours,
        np.array(
            ["2020-02-01T22:00", "2020-03-01T12:00", "NaT", "2020-01-02T11:59:59.5"], dtype="datetime64[ns]"
        ),
    )


@pytest.mark.parametrize("unit", ["day", "month", "year"])
def test_date_difference_on_a_cube_matches_plain_values(times, unit):
    result = date_difference(times, "2020-03-31T00:00:00Z", unit).values
    for value, got in zip(times.values, result, strict=True):
        if np.isnat(value):
            assert np.isnan(got)
        else:
            expected = date_difference(str(value) + "Z", "2020-03-31T00:00:00Z", unit)
            assert got == pytest.approx(expected, abs=1e-9)


def test_date_difference_between_two_cubes(times):
    result = date_difference(times, date_shift(times, 2, "month"), "month").values
    np.testing.assert_allclose(result, [2, 2, np.nan, 2])


def test_date_between_on_a_cube_gives_null_for_missing_dates(times):
    np.testing.assert_array_equal(date_between(times, "2020-01-01", "2020-03-01").values, [1, 1, np.nan, 0])
    np.testing.assert_array_equal(date_between(times, "09:00:00", "12:00:00").values, [1, 0, np.nan, 0])


def test_cubes_of_numbers_are_not_dates():
    with pytest.raises(OpenEOError, match="Only cubes of datetime64 values"):
        date_shift(xr.DataArray([1.0, 2.0], dims="x"), 1, "day")
