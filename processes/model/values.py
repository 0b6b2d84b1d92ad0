"""The three kinds of values a process receives, and how to tell and convert them.

1. **Plain values** from JSON: numbers, ``None`` (openEO's null), booleans, strings, lists, objects.
   Processes given plain values return plain Python values (``int``/``float``/``bool``/``None``/
   ``list``), never numpy scalars. Here NaN is a number, not a no-data value.
2. **Raster cubes** (``xarray.DataArray``, usually Dask-backed). Element-wise processes work on every
   pixel lazily; no-data is NaN, so wherever the spec returns null the result holds NaN.
3. **Arrays in callbacks** of ``reduce_dimension``/``apply_dimension``: a ``DataArray`` with the
   dimension :data:`processes.model.raster_cube.ARRAY_DIM` (labels as its coordinate), or a list whose elements
   include ``DataArray`` objects (e.g. ``[array_element(data, 0), array_element(data, 1)]``), which
   :func:`as_labeled_array` stacks along a new ``ARRAY_DIM``. Array processes work along it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import xarray as xr

from processes.core.errors import parameter_invalid
from processes.model.raster_cube import ARRAY_DIM

Numeric: TypeAlias = int | float | xr.DataArray | None
"""A number, null, or a cube of numbers: what element-wise processes take and return."""


def is_number(value: Any) -> bool:
    """A plain number; booleans are not numbers in openEO."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def is_valid_plain(value: Any) -> bool:
    """openEO ``is_valid`` of a plain value: not null, and finite if a number."""
    if value is None:
        return False
    return bool(np.isfinite(value)) if is_number(value) else True


