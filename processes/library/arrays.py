"""Array processes: access, construction, search, child processes per element, ordering, scans.

A plain array is a list and gives plain results. In callbacks of ``reduce_dimension`` and
``apply_dimension`` an array is the cube along :data:`processes.model.raster_cube.ARRAY_DIM`, whose coordinate
holds the labels (see :mod:`processes.model.values`); the processes then work along it for every pixel at
once, lazily, with NaN as no-data.

A cube's arrays all have one length. Where the spec would drop elements per pixel (``sort`` and
``order`` without ``nodata``), the dropped no-data values are moved to the end instead, where they
stay no-data; ``array_filter`` on cubes only filters by conditions that are the same for every pixel
(on labels or indices).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from processes.core.errors import parameter_invalid, process_error
from processes.library.logic import eq, truth_and_null
from processes.model.raster_cube import ARRAY_DIM
from processes.model.values import (
    along_array,
    as_labeled_array,
    has_labels,
    is_cube_array,
    is_dask,
    is_number,
    labels_of,
    may_hold_nodata,
    nan_for_null,
    plain_list,
    single_chunk,
    stack,
    to_python,
)


def _index(value: Any, process: str, parameter: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise parameter_invalid(process, parameter, f"expected an integer, got {value!r}.")
    return int(value)


def _flag(value: Any, process: str, parameter: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise parameter_invalid(process, parameter, f"expected true or false, got {value!r}.")
    return bool(value)


def _element_template(array: xr.DataArray) -> xr.DataArray:
    """One element of every pixel's array (the shape of a value per pixel)."""
    return array.isel({ARRAY_DIM: 0}, drop=True) if array.sizes[ARRAY_DIM] else xr.DataArray(np.nan)


def _as_array(data: Any, process: str, parameter: str) -> xr.DataArray:
    """A cube array, or a plain list made one (unlabeled), to be combined with a cube array."""
    if isinstance(data, xr.DataArray):
        return as_labeled_array(data, process, parameter)
    return stack(plain_list(data, process, parameter), process, parameter)


def _one_element_if_single(value: Any) -> Any:
    """A value per pixel (a cube without the array dimension) or a number, as a one-element array."""
    if isinstance(value, xr.DataArray) and ARRAY_DIM not in value.dims:
        return [value]
    if is_number(value) or value is None:
        return [value]
    return value


def _without_labels(array: xr.DataArray) -> xr.DataArray:
    return array.drop_vars(ARRAY_DIM) if has_labels(array) else array


def _concat(first: xr.DataArray, second: xr.DataArray) -> xr.DataArray:
    """``second`` appended to ``first`` along ``ARRAY_DIM``, keeping the label coordinate's attributes."""
    dims = (first if first.ndim >= second.ndim else second).dims
    first, second = xr.broadcast(first, second, exclude=[ARRAY_DIM])
    result = xr.concat(
        [first, second.transpose(*first.dims)], dim=ARRAY_DIM, coords="minimal", compat="override"
    )
    result = result.transpose(*dims, ...)
    if has_labels(result) and has_labels(first):
        result[ARRAY_DIM].attrs = dict(first[ARRAY_DIM].attrs)
    return result


def _plain_equal(element: Any, value: Any) -> bool:
    """``eq(element, value)`` is true; null and arrays/objects never match (array_contains/find)."""
    scalars = (bool, str, int, float, np.generic)
    return isinstance(element, scalars) and isinstance(value, scalars) and eq(element, value) is True


# --- access --------------------------------------------------------------------------------------
def _label_position(array: xr.DataArray, label: Any) -> int | None:
    if isinstance(label, str) and array[ARRAY_DIM].dtype.kind == "M":
        try:  # dates may be written in any RFC 3339 form; the labels are UTC instants
            label = to_python(pd.Timestamp(label))
        except ValueError:
            return None
    for i, existing in enumerate(labels_of(array) or []):
        # Strict types as in eq(): the label "1" is not the label 1.
        same_type = (is_number(existing) and is_number(label)) or type(existing) is type(label)
        if same_type and existing == label:
            return i
    return None


