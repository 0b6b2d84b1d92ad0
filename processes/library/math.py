"""Element-wise arithmetic: the openEO math processes on numbers and on raster cubes.

Every process takes plain numbers, returning plain numbers (null in, null out), or cubes, returning
lazy cubes in which no-data is NaN; see :mod:`processes.model.values`. Plain numbers follow IEEE 754 as the
specs ask: a division by zero gives ±Infinity or NaN, not an error. Integers stay integers where the
result is one (``add(1, 2)`` is ``3``).

Integer and boolean cubes are computed in floating point: ``B08 - B04`` on uint16 bands would
otherwise wrap around below zero, and only a float result can hold no-data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from processes.core.errors import parameter_invalid, process_error
from processes.model.values import Numeric, all_nodata_like, is_number, to_python


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def _operand(value: Any, process: str, parameter: str) -> Any:
    value = to_python(value) if isinstance(value, np.generic) else value
    if value is None or isinstance(value, xr.DataArray) or is_number(value):
        return value
    raise parameter_invalid(process, parameter, f"expected a number or null, got {_describe(value)}.")


def _bound(value: Any, process: str, parameter: str) -> float | int:
    value = to_python(value) if isinstance(value, np.generic) else value
    if not is_number(value):
        raise parameter_invalid(process, parameter, f"expected a number, got {_describe(value)}.")
    return value


def _float_cube(value: Any) -> Any:
    """Integer and boolean cubes as float (see the module docstring); anything else unchanged."""
    if isinstance(value, xr.DataArray) and value.dtype.kind in "biu":
        return value.astype(np.float32 if value.dtype.itemsize <= 2 else np.float64)
    return value


def _ieee(func: Callable[..., Any], *args: Any) -> float:
    """``func`` on plain numbers in float64, with IEEE results (±inf, NaN) instead of warnings."""
    with np.errstate(all="ignore"):
        return float(func(*(np.float64(a) for a in args)))


def _unary(process: str, x: Any, func: Callable[..., Any], parameter: str = "x") -> Numeric:
    x = _operand(x, process, parameter)
    if x is None:
        return None
    if isinstance(x, xr.DataArray):
        return func(_float_cube(x))
    return _ieee(func, x)


def _binary(
    process: str,
    operands: dict[str, Any],
    func: Callable[[Any, Any], Any],
    plain: Callable[[Any, Any], Any] | None = None,
) -> Numeric:
    """``func(a, b)`` for the two named operands; ``plain`` computes plain numbers if given."""
    (name_a, a), (name_b, b) = operands.items()
    a, b = _operand(a, process, name_a), _operand(b, process, name_b)
    cubes = [v for v in (a, b) if isinstance(v, xr.DataArray)]
    if cubes:
        if a is None or b is None:
            return all_nodata_like(*cubes)
        return func(_float_cube(a), _float_cube(b))
    if a is None or b is None:
        return None
    return plain(a, b) if plain is not None else _ieee(func, a, b)


def _integral(value: float) -> int | float:
    """An integer-valued float as int; ±inf and NaN have no integer and stay floats."""
    return int(value) if np.isfinite(value) else value


# --- arithmetic ----------------------------------------------------------------------------------
def add(x: Numeric, y: Numeric) -> Numeric:
    return _binary("add", {"x": x, "y": y}, lambda a, b: a + b, plain=lambda a, b: a + b)


def subtract(x: Numeric, y: Numeric) -> Numeric:
    return _binary("subtract", {"x": x, "y": y}, lambda a, b: a - b, plain=lambda a, b: a - b)


def multiply(x: Numeric, y: Numeric) -> Numeric:
    return _binary("multiply", {"x": x, "y": y}, lambda a, b: a * b, plain=lambda a, b: a * b)


def divide(x: Numeric, y: Numeric) -> Numeric:
    return _binary("divide", {"x": x, "y": y}, lambda a, b: a / b)


def _power_of_numbers(base: float | int, p: float | int) -> float | int:
    result = _ieee(np.power, base, p)
    # Exact integer powers while they fit a float's integer range, like add/multiply keep ints.
    if isinstance(base, int) and isinstance(p, int) and p >= 0 and abs(result) < 2**53:
        return base**p
    return result


def power(base: Numeric, p: Numeric) -> Numeric:
    return _binary("power", {"base": base, "p": p}, lambda a, b: a**b, plain=_power_of_numbers)


def _modulo_cube(x: Any, y: Any) -> Any:
    by_zero = np.sign(x) * np.inf  # as for plain numbers: ±infinity, NaN for 0 mod 0
    if not isinstance(y, xr.DataArray) and y == 0:
        return by_zero
    remainder = np.fmod(x, y)
    # fmod has the sign of the dividend; the spec wants the divisor's (floored modulo). Infinite
    # divisors keep the dividend, as fmod gives it.
    shift = (remainder != 0) & ((remainder < 0) != (y < 0)) & np.isfinite(y)
    result = xr.where(shift, remainder + y, remainder, keep_attrs=True)
    return xr.where(y == 0, by_zero, result, keep_attrs=True) if isinstance(y, xr.DataArray) else result


def _modulo_of_numbers(x: float | int, y: float | int) -> float | int:
    if y == 0:
        # "A modulo by zero results in ±infinity if the processing environment supports it."
        return _ieee(lambda a: np.sign(a) * np.inf, x)
    if isinstance(x, int) and isinstance(y, int):
        return x % y  # Python's % is the floored modulo: the sign of the divisor
    remainder = _ieee(np.fmod, x, y)
    if remainder != 0 and (remainder < 0) != (y < 0) and np.isfinite(y):
        remainder += y
    return remainder


def mod(x: Numeric, y: Numeric) -> Numeric:
    return _binary("mod", {"x": x, "y": y}, _modulo_cube, plain=_modulo_of_numbers)


def absolute(x: Numeric) -> Numeric:
    x = _operand(x, "absolute", "x")
    return abs(x) if is_number(x) else _unary("absolute", x, np.abs)


def sgn(x: Numeric) -> Numeric:
    x = _operand(x, "sgn", "x")
    return _integral(_ieee(np.sign, x)) if is_number(x) else _unary("sgn", x, np.sign)


def sqrt(x: Numeric) -> Numeric:
    return _unary("sqrt", x, np.sqrt)


def exp(p: Numeric) -> Numeric:
    return _unary("exp", p, np.exp, parameter="p")


def ln(x: Numeric) -> Numeric:
    return _unary("ln", x, np.log)


def _logarithm(x: Any, base: Any) -> Any:
    # Dedicated functions for the usual bases give exact results, e.g. log(1000, 10) == 3.
    if not isinstance(base, xr.DataArray) and base == 10:
        return np.log10(x)
    if not isinstance(base, xr.DataArray) and base == 2:
        return np.log2(x)
    return np.log(x) / np.log(base)


def log(x: Numeric, base: Numeric) -> Numeric:
    return _binary("log", {"x": x, "base": base}, _logarithm)


def normalized_difference(x: Numeric, y: Numeric) -> Numeric:
    return _binary("normalized_difference", {"x": x, "y": y}, lambda a, b: (a - b) / (a + b))


# --- rounding ------------------------------------------------------------------------------------
def floor(x: Numeric) -> Numeric:
    x = _operand(x, "floor", "x")
    return _integral(_ieee(np.floor, x)) if is_number(x) else _unary("floor", x, np.floor)


def ceil(x: Numeric) -> Numeric:
    x = _operand(x, "ceil", "x")
    return _integral(_ieee(np.ceil, x)) if is_number(x) else _unary("ceil", x, np.ceil)


def integer_part(x: Numeric) -> Numeric:
    """openEO ``int``: the integer part (rounding towards zero)."""
    x = _operand(x, "int", "x")
    if is_number(x):
        truncated = _ieee(np.trunc, x)
        # NaN has no integer part: the official tests expect null for it (the spec returns integer or null).
        return None if np.isnan(truncated) else _integral(truncated)
    return _unary("int", x, np.trunc)


def round_value(x: Numeric, p: int = 0) -> Numeric:
    """openEO ``round``: to ``p`` decimals, halves to even (IEEE 754), as numpy rounds."""
    if not isinstance(p, (int, np.integer)) or isinstance(p, bool):
        raise parameter_invalid("round", "p", f"expected an integer, got {_describe(p)}.")
    x = _operand(x, "round", "x")
    if isinstance(x, int):
        return x if p >= 0 else int(np.round(x, int(p)))
    if is_number(x):
        return _ieee(lambda v: np.round(v, int(p)), x)
    return _unary("round", x, lambda v: v.round(int(p)))


def _clip(value: Any, low: float, high: float) -> Any:
    return value.clip(low, high) if isinstance(value, xr.DataArray) else np.clip(value, low, high)


def clip(x: Numeric, min: float, max: float) -> Numeric:
    low, high = _bound(min, "clip", "min"), _bound(max, "clip", "max")
    if low > high:
        raise process_error(
            "MinMaxSwapped",
            f"The minimum value ({low}) of clip is greater than the maximum value ({high}); swap them.",
        )
    x = _operand(x, "clip", "x")
    if isinstance(x, int) and isinstance(low, int) and isinstance(high, int):
        return x if low <= x <= high else (low if x < low else high)
    return _unary("clip", x, lambda v: _clip(v, low, high))


def linear_scale_range(
    x: Numeric, inputMin: float, inputMax: float, outputMin: float = 0, outputMax: float = 1
) -> Numeric:
    in_min, in_max = (
        _bound(inputMin, "linear_scale_range", "inputMin"),
        _bound(inputMax, "linear_scale_range", "inputMax"),
    )
    out_min = _bound(outputMin, "linear_scale_range", "outputMin")
    out_max = _bound(outputMax, "linear_scale_range", "outputMax")
    # The input range may be given in either direction; x is clipped to it before scaling.
    low, high = (in_min, in_max) if in_min <= in_max else (in_max, in_min)

    def scale(v: Any) -> Any:
        return ((_clip(v, low, high) - in_min) / (in_max - in_min)) * (out_max - out_min) + out_min

    return _unary("linear_scale_range", x, scale)


# --- trigonometry --------------------------------------------------------------------------------
def cos(x: Numeric) -> Numeric:
    return _unary("cos", x, np.cos)


def sin(x: Numeric) -> Numeric:
    return _unary("sin", x, np.sin)


def tan(x: Numeric) -> Numeric:
    return _unary("tan", x, np.tan)


def arccos(x: Numeric) -> Numeric:
    return _unary("arccos", x, np.arccos)


def arcsin(x: Numeric) -> Numeric:
    return _unary("arcsin", x, np.arcsin)


def arctan(x: Numeric) -> Numeric:
    return _unary("arctan", x, np.arctan)


def arctan2(y: Numeric, x: Numeric) -> Numeric:
    return _binary("arctan2", {"y": y, "x": x}, np.arctan2)


def cosh(x: Numeric) -> Numeric:
    return _unary("cosh", x, np.cosh)


def sinh(x: Numeric) -> Numeric:
    return _unary("sinh", x, np.sinh)


def tanh(x: Numeric) -> Numeric:
    return _unary("tanh", x, np.tanh)


def arcosh(x: Numeric) -> Numeric:
    return _unary("arcosh", x, np.arccosh)


def arsinh(x: Numeric) -> Numeric:
    return _unary("arsinh", x, np.arcsinh)


def artanh(x: Numeric) -> Numeric:
    return _unary("artanh", x, np.arctanh)


# --- constants -----------------------------------------------------------------------------------
def e() -> float:
    # math.e, the same constant as np.e: mypy takes ``np.e`` for deleted, since dask.array imports
    # numpy's ``e`` and then ends an ``except ... as e`` block, which deletes that name.
    return math.e


def pi() -> float:
    return float(np.pi)


def nan() -> float:
    return float("nan")


def constant(x: Any) -> Any:
    return x


PROCESSES = {
    "add": add,
    "subtract": subtract,
    "multiply": multiply,
    "divide": divide,
    "power": power,
    "mod": mod,
    "absolute": absolute,
    "sgn": sgn,
    "sqrt": sqrt,
    "exp": exp,
    "ln": ln,
    "log": log,
    "normalized_difference": normalized_difference,
    "floor": floor,
    "ceil": ceil,
    "int": integer_part,
    "round": round_value,
    "clip": clip,
    "linear_scale_range": linear_scale_range,
    "cos": cos,
    "sin": sin,
    "tan": tan,
    "arccos": arccos,
    "arcsin": arcsin,
    "arctan": arctan,
    "arctan2": arctan2,
    "cosh": cosh,
    "sinh": sinh,
    "tanh": tanh,
    "arcosh": arcosh,
    "arsinh": arsinh,
    "artanh": artanh,
    "e": e,
    "pi": pi,
    "nan": nan,
    "constant": constant,
}