def contains_cube(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and any(isinstance(v, xr.DataArray) for v in value)


def is_cube_array(value: Any) -> bool:
    """Whether an array argument takes the cube path: a ``DataArray`` (which :func:`as_labeled_array`
    refuses with a clear message if it lacks ``ARRAY_DIM``) or a list holding cubes."""
    return isinstance(value, xr.DataArray) or contains_cube(value)


def has_labels(array: xr.DataArray) -> bool:
    return ARRAY_DIM in array.coords


def is_dask(array: xr.DataArray) -> bool:
    return array.chunks is not None


def may_hold_nodata(array: xr.DataArray) -> bool:
    """Whether a cube can hold NaN, i.e. no-data (integer and boolean cubes cannot)."""
    return array.dtype.kind in "fcO"


def as_labeled_array(data: Any, process: str, parameter: str = "data") -> xr.DataArray:
    """``data`` as a ``DataArray`` along ``ARRAY_DIM``; lists of cubes and values are stacked."""
    if isinstance(data, xr.DataArray):
        if ARRAY_DIM not in data.dims:
            raise parameter_invalid(
                process,
                parameter,
                "expected an array, got a data cube without an array dimension (dimensions: "
                f"{', '.join(map(str, data.dims)) or 'none'}). Array processes such as '{process}' work along the "
                "dimension of reduce_dimension/apply_dimension, not on the pixels given to apply.",
            )
        return data
    if isinstance(data, (list, tuple)):
        return stack(list(data), process, parameter)
    raise parameter_invalid(process, parameter, f"expected an array, got {type(data).__name__}.")


def stack(items: list[Any], process: str, parameter: str = "data") -> xr.DataArray:
    """Stack cubes and plain values (broadcast to the cubes) along a new, unlabeled ``ARRAY_DIM``."""
    arrays = []
    for item in items:
        if isinstance(item, xr.DataArray):
            if ARRAY_DIM in item.dims:
                raise parameter_invalid(process, parameter, "arrays nested in arrays are not supported.")
            arrays.append(item)
        elif item is None or is_number(item) or isinstance(item, (bool, str)):
            arrays.append(xr.DataArray(np.nan if item is None else item))
        else:
            raise parameter_invalid(
                process,
                parameter,
                f"an array element of type {type(item).__name__} can't be combined with cubes.",
            )
    if not arrays:
        return xr.DataArray(np.array([], dtype=float), dims=(ARRAY_DIM,))
    # A scalar label left on an element (from selecting it without dropping) would clash with the
    # new dimension; the stacked array is unlabeled as its elements may come from any labels.
    arrays = [a.drop_vars(ARRAY_DIM) if ARRAY_DIM in a.coords else a for a in arrays]
    arrays = list(xr.broadcast(*arrays))
    return xr.concat(arrays, dim=ARRAY_DIM, coords="minimal", compat="override", join="outer")


def plain_list(data: Any, process: str, parameter: str = "data") -> list[Any]:
    """A plain array as a list; anything that isn't an array is an invalid argument."""
    if isinstance(data, (list, tuple)):
        return list(data)
    if isinstance(data, np.ndarray):
        return [to_python(v) for v in data.tolist()]
    raise parameter_invalid(process, parameter, f"expected an array, got {type(data).__name__}.")


def single_chunk(array: xr.DataArray) -> xr.DataArray:
    """``array`` with ``ARRAY_DIM`` in one chunk, as sorting and scanning along it need."""
    if is_dask(array) and len(array.chunksizes.get(ARRAY_DIM, ())) > 1:
        return array.chunk({ARRAY_DIM: -1})
    return array


def along_array(
    array: xr.DataArray,
    func: Callable[..., np.ndarray],
    *,
    reduces: bool = False,
    output_dtype: Any = None,
    **kwargs: Any,
) -> xr.DataArray:
    """Apply ``func(values, **kwargs)`` along ``ARRAY_DIM`` of every pixel, lazily.

    ``func`` gets numpy blocks with ``ARRAY_DIM`` as the last axis and returns an array of the same
    shape, or without that axis if it ``reduces``.
    """
    array = single_chunk(array)
    result = xr.apply_ufunc(
        func,
        array,
        input_core_dims=[[ARRAY_DIM]],
        output_core_dims=[[] if reduces else [ARRAY_DIM]],
        dask="parallelized",
        output_dtypes=[output_dtype if output_dtype is not None else array.dtype],
        kwargs=kwargs,
        keep_attrs=True,
    )
    return result if reduces else result.transpose(*array.dims)


def labels_of(array: xr.DataArray) -> list[Any] | None:
    """The labels along ``ARRAY_DIM`` as plain values (dates as RFC 3339 strings), or None."""
    if not has_labels(array):
        return None
    return [to_python(v) for v in array[ARRAY_DIM].values]


def to_python(value: Any) -> Any:
    """Numpy scalars and arrays (recursively in lists and dicts) as plain Python values."""
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        timestamp = pd.Timestamp(value)
        if pd.isna(timestamp):
            return None
        if timestamp.tzinfo is not None:
            timestamp = timestamp.tz_convert("UTC").tz_localize(None)
        return timestamp.isoformat() + "Z"
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, list, tuple)):
        return [to_python(v) for v in value]
    if isinstance(value, dict):
        return {k: to_python(v) for k, v in value.items()}
    return value


def nan_for_null(value: Any) -> Any:
    """A plain operand of a cube operation: null becomes NaN, cube no-data."""
    return np.nan if value is None else value


def nodata_mask(*operands: Any) -> xr.DataArray | None:
    """Where any cube operand holds no-data (NaN); None if none of them can."""
    mask = None
    for operand in operands:
        if isinstance(operand, xr.DataArray) and may_hold_nodata(operand):
            null = operand.isnull()
            mask = null if mask is None else (mask | null)
    return mask


def all_nodata_like(*operands: Any) -> xr.DataArray:
    """A float cube of NaN shaped like the cube operands broadcast together."""
    cubes = [o for o in operands if isinstance(o, xr.DataArray)]
    template = xr.broadcast(*cubes)[0] if len(cubes) > 1 else cubes[0]
    return xr.full_like(template, np.nan, dtype=float)