def array_element(data: Any, index: int | None = None, label: Any = None, return_nodata: bool = False) -> Any:
    if index is None and label is None:
        raise process_error(
            "ArrayElementParameterMissing", "array_element needs either the `index` or the `label`."
        )
    if index is not None and label is not None:
        raise process_error(
            "ArrayElementParameterConflict",
            "array_element takes either the `index` or the `label`, not both.",
        )
    position = None if index is None else _index(index, "array_element", "index")
    if is_cube_array(data):
        array = as_labeled_array(data, "array_element")
        size = array.sizes[ARRAY_DIM]
        if label is not None:
            if not has_labels(array):
                raise process_error("ArrayNotLabeled", "The array has no labels; use the `index` instead.")
            position = _label_position(array, label)
        if position is not None and 0 <= position < size:
            return array.isel({ARRAY_DIM: position}, drop=True)
        if return_nodata:
            return xr.full_like(_element_template(array), np.nan, dtype=float)
        known = ", ".join(map(str, labels_of(array) or [])) if label is not None else f"0 to {size - 1}"
        raise process_error(
            "ArrayElementNotAvailable",
            f"The array has no element with the {'label' if label is not None else 'index'} "
            f"{label if label is not None else index!r}; it has {known or 'no elements'}.",
        )
    values = plain_list(data, "array_element")
    if label is not None:
        raise process_error("ArrayNotLabeled", "The array has no labels; use the `index` instead.")
    if position is not None and 0 <= position < len(values):
        return values[position]
    if return_nodata:
        return None
    raise process_error(
        "ArrayElementNotAvailable",
        f"The array has no element with the index {index}; it has {len(values)} elements.",
    )


def array_labels(data: Any) -> list[Any]:
    """The labels of a labeled array, else the indices."""
    if is_cube_array(data):
        array = as_labeled_array(data, "array_labels")
        return labels_of(array) or list(range(array.sizes[ARRAY_DIM]))
    return list(range(len(plain_list(data, "array_labels"))))


# --- construction --------------------------------------------------------------------------------
def array_create(data: Any = (), repeat: int = 1) -> Any:
    times = _index(repeat, "array_create", "repeat")
    if times < 1:
        raise parameter_invalid("array_create", "repeat", f"must be 1 or more, not {times}.")
    if is_cube_array(data):
        array = as_labeled_array(data, "array_create")
        # Repeated labels would not be unique any more.
        return array if times == 1 else xr.concat([_without_labels(array)] * times, dim=ARRAY_DIM)
    return plain_list(data, "array_create") * times


def array_concat(array1: Any, array2: Any) -> Any:
    """Labels are kept if both arrays have them (and they don't clash), else dropped.

    Next to a cube array, one value per pixel (``array_concat(data, ndvi)`` in apply_dimension, as
    clients write it) counts as a one-element array.
    """
    if not (is_cube_array(array1) or is_cube_array(array2)):
        return plain_list(array1, "array_concat", "array1") + plain_list(array2, "array_concat", "array2")
    first, second = (_as_array(_one_element_if_single(a), "array_concat", name)
                     for a, name in ((array1, "array1"), (array2, "array2")))
    if has_labels(first) and has_labels(second):
        clashing = set(labels_of(first) or []) & set(labels_of(second) or [])
        if clashing:
            raise process_error(
                "ArrayLabelConflict",
                f"Both arrays have the labels {', '.join(map(str, sorted(clashing, key=str)))}; rename them first.",
            )
        return _concat(first, second)
    return _concat(_without_labels(first), _without_labels(second))


