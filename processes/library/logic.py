"""Comparisons, boolean logic and value checks, with openEO's three-valued (null-aware) logic.

Plain values follow the specs' truth tables: null means "unknown", so ``and(false, null)`` is false
but ``and(true, null)`` is null, and a comparison with null is null. Types are compared strictly:
the string ``"1"`` is not the number ``1`` and ``0`` is not ``false``; NaN compares as in IEEE 754.

On cubes no-data (NaN) plays null. A boolean result that may be null is therefore a float cube
holding 1.0 (true), 0.0 (false) and NaN (null); results from cubes that can't hold no-data (integer
or boolean cubes) stay boolean. Every process here accepts both encodings as booleans.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast, overload

import numpy as np
import xarray as xr

from processes.core.errors import parameter_invalid
from processes.model.values import (
    all_nodata_like,
    is_number,
    is_valid_plain,
    may_hold_nodata,
    nan_for_null,
    nodata_mask,
    to_python,
)

Boolean = bool | xr.DataArray | None
"""A boolean, null, or a cube of booleans (see the module docstring for their encoding)."""


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def _plain(value: Any) -> Any:
    return to_python(value) if isinstance(value, np.generic) else value


# --- the kinds of operands ------------------------------------------------------------------------
def _kind(value: Any) -> str:
    """``null``, ``number``, ``boolean``, ``string`` or ``other`` for a plain value or a cube's dtype."""
    if isinstance(value, xr.DataArray):
        kind = value.dtype.kind
        if kind == "b":
            return "boolean"
        if kind in "iuf":
            return "number"
        return "string" if kind in "USO" else "other"
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if is_number(value):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _comparable(value: Any, process: str, parameter: str) -> Any:
    value = _plain(value)
    if _kind(value) == "other":
        raise parameter_invalid(
            process, parameter, f"expected a number, boolean, string or null, got {_describe(value)}."
        )
    return value


def truth_and_null(value: Any) -> tuple[Any, Any]:
    """``(is_true, is_null)`` of a boolean operand; floats are booleans with NaN as null."""
    if value is None:
        return False, True
    if isinstance(value, xr.DataArray):
        if value.dtype.kind == "b":
            return value, False
        null = value.isnull() if may_hold_nodata(value) else False
        return (value != 0) & ~null, null
    return bool(value), False


def _boolean(value: Any, process: str, parameter: str) -> Any:
    value = _plain(value)
    if (
        value is None
        or isinstance(value, bool)
        or (isinstance(value, xr.DataArray) and value.dtype.kind in "biuf")
    ):
        return value
    raise parameter_invalid(process, parameter, f"expected a boolean or null, got {_describe(value)}.")


def _as_cube_operand(value: Any) -> Any:
    """Plain booleans as 0-d arrays, so that ``~`` negates them as booleans and not as integers."""
    return value if isinstance(value, xr.DataArray) else xr.DataArray(np.bool_(value))


def _may_be_null(value: Any) -> bool:
    return value is None or (isinstance(value, xr.DataArray) and may_hold_nodata(value))


def _three_valued(
    x: Any, y: Any, combine: Callable[[Any, Any], Any], unknown: Callable[[Any, Any, Any, Any, Any], Any]
) -> xr.DataArray:
    """A binary boolean operation on cubes: ``combine`` the truths, null where ``unknown`` says."""
    (x_true, x_null), (y_true, y_null) = truth_and_null(x), truth_and_null(y)
    x_true, x_null, y_true, y_null = map(_as_cube_operand, (x_true, x_null, y_true, y_null))
    result = combine(x_true, y_true)
    if _may_be_null(x) or _may_be_null(y):
        result = result.where(~unknown(result, x_true, x_null, y_true, y_null))
    return result


# --- boolean logic --------------------------------------------------------------------------------
def logical_and(x: Boolean, y: Boolean) -> Boolean:
    """openEO ``and``: false wins over null, null over true."""
    x, y = _boolean(x, "and", "x"), _boolean(y, "and", "y")
    if isinstance(x, xr.DataArray) or isinstance(y, xr.DataArray):

        def unknown(result, x_true, x_null, y_true, y_null):
            some_false = (~x_true & ~x_null) | (~y_true & ~y_null)
            return (x_null | y_null) & ~some_false

        return _three_valued(x, y, lambda a, b: a & b, unknown)
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def logical_or(x: Boolean, y: Boolean) -> Boolean:
    """openEO ``or``: true wins over null, null over false."""
    x, y = _boolean(x, "or", "x"), _boolean(y, "or", "y")
    if isinstance(x, xr.DataArray) or isinstance(y, xr.DataArray):
        return _three_valued(
            x,
            y,
            lambda a, b: a | b,
            lambda result, x_true, x_null, y_true, y_null: (x_null | y_null) & ~result,
        )
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


