"""Text processes: searching in strings and joining values into one string.

These work on plain values only (a raster cube holds numbers, not text); a cube passed where text is
expected is refused with a message saying so. No-data (``null``) in ``data`` gives ``null``.

Case-insensitive matching uses Unicode simple case folding (``re.IGNORECASE``), the same rule for
every process here, so ``text_contains`` is true exactly when ``text_find`` finds a position, and
``text_find`` positions count characters (code points) of the original text.

``text_concat`` writes numbers the way JSON and JavaScript do (``1`` not ``1.0``, ``1e-7`` not
``1e-07``, ``NaN``, ``Infinity``), booleans and null in lower case.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import numpy as np
import xarray as xr

from processes.core.errors import parameter_invalid
from processes.model.values import is_number, to_python


def _text(value: Any, process: str, parameter: str) -> str | None:
    """A string argument (or None for null); cubes and other types are invalid."""
    if isinstance(value, np.generic):
        value = to_python(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, xr.DataArray):
        raise parameter_invalid(
            process,
            parameter,
            "expected a text (string), got a data cube. Text processes work on single strings, e.g. labels "
            "or parameters, not on the pixel values of a cube.",
        )
    raise parameter_invalid(
        process, parameter, f"expected a text (string), got {type(value).__name__} {value!r}."
    )


def _flag(value: Any, process: str, parameter: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise parameter_invalid(process, parameter, f"expected true or false, got {value!r}.")
    return bool(value)


def _search(
    process: str,
    data: Any,
    pattern: Any,
    case_sensitive: Any,
    *,
    anchor_start: bool = False,
    anchor_end: bool = False,
) -> re.Match[str] | None | bool:
    """The first match of ``pattern`` (literally) in ``data``; ``False`` if ``data`` is null."""
    text = _text(data, process, "data")
    needle = _text(pattern, process, "pattern")
    if needle is None:
        raise parameter_invalid(process, "pattern", "expected a text (string) to search for, got null.")
    flags = 0 if _flag(case_sensitive, process, "case_sensitive") else re.IGNORECASE
    if text is None:
        return False
    expression = ("^" if anchor_start else "") + re.escape(needle) + (r"\Z" if anchor_end else "")
    return re.search(expression, text, flags)


def text_begins(data: str | None, pattern: str, case_sensitive: bool = True) -> bool | None:
    """Whether ``data`` starts with ``pattern``; null for null."""
    match = _search("text_begins", data, pattern, case_sensitive, anchor_start=True)
    return None if match is False else match is not None


def text_ends(data: str | None, pattern: str, case_sensitive: bool = True) -> bool | None:
    """Whether ``data`` ends with ``pattern``; null for null."""
    match = _search("text_ends", data, pattern, case_sensitive, anchor_end=True)
    return None if match is False else match is not None


def text_contains(data: str | None, pattern: str, case_sensitive: bool = True) -> bool | None:
    """Whether ``pattern`` occurs anywhere in ``data``; null for null."""
    match = _search("text_contains", data, pattern, case_sensitive)
    return None if match is False else match is not None


def text_find(data: str | None, pattern: str, case_sensitive: bool = True) -> int | None:
    """The zero-based position of the first ``pattern`` in ``data``; null if not found or ``data`` is null."""
    match = _search("text_find", data, pattern, case_sensitive)
    return match.start() if isinstance(match, re.Match) else None


# --- text_concat ------------------------------------------------------------------------------------
def _number_text(number: int | float) -> str:
    """A number as JavaScript's ``Number.prototype.toString`` writes it (the shortest exact digits)."""
    if isinstance(number, int):
        return str(number)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(number)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = int(exponent) + k  # the decimal point sits after the first n digits
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        text = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return ("-" if sign else "") + text


def _element_text(value: Any, parameter: str) -> str:
    if isinstance(value, np.generic):
        value = to_python(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if is_number(value):
        return _number_text(value)
    what = "a data cube" if isinstance(value, xr.DataArray) else f"{type(value).__name__} {value!r}"
    raise parameter_invalid(
        "text_concat", parameter, f"expected strings, numbers, booleans or null, got {what}."
    )


def text_concat(data: list[Any], separator: Any = "") -> str:
    """The text of every element of ``data``, in order, with ``separator`` between them."""
    if isinstance(data, np.ndarray):
        data = data.tolist()
    if not isinstance(data, (list, tuple)):
        what = "a data cube" if isinstance(data, xr.DataArray) else type(data).__name__
        raise parameter_invalid("text_concat", "data", f"expected an array of values, got {what}.")
    return _element_text(separator, "separator").join(_element_text(v, "data") for v in data)


PROCESSES = {
    "text_begins": text_begins,
    "text_concat": text_concat,
    "text_contains": text_contains,
    "text_ends": text_ends,
    "text_find": text_find,
}