def array_append(data: Any, value: Any, label: Any = None) -> Any:
    """Without a label, a labeled array gets the next index (a number) as label, as openEO 2.0 says."""
    if not is_cube_array(data) and not isinstance(value, xr.DataArray):
        if label is not None:
            raise process_error("ArrayNotLabeled", "The array has no labels, so the value can't get a label.")
        return [*plain_list(data, "array_append"), value]
    array = _as_array(data, "array_append", "data")
    if label is not None and not has_labels(array):
        raise process_error("ArrayNotLabeled", "The array has no labels, so the value can't get a label.")
    if isinstance(value, xr.DataArray):
        if ARRAY_DIM in value.dims:
            raise parameter_invalid(
                "array_append", "value", "expected a single value per pixel, got an array."
            )
        element = value.drop_vars(ARRAY_DIM) if ARRAY_DIM in value.coords else value
    else:
        element = xr.DataArray(nan_for_null(value))
    element = element.expand_dims(ARRAY_DIM)
    if not has_labels(array):
        return _concat(array, element)
    new_label = array.sizes[ARRAY_DIM] if label is None else label
    if _label_position(array, new_label) is not None:
        raise process_error("LabelExists", f"The array has an element labeled {new_label!r} already.")
    labels = [*(labels_of(array) or []), new_label]
    # A label of another type (a number after text labels) must not be cast to the others' type.
    mixed = len({"number" if is_number(v) else type(v).__name__ for v in labels}) > 1
    coord = xr.DataArray(
        np.array(labels, dtype=object if mixed else None), dims=(ARRAY_DIM,), attrs=array[ARRAY_DIM].attrs
    )
    result = _concat(_without_labels(array), element)
    return result.assign_coords({ARRAY_DIM: coord})


# --- search --------------------------------------------------------------------------------------
def _matches(array: xr.DataArray, value: Any) -> xr.DataArray:
    return truth_and_null(eq(array, value))[0]


def array_contains(data: Any, value: Any) -> Any:
    if is_cube_array(data):
        array = as_labeled_array(data, "array_contains")
        if value is None or isinstance(value, (list, dict)):
            return xr.zeros_like(_element_template(array), dtype=bool)
        return _matches(array, value).any(ARRAY_DIM)
    return any(_plain_equal(element, value) for element in plain_list(data, "array_contains"))


def array_find(data: Any, value: Any, reverse: bool = False) -> Any:
    """The first (last with ``reverse``) index of ``value``; null if absent or ``value`` is null."""
    from_end = _flag(reverse, "array_find", "reverse")
    if is_cube_array(data):
        array = as_labeled_array(data, "array_find")
        if value is None or isinstance(value, (list, dict)):
            return xr.full_like(_element_template(array), np.nan, dtype=float)
        matches = _without_labels(_matches(array, value))
        if from_end:
            position = (
                array.sizes[ARRAY_DIM]
                - 1
                - matches.isel({ARRAY_DIM: slice(None, None, -1)}).argmax(ARRAY_DIM)
            )
        else:
            position = matches.argmax(ARRAY_DIM)
        return position.where(matches.any(ARRAY_DIM))
    if value is None or isinstance(value, (list, dict)):
        return None
    elements = plain_list(data, "array_find")
    positions = range(len(elements) - 1, -1, -1) if from_end else range(len(elements))
    return next((i for i in positions if _plain_equal(elements[i], value)), None)


# --- child processes per element -----------------------------------------------------------------
def _element_parameters(array: xr.DataArray) -> dict[str, Any]:
    """``index`` and ``label`` of every element, as arrays along ``ARRAY_DIM`` (dates as strings)."""
    coords = {ARRAY_DIM: array[ARRAY_DIM]} if has_labels(array) else None
    index = xr.DataArray(np.arange(array.sizes[ARRAY_DIM]), dims=(ARRAY_DIM,), coords=coords)
    labels = labels_of(array)
    label = (
        None
        if labels is None
        else xr.DataArray(np.array(labels, dtype=object), dims=(ARRAY_DIM,), coords=coords)
    )
    return {"index": index, "label": label}


def array_apply(data: Any, process: Callable[..., Any], context: Any = None) -> Any:
    if is_cube_array(data):
        array = as_labeled_array(data, "array_apply")
        result = process(x=array, context=context, **_element_parameters(array))
        if isinstance(result, (list, tuple, dict)):
            raise parameter_invalid("array_apply", "process", "the child process must return a single value.")
        if not isinstance(result, xr.DataArray):
            fill = nan_for_null(result)
            return xr.full_like(array, fill, dtype=np.asarray(fill).dtype)
        return result.broadcast_like(array).transpose(*array.dims, ...)
    return [
        to_python(process(x=value, index=i, label=None, context=context))
        for i, value in enumerate(plain_list(data, "array_apply"))
    ]