def xor(x: Boolean, y: Boolean) -> Boolean:
    """openEO ``xor``: null if any operand is null."""
    x, y = _boolean(x, "xor", "x"), _boolean(y, "xor", "y")
    if isinstance(x, xr.DataArray) or isinstance(y, xr.DataArray):
        return _three_valued(
            x, y, lambda a, b: a ^ b, lambda result, x_true, x_null, y_true, y_null: x_null | y_null
        )
    return None if x is None or y is None else x != y


def logical_not(x: Boolean) -> Boolean:
    """openEO ``not``."""
    x = _boolean(x, "not", "x")
    if isinstance(x, xr.DataArray):
        x_true, x_null = truth_and_null(x)
        result = ~x_true
        return result.where(~x_null) if _may_be_null(x) else result
    return None if x is None else not x


def if_then_else(value: Boolean, accept: Any, reject: Any = None) -> Any:
    """openEO ``if``: ``accept`` where ``value`` is true, else (false or null) ``reject``."""
    value = _boolean(value, "if", "value")
    if isinstance(value, xr.DataArray):
        for name, branch in (("accept", accept), ("reject", reject)):
            if isinstance(branch, (list, dict)):
                raise parameter_invalid(
                    "if", name, "with a data cube as value, accept and reject must be numbers, null or cubes."
                )
        is_true, _ = truth_and_null(value)
        return xr.where(is_true, nan_for_null(accept), nan_for_null(reject), keep_attrs=True)
    return accept if value is True else reject


# --- comparisons ----------------------------------------------------------------------------------
def _equal_plain(x: Any, y: Any, delta: float | None, case_sensitive: bool) -> bool:
    kind = _kind(x)
    if kind != _kind(y):
        return False
    if kind == "number" and delta is not None:
        return bool(abs(x - y) <= delta)
    if kind == "string" and not case_sensitive:
        return x.casefold() == y.casefold()
    return bool(x == y)


def _casefold(value: Any) -> Any:
    return value.str.casefold() if isinstance(value, xr.DataArray) else value.casefold()


def _equal_cube(x: Any, y: Any, delta: float | None, case_sensitive: bool) -> xr.DataArray:
    kind_x, kind_y = _kind(x), _kind(y)
    if "boolean" in (kind_x, kind_y) and {kind_x, kind_y} <= {"boolean", "number"}:
        # A float cube may be a boolean cube with no-data (see the module docstring).
        kinds_match = all(
            _kind(v) == "boolean" or (isinstance(v, xr.DataArray) and v.dtype.kind == "f") for v in (x, y)
        )
        if kinds_match:
            return _as_cube_operand(truth_and_null(x)[0]) == _as_cube_operand(truth_and_null(y)[0])
    if kind_x != kind_y:
        cube = x if isinstance(x, xr.DataArray) else y
        return xr.zeros_like(cube, dtype=bool)
    if kind_x == "number" and delta is not None:
        return abs(x - y) <= delta
    if kind_x == "string" and not case_sensitive:
        return _casefold(x) == _casefold(y)
    return x == y


def _comparison(
    process: str,
    x: Any,
    y: Any,
    plain: Callable[[Any, Any], Any],
    cube: Callable[[Any, Any], xr.DataArray],
) -> Boolean:
    x, y = _comparable(x, process, "x"), _comparable(y, process, "y")
    if isinstance(x, xr.DataArray) or isinstance(y, xr.DataArray):
        if x is None or y is None:
            return all_nodata_like(x, y)
        result = cube(x, y)
        if not isinstance(result, xr.DataArray):
            result = xr.full_like(x if isinstance(x, xr.DataArray) else y, bool(result), dtype=bool)
        mask = nodata_mask(x, y)
        return result if mask is None else result.where(~mask)
    if x is None or y is None:
        return None
    return plain(x, y)


def _delta(delta: Any, process: str) -> float | None:
    delta = _plain(delta)
    if delta is not None and not is_number(delta):
        raise parameter_invalid(
            process, "delta", f"expected a positive number or null, got {_describe(delta)}."
        )
    return delta


