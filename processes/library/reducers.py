"""Array reducers: statistics and boolean aggregates of an array (e.g. the reducer of reduce_dimension).

A plain array (a list) gives a plain value. Only null is no-data there: with ``ignore_nodata`` nulls
are left out, without it a null makes the result null; NaN is a number and propagates (IEEE 754).

In a callback of ``reduce_dimension`` the array is the cube along :data:`processes.model.raster_cube.ARRAY_DIM`
(lists of cubes are stacked along it, see :mod:`processes.model.values`); the reducers then reduce along
it lazily, and no-data is NaN: ``ignore_nodata`` means skipping NaN.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from processes.core.errors import parameter_invalid, process_error
from processes.library.logic import is_valid, truth_and_null
from processes.model.raster_cube import ARRAY_DIM
from processes.model.values import (
    along_array,
    as_labeled_array,
    is_cube_array,
    is_number,
    is_valid_plain,
    may_hold_nodata,
    plain_list,
    single_chunk,
    to_python,
)

Reduced = Any
"""A plain value (number, boolean, null, list) or a cube without ``ARRAY_DIM``."""


def _flag(value: Any, process: str, parameter: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise parameter_invalid(process, parameter, f"expected true or false, got {value!r}.")
    return bool(value)


def _plain_numbers(data: Any, process: str, ignore_nodata: bool) -> list[int | float] | None:
    """The numbers of a plain array without its nulls; None when a null decides the result."""
    numbers = []
    for value in plain_list(data, process):
        value = to_python(value)
        if value is None:
            if not ignore_nodata:
                return None
            continue
        if not is_number(value):
            raise parameter_invalid(
                process, "data", f"expected an array of numbers and nulls, found {value!r}."
            )
        numbers.append(value)
    return numbers


def _statistic(
    process: str,
    data: Any,
    ignore_nodata: Any,
    plain: Callable[[list[int | float]], Any],
    cube: Callable[[xr.DataArray, bool], xr.DataArray],
) -> Reduced:
    """``plain(numbers)`` of a plain array (null if it has none), or ``cube(array, skipna)``."""
    ignore = _flag(ignore_nodata, process, "ignore_nodata")
    if is_cube_array(data):
        return cube(as_labeled_array(data, process), ignore)
    numbers = _plain_numbers(data, process, ignore)
    if not numbers:
        return None
    with np.errstate(all="ignore"):  # IEEE results (inf - inf is NaN), no warnings
        return plain(numbers)


def _floats(numbers: list[int | float]) -> np.ndarray:
    return np.asarray(numbers, dtype=np.float64)


def _extreme(numbers: list[int | float], pick: Callable[[np.ndarray], int]) -> int | float:
    values = _floats(numbers)
    if np.isnan(values).any():
        return math.nan
    return numbers[int(pick(values))]  # the element itself, so integers stay integers


def _ufunc_reduce(ufunc: np.ufunc, x: np.ndarray, axis: Any = None, keepdims: bool = False, **_: Any) -> np.ndarray:
    return ufunc.reduce(x, axis=axis, keepdims=keepdims)


def _nan_skipping(array: xr.DataArray, ufunc: np.ufunc) -> xr.DataArray:
    """min/max along ``ARRAY_DIM`` ignoring NaN, with ``np.fmin``/``np.fmax`` (all NaN gives NaN).

    ``nanmax`` copies every block to replace NaN; ``fmax.reduce`` ignores NaN as it goes.
    """
    if array.dtype.kind != "f" or not isinstance(array.data, da.Array):
        return array.max(ARRAY_DIM, skipna=True) if ufunc is np.fmax else array.min(ARRAY_DIM, skipna=True)
    axis = array.get_axis_num(ARRAY_DIM)
    reduce = functools.partial(_ufunc_reduce, ufunc)
    data = da.reduction(array.data, chunk=reduce, aggregate=reduce, axis=axis, dtype=array.dtype,
                        name=f"{ufunc.__name__}-reduce")
    dims = [d for d in array.dims if d != ARRAY_DIM]
    coords = {k: v for k, v in array.coords.items() if ARRAY_DIM not in v.dims}
    return xr.DataArray(data, dims=dims, coords=coords, attrs=array.attrs, name=array.name)


# --- statistics -----------------------------------------------------------------------------------
def mean(data: Any, ignore_nodata: bool = True) -> Reduced:
    return _statistic(
        "mean",
        data,
        ignore_nodata,
        lambda n: float(np.mean(_floats(n))),
        lambda a, skip: a.mean(ARRAY_DIM, skipna=skip),
    )


def median(data: Any, ignore_nodata: bool = True) -> Reduced:
    return _statistic(
        "median",
        data,
        ignore_nodata,
        lambda n: float(np.median(_floats(n))),
        lambda a, skip: single_chunk(a).median(ARRAY_DIM, skipna=skip),
    )


def minimum(data: Any, ignore_nodata: bool = True) -> Reduced:
    """openEO ``min``."""
    return _statistic(
        "min",
        data,
        ignore_nodata,
        lambda n: _extreme(n, np.argmin),
        lambda a, skip: _nan_skipping(a, np.fmin) if skip else a.min(ARRAY_DIM, skipna=False),
    )


def maximum(data: Any, ignore_nodata: bool = True) -> Reduced:
    """openEO ``max``."""
    return _statistic(
        "max",
        data,
        ignore_nodata,
        lambda n: _extreme(n, np.argmax),
        lambda a, skip: _nan_skipping(a, np.fmax) if skip else a.max(ARRAY_DIM, skipna=False),
    )


def extrema(data: Any, ignore_nodata: bool = True) -> Any:
    """``[min, max]``; on cubes an array of two along ``ARRAY_DIM``."""

    def of_cube(array: xr.DataArray, skip: bool) -> xr.DataArray:
        both = xr.concat(
            [array.min(ARRAY_DIM, skipna=skip), array.max(ARRAY_DIM, skipna=skip)], dim=ARRAY_DIM
        )
        return both.transpose(*array.dims)

    result = _statistic(
        "extrema", data, ignore_nodata, lambda n: [_extreme(n, np.argmin), _extreme(n, np.argmax)], of_cube
    )
    return [None, None] if result is None else result


def _min_count(array: xr.DataArray) -> int | None:
    # An array of nothing but no-data sums to no-data, not to 0; integer arrays can't hold no-data
    # and keep their integer type without it.
    return 1 if may_hold_nodata(array) else None


def sum_values(data: Any, ignore_nodata: bool = True) -> Reduced:
    """openEO ``sum``."""

    def of_numbers(numbers: list[int | float]) -> int | float:
        if all(isinstance(n, int) for n in numbers):
            return sum(numbers)
        return float(np.sum(_floats(numbers)))

    return _statistic(
        "sum",
        data,
        ignore_nodata,
        of_numbers,
        lambda a, skip: a.sum(ARRAY_DIM, skipna=skip, min_count=_min_count(a)),
    )


def product(data: Any, ignore_nodata: bool = True) -> Reduced:
    def of_numbers(numbers: list[int | float]) -> int | float:
        if all(isinstance(n, int) for n in numbers):
            return math.prod(numbers)
        return float(np.prod(_floats(numbers)))

    return _statistic(
        "product",
        data,
        ignore_nodata,
        of_numbers,
        lambda a, skip: a.prod(ARRAY_DIM, skipna=skip, min_count=_min_count(a)),
    )


def variance(data: Any, ignore_nodata: bool = True) -> Reduced:
    """The sample variance (n - 1 degrees of freedom); null for fewer than two values."""
    return _statistic(
        "variance",
        data,
        ignore_nodata,
        lambda n: float(np.var(_floats(n), ddof=1)) if len(n) > 1 else None,
        lambda a, skip: a.var(ARRAY_DIM, skipna=skip, ddof=1),
    )


def standard_deviation(data: Any, ignore_nodata: bool = True) -> Reduced:
    """openEO ``sd``: the sample standard deviation; null for fewer than two values."""
    return _statistic(
        "sd",
        data,
        ignore_nodata,
        lambda n: float(np.std(_floats(n), ddof=1)) if len(n) > 1 else None,
        lambda a, skip: a.std(ARRAY_DIM, skipna=skip, ddof=1),
    )


def _probabilities(probabilities: Any, q: Any) -> list[float]:
    if probabilities is not None and q is not None:
        raise process_error(
            "QuantilesParameterConflict",
            "The process `quantiles` only allows that either `probabilities` or `q` is set.",
        )
    if probabilities is None and q is None:
        raise process_error(
            "QuantilesParameterMissing",
            "The process `quantiles` requires either the `probabilities` or `q` parameter.",
        )
    intervals = q if probabilities is None else probabilities
    if isinstance(intervals, (int, np.integer)) and not isinstance(intervals, bool):
        if intervals < 2:
            raise parameter_invalid(
                "quantiles", "probabilities", f"the number of intervals must be 2 or more, not {intervals}."
            )
        return [i / intervals for i in range(1, int(intervals))]
    if not isinstance(intervals, (list, tuple)) or not all(is_number(p) and 0 <= p <= 1 for p in intervals):
        raise parameter_invalid(
            "quantiles",
            "probabilities",
            "expected a list of probabilities between 0 and 1 or a number of intervals.",
        )
    if list(intervals) != sorted(intervals):
        raise process_error(
            "AscendingProbabilitiesRequired",
            "The values passed for `probabilities` must be sorted in ascending order.",
        )
    return [float(p) for p in intervals]


def _quantile_type7(numbers: list[int | float], probability: float) -> float:
    """Hyndman & Fan type 7 (numpy's default), written out so that ±infinity interpolates like IEEE
    arithmetic (numpy's ``b - a`` step turns an infinite end point into NaN)."""
    values = np.sort(_floats(numbers))
    if np.isnan(values[-1]):  # np.sort puts NaN last: a NaN makes every quantile NaN
        return math.nan
    position = (len(values) - 1) * probability
    below = math.floor(position)
    fraction = position - below
    if fraction == 0:
        return float(values[below])
    low, high = values[below], values[below + 1]
    return float(low) if low == high else float(low * (1 - fraction) + high * fraction)


def quantiles(data: Any, probabilities: Any = None, q: Any = None, ignore_nodata: bool = True) -> Any:
    """Type-7 sample quantiles; on cubes an array of them along ``ARRAY_DIM``."""
    wanted = _probabilities(probabilities, q)
    ignore = _flag(ignore_nodata, "quantiles", "ignore_nodata")
    if is_cube_array(data):
        array = single_chunk(as_labeled_array(data, "quantiles"))
        result = array.quantile(wanted, dim=ARRAY_DIM, skipna=ignore, method="linear", keep_attrs=True)
        result = result.rename({"quantile": ARRAY_DIM}).drop_vars(ARRAY_DIM).transpose(*array.dims)
        # quantile() drops scalar coordinates such as rioxarray's spatial_ref (the CRS).
        kept = {name: coord for name, coord in array.coords.items() if ARRAY_DIM not in coord.dims}
        return result.assign_coords({k: v for k, v in kept.items() if k not in result.coords})
    numbers = _plain_numbers(data, "quantiles", ignore)
    if not numbers:
        return [None] * len(wanted)
    with np.errstate(all="ignore"):
        return [_quantile_type7(numbers, p) for p in wanted]


# --- counting and picking -------------------------------------------------------------------------
def count(data: Any, condition: Any = None, context: Any = None) -> Any:
    """Valid elements (``condition`` null), all elements (true), or those the child process accepts."""
    if condition is not None and condition is not True and not callable(condition):
        raise parameter_invalid("count", "condition", "expected a child process, true or null.")
    if is_cube_array(data):
        array = as_labeled_array(data, "count")
        if condition is None:
            return is_valid(array).sum(ARRAY_DIM)
        if condition is True:
            return xr.full_like(array.isel({ARRAY_DIM: 0}, drop=True), array.sizes[ARRAY_DIM], dtype=np.int64)
        accepted = condition(x=array, context=context)
        if not isinstance(accepted, xr.DataArray) or ARRAY_DIM not in accepted.dims:
            total = array.sizes[ARRAY_DIM] if accepted is True else 0
            return xr.full_like(array.isel({ARRAY_DIM: 0}, drop=True), total, dtype=np.int64)
        return truth_and_null(accepted)[0].sum(ARRAY_DIM)
    values = plain_list(data, "count")
    if condition is None:
        return sum(1 for v in values if is_valid_plain(v))
    if condition is True:
        return len(values)
    return sum(1 for v in values if to_python(condition(x=v, context=context)) is True)


def _first_valid(values: np.ndarray, from_end: bool) -> np.ndarray:
    """The first (or last) non-NaN value along the last axis; NaN where there is none."""
    if from_end:
        values = values[..., ::-1]
    valid = ~np.isnan(values) if values.dtype.kind in "fc" else np.ones(values.shape, dtype=bool)
    position = valid.argmax(axis=-1)[..., np.newaxis]
    picked = np.take_along_axis(values, position, axis=-1)[..., 0]
    return np.where(valid.any(axis=-1), picked, np.nan) if values.dtype.kind in "fc" else picked


def _pick(process: str, data: Any, ignore_nodata: Any, from_end: bool) -> Any:
    ignore = _flag(ignore_nodata, process, "ignore_nodata")
    if is_cube_array(data):
        array = as_labeled_array(data, process)
        if ignore and may_hold_nodata(array) and array.dtype.kind in "fc":
            return along_array(array, _first_valid, reduces=True, from_end=from_end)
        return array.isel({ARRAY_DIM: -1 if from_end else 0}, drop=True)
    values = plain_list(data, process)
    if from_end:
        values = values[::-1]
    if ignore:
        values = [v for v in values if v is not None]
    return to_python(values[0]) if values else None


def first(data: Any, ignore_nodata: bool = True) -> Any:
    return _pick("first", data, ignore_nodata, from_end=False)


def last(data: Any, ignore_nodata: bool = True) -> Any:
    return _pick("last", data, ignore_nodata, from_end=True)


# --- boolean aggregates ---------------------------------------------------------------------------
def _plain_booleans(data: Any, process: str) -> list[bool | None]:
    values = [to_python(v) for v in plain_list(data, process)]
    for value in values:
        if value is not None and not isinstance(value, bool):
            raise parameter_invalid(
                process, "data", f"expected an array of booleans and nulls, found {value!r}."
            )
    return values


def _boolean_aggregate(process: str, data: Any, ignore_nodata: Any, decisive: bool) -> Any:
    """``all`` (``decisive`` false: one false decides) or ``any`` (one true decides).

    Nulls are ignored, or else make an undecided result null; nothing but nulls gives null.
    """
    ignore = _flag(ignore_nodata, process, "ignore_nodata")
    if is_cube_array(data):
        array = as_labeled_array(data, process)
        is_true, is_null = truth_and_null(array)
        if not isinstance(is_null, xr.DataArray):
            is_null = xr.zeros_like(array, dtype=bool)
        decided = (is_true if decisive else ~is_true & ~is_null).any(ARRAY_DIM)
        result = decided if decisive else ~decided
        if not may_hold_nodata(array):
            return result
        if ignore:
            return result.where(~is_null.all(ARRAY_DIM))
        return result.where(decided | ~is_null.any(ARRAY_DIM))
    values = _plain_booleans(data, process)
    known = [v for v in values if v is not None]
    if decisive in known:
        return decisive
    if not known or (not ignore and len(known) < len(values)):
        return None
    return not decisive


def all_true(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``all``."""
    return _boolean_aggregate("all", data, ignore_nodata, decisive=False)


def any_true(data: Any, ignore_nodata: bool = True) -> Any:
    """openEO ``any``."""
    return _boolean_aggregate("any", data, ignore_nodata, decisive=True)


PROCESSES = {
    "mean": mean,
    "median": median,
    "min": minimum,
    "max": maximum,
    "extrema": extrema,
    "sum": sum_values,
    "product": product,
    "variance": variance,
    "sd": standard_deviation,
    "quantiles": quantiles,
    "count": count,
    "first": first,
    "last": last,
    "all": all_true,
    "any": any_true,
}