def array_filter(data: Any, condition: Callable[..., Any], context: Any = None) -> Any:
    if not is_cube_array(data):
        return [
            value
            for i, value in enumerate(plain_list(data, "array_filter"))
            if to_python(condition(x=value, index=i, label=None, context=context)) is True
        ]
    array = as_labeled_array(data, "array_filter")
    keep = condition(x=array, context=context, **_element_parameters(array))
    if not isinstance(keep, xr.DataArray):
        return array if keep is True else array.isel({ARRAY_DIM: slice(0, 0)})
    if set(keep.dims) != {ARRAY_DIM} or is_dask(keep):
        raise parameter_invalid(
            "array_filter",
            "condition",
            "on a data cube the condition may only depend on the labels or indices (every pixel's array must "
            "keep the same length). To drop values by their value, set them to no-data with if() instead.",
        )
    kept = np.flatnonzero(np.asarray(truth_and_null(keep)[0].values, dtype=bool))
    return array.isel({ARRAY_DIM: kept})


# --- ordering ------------------------------------------------------------------------------------
def _sort_key(value: Any, process: str) -> float:
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        try:  # temporal strings order as instants, not as text
            timestamp = pd.Timestamp(value)
        except ValueError:
            pass
        else:
            return float((timestamp.tz_convert("UTC") if timestamp.tzinfo else timestamp).value)
    raise parameter_invalid(process, "data", f"expected numbers, dates or nulls, found {value!r}.")


def _plain_order(process: str, data: Any, asc: Any, nodata: Any) -> tuple[list[Any], list[int]]:
    ascending = _flag(asc, process, "asc")
    if nodata is not None:
        _flag(nodata, process, "nodata")
    values = [to_python(v) for v in plain_list(data, process)]
    keys = {i: _sort_key(v, process) for i, v in enumerate(values) if v is not None}
    if len({isinstance(v, str) for v in values if v is not None}) > 1:
        raise parameter_invalid(process, "data", "can't order numbers and dates together.")
    numbers = [i for i, key in keys.items() if not np.isnan(key)]
    not_a_number = [i for i, key in keys.items() if np.isnan(key)]
    # sorted() is stable with reverse=True too, so ties keep their order either way.
    ordered = sorted(numbers, key=keys.__getitem__, reverse=not ascending) + not_a_number
    nulls = [i for i, v in enumerate(values) if v is None]
    if nodata is True:
        ordered = ordered + nulls
    elif nodata is False:
        ordered = nulls + ordered
    return values, ordered


def _order_of_values(values: np.ndarray, ascending: bool, nodata: bool | None) -> np.ndarray:
    """Positions in sorted order along the last axis; no-data last (first if ``nodata`` is false);
    with ``nodata`` None, the positions of no-data become NaN (dropped, padded at the end)."""
    null = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, dtype=bool)
    numbers = values.astype(np.float64)  # negating unsigned integers would wrap around
    key = np.where(null, 0, numbers if ascending else -numbers)
    null_rank = ~null if nodata is False else null
    order = np.lexsort((key, null_rank), axis=-1)  # stable; the last key sorts first
    if nodata is not None:
        return order
    valid = (~null).sum(axis=-1, keepdims=True)
    return np.where(np.arange(values.shape[-1]) < valid, order, np.nan)


def _cube_order(array: xr.DataArray, process: str, asc: Any, nodata: Any) -> tuple[bool, bool | None]:
    if array.dtype.kind not in "iuf":
        raise parameter_invalid(process, "data", "on data cubes only numbers can be ordered.")
    return _flag(asc, process, "asc"), None if nodata is None else _flag(nodata, process, "nodata")


def order(data: Any, asc: bool = True, nodata: bool | None = None) -> Any:
    if is_cube_array(data):
        array = as_labeled_array(data, "order")
        ascending, nulls = _cube_order(array, "order", asc, nodata)
        result = along_array(
            array,
            _order_of_values,
            output_dtype=float if nulls is None else np.int64,
            ascending=ascending,
            nodata=nulls,
        )
        return _without_labels(result)
    _, ordered = _plain_order("order", data, asc, nodata)
    return ordered