def eq(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> Boolean:
    delta = _delta(delta, "eq")
    return _comparison(
        "eq",
        x,
        y,
        lambda a, b: _equal_plain(a, b, delta, case_sensitive),
        lambda a, b: _equal_cube(a, b, delta, case_sensitive),
    )


def neq(x: Any, y: Any, delta: float | None = None, case_sensitive: bool = True) -> Boolean:
    delta = _delta(delta, "neq")
    return _comparison(
        "neq",
        x,
        y,
        lambda a, b: not _equal_plain(a, b, delta, case_sensitive),
        lambda a, b: ~_equal_cube(a, b, delta, case_sensitive),
    )


def _numbers_compared(op: Callable[[Any, Any], Any], or_equal: bool) -> tuple[Callable, Callable]:
    """Plain and cube versions of an ordering: only numbers are ordered; for ``gte``/``lte`` other
    values that are equal (see ``eq``) count as well, anything else is false."""

    def plain(a: Any, b: Any) -> bool:
        if _kind(a) == "number" and _kind(b) == "number":
            return bool(op(a, b))
        return or_equal and _equal_plain(a, b, None, True)

    def cube(a: Any, b: Any) -> Any:
        if _kind(a) == "number" and _kind(b) == "number":
            return op(a, b)
        return _equal_cube(a, b, None, True) if or_equal else False

    return plain, cube


def gt(x: Any, y: Any) -> Boolean:
    return _comparison("gt", x, y, *_numbers_compared(lambda a, b: a > b, or_equal=False))


def gte(x: Any, y: Any) -> Boolean:
    return _comparison("gte", x, y, *_numbers_compared(lambda a, b: a >= b, or_equal=True))


def lt(x: Any, y: Any) -> Boolean:
    return _comparison("lt", x, y, *_numbers_compared(lambda a, b: a < b, or_equal=False))


def lte(x: Any, y: Any) -> Boolean:
    return _comparison("lte", x, y, *_numbers_compared(lambda a, b: a <= b, or_equal=True))


def between(x: Any, min: float, max: float, exclude_max: bool = False) -> Boolean:
    """``and(gte(x, min), lte(x, max))`` (``lt`` with ``exclude_max``); swapped bounds give false."""
    low, high = _plain(min), _plain(max)
    for name, bound in (("min", low), ("max", high)):
        if not is_number(bound):
            raise parameter_invalid("between", name, f"expected a number, got {_describe(bound)}.")
    x = _plain(x)

    def within(v: Any) -> Any:
        return (v >= low) & ((v < high) if exclude_max else (v <= high))

    if isinstance(x, xr.DataArray):
        if _kind(x) != "number" or low > high:
            result = xr.zeros_like(x, dtype=bool)
        else:
            result = within(x)
        mask = nodata_mask(x)
        return result if mask is None else result.where(~mask)
    if x is None:
        return None
    return _kind(x) == "number" and low <= high and bool(within(x))


# --- value checks ---------------------------------------------------------------------------------
def is_nan(x: Any) -> bool | xr.DataArray:
    """True for NaN and for anything that is not a number (including null)."""
    x = _plain(x)
    if isinstance(x, xr.DataArray):
        return x.isnull() if _kind(x) == "number" else xr.ones_like(x, dtype=bool)
    return not is_number(x) or bool(np.isnan(x))


def is_nodata(x: Any) -> bool | xr.DataArray:
    """True for null; in cubes no-data is NaN."""
    if isinstance(x, xr.DataArray):
        return x.isnull()
    return x is None


@overload
def is_valid(x: xr.DataArray) -> xr.DataArray: ...
@overload
def is_valid(x: Any) -> bool | xr.DataArray: ...
def is_valid(x: Any) -> bool | xr.DataArray:
    """False for null, NaN and ±infinity; every other value (strings, arrays, …) is valid."""
    x = _plain(x)
    if isinstance(x, xr.DataArray):
        # numpy's stubs type a ufunc's result as ndarray; on a DataArray it is a DataArray
        return cast(xr.DataArray, np.isfinite(x)) if _kind(x) == "number" else x.notnull()
    return is_valid_plain(x)


def is_infinite(x: Any) -> bool | xr.DataArray:
    x = _plain(x)
    if isinstance(x, xr.DataArray):
        return cast(xr.DataArray, np.isinf(x)) if _kind(x) == "number" else xr.zeros_like(x, dtype=bool)
    return is_number(x) and bool(np.isinf(x))


PROCESSES = {
    "and": logical_and,
    "or": logical_or,
    "xor": xor,
    "not": logical_not,
    "if": if_then_else,
    "eq": eq,
    "neq": neq,
    "gt": gt,
    "gte": gte,
    "lt": lt,
    "lte": lte,
    "between": between,
    "is_nan": is_nan,
    "is_nodata": is_nodata,
    "is_valid": is_valid,
    "is_infinite": is_infinite,
}