def _sorted_values(values: np.ndarray, ascending: bool, nodata_first: bool) -> np.ndarray:
    return np.take_along_axis(values, _order_of_values(values, ascending, not nodata_first), axis=-1)


def sort(data: Any, asc: bool = True, nodata: bool | None = None) -> Any:
    """On cubes, no-data goes last unless ``nodata`` is false (see the module docstring)."""
    if is_cube_array(data):
        array = as_labeled_array(data, "sort")
        ascending, nulls = _cube_order(array, "sort", asc, nodata)
        result = along_array(array, _sorted_values, ascending=ascending, nodata_first=nulls is False)
        return _without_labels(result)
    values, ordered = _plain_order("sort", data, asc, nodata)
    return [values[i] for i in ordered]


def _take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    missing = np.isnan(positions)
    taken = np.take_along_axis(values, np.where(missing, 0, positions).astype(np.int64), axis=-1)
    return np.where(missing, np.nan, taken)


def rearrange(data: Any, order: Any) -> Any:
    """Elements in the given order of positions (as computed by ``order``)."""
    if isinstance(order, xr.DataArray):
        # Positions per pixel (order() of a cube's arrays); NaN positions give no-data.
        array = single_chunk(_as_array(data, "rearrange", "data"))
        per_pixel = single_chunk(as_labeled_array(order, "rearrange", "order")).rename(
            {ARRAY_DIM: "__order__"}
        )
        result = xr.apply_ufunc(
            _take,
            array.astype(float),
            per_pixel.astype(float),
            input_core_dims=[[ARRAY_DIM], ["__order__"]],
            output_core_dims=[["__order__"]],
            dask="parallelized",
            output_dtypes=[float],
        )
        return result.rename({"__order__": ARRAY_DIM}).transpose(*array.dims)
    positions = [_index(p, "rearrange", "order") for p in plain_list(order, "rearrange", "order")]
    size = (
        as_labeled_array(data, "rearrange").sizes[ARRAY_DIM]
        if is_cube_array(data)
        else len(plain_list(data, "rearrange"))
    )
    if any(not 0 <= p < size for p in positions):
        raise parameter_invalid("rearrange", "order", f"positions must be between 0 and {size - 1}.")
    if is_cube_array(data):
        return as_labeled_array(data, "rearrange").isel({ARRAY_DIM: positions})
    values = plain_list(data, "rearrange")
    return [values[p] for p in positions]


# --- cumulative scans ----------------------------------------------------------------------------
def _nan_propagating(pick: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: a if np.isnan(a) else (b if np.isnan(b) else pick(a, b))


_SCANS: dict[
    str, tuple[Callable[[Any, Any], Any], Callable[[np.ndarray], np.ndarray], Callable[..., np.ndarray]]
] = {
    # process: (plain step, scan skipping NaN, scan propagating NaN), scans along the last axis
    "cumsum": (lambda a, b: a + b, lambda v: np.nancumsum(v, axis=-1), lambda v: np.cumsum(v, axis=-1)),
    "cumproduct": (lambda a, b: a * b, lambda v: np.nancumprod(v, axis=-1), lambda v: np.cumprod(v, axis=-1)),
    "cummax": (
        _nan_propagating(lambda a, b: a if a >= b else b),
        lambda v: np.fmax.accumulate(v, axis=-1),
        lambda v: np.maximum.accumulate(v, axis=-1),
    ),
    "cummin": (
        _nan_propagating(lambda a, b: a if a <= b else b),
        lambda v: np.fmin.accumulate(v, axis=-1),
        lambda v: np.minimum.accumulate(v, axis=-1),
    ),
}


def _scan(process: str, data: Any, ignore_nodata: Any) -> Any:
    """Running totals; no-data stays no-data, and without ``ignore_nodata`` ends the scan."""
    ignore = _flag(ignore_nodata, process, "ignore_nodata")
    step, skipping, propagating = _SCANS[process]
    if is_cube_array(data):
        array = as_labeled_array(data, process)
        if not ignore or not may_hold_nodata(array):
            return along_array(array, propagating)
        return along_array(array, skipping).where(array.notnull())
    result: list[Any] = []
    total: Any = None
    ended = False
    for value in (to_python(v) for v in plain_list(data, process)):
        if value is not None and not is_number(value):
            raise parameter_invalid(
                process, "data", f"expected an array of numbers and nulls, found {value!r}."
            )
        ended = ended or (value is None and not ignore)
        if value is None or ended:
            result.append(None)
            continue
        total = value if total is None else step(total, value)
        result.append(total)
    return result


def cumsum(data: Any, ignore_nodata: bool = True) -> Any:
    return _scan("cumsum", data, ignore_nodata)


def cumproduct(data: Any, ignore_nodata: bool = True) -> Any:
    return _scan("cumproduct", data, ignore_nodata)


def cummax(data: Any, ignore_nodata: bool = True) -> Any:
    return _scan("cummax", data, ignore_nodata)


def cummin(data: Any, ignore_nodata: bool = True) -> Any:
    return _scan("cummin", data, ignore_nodata)


# --- interpolation -------------------------------------------------------------------------------
def _interpolate_gaps(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of the NaN between two numbers along the last axis, at positions ``x``.

    Written as ``y0 * (1 - t) + y1 * t`` so that an infinite neighbour gives an infinite value
    (``y0 + (y1 - y0) * t`` would give NaN).
    """
    size = values.shape[-1]
    if size == 0:
        return values
    valid = ~np.isnan(values)
    position = np.arange(size)
    before = np.maximum.accumulate(np.where(valid, position, -1), axis=-1)
    after = np.flip(
        np.minimum.accumulate(np.flip(np.where(valid, position, size), axis=-1), axis=-1), axis=-1
    )
    inside = ~valid & (before >= 0) & (after < size)
    before, after = np.clip(before, 0, size - 1), np.clip(after, 0, size - 1)
    with np.errstate(all="ignore"):
        t = (x - x[before]) / (x[after] - x[before])
        filled = (
            np.take_along_axis(values, before, axis=-1) * (1 - t)
            + np.take_along_axis(values, after, axis=-1) * t
        )
    return np.where(inside, filled, values)


def _interpolation_positions(array: xr.DataArray) -> np.ndarray:
    """Numeric or temporal labels are the x axis of the interpolation; otherwise the indices."""
    if has_labels(array) and array[ARRAY_DIM].dtype.kind in "iuf":
        return array[ARRAY_DIM].values.astype(float)
    if has_labels(array) and array[ARRAY_DIM].dtype.kind == "M":
        return array[ARRAY_DIM].values.astype("datetime64[ns]").astype(np.int64).astype(float)
    return np.arange(array.sizes[ARRAY_DIM], dtype=float)


def array_interpolate_linear(data: Any) -> Any:
    """Fill no-data and NaN between two numbers linearly; leading and trailing ones stay."""
    if is_cube_array(data):
        array = as_labeled_array(data, "array_interpolate_linear")
        if array.dtype.kind != "f":
            return array
        return along_array(array, _interpolate_gaps, x=_interpolation_positions(array))
    values = [to_python(v) for v in plain_list(data, "array_interpolate_linear")]
    for value in values:
        if value is not None and not is_number(value):
            raise parameter_invalid(
                "array_interpolate_linear", "data", f"expected numbers and nulls, found {value!r}."
            )
    numbers = np.array([np.nan if v is None else v for v in values], dtype=float)
    filled = _interpolate_gaps(numbers, np.arange(len(values), dtype=float))
    return [
        float(f) if np.isnan(n) and not np.isnan(f) else v
        for v, n, f in zip(values, numbers, filled, strict=True)
    ]


PROCESSES = {
    "array_element": array_element,
    "array_labels": array_labels,
    "array_create": array_create,
    "array_concat": array_concat,
    "array_append": array_append,
    "array_contains": array_contains,
    "array_find": array_find,
    "array_apply": array_apply,
    "array_filter": array_filter,
    "order": order,
    "sort": sort,
    "rearrange": rearrange,
    "cumsum": cumsum,
    "cumproduct": cumproduct,
    "cummax": cummax,
    "cummin": cummin,
    "array_interpolate_linear": array_interpolate_linear,
}
