"""Temporal arguments: intervals and instants as openEO writes them.

openEO temporal intervals are left-closed ``[start, end)``; either end may be ``null`` (open).
Dates (``2023-01-05``) mean midnight UTC; date-times without a zone are taken as UTC.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from processes.core.errors import parameter_invalid, process_error


def parse_instant(value: Any, process: str, parameter: str) -> pd.Timestamp:
    """A date or date-time string as a UTC-naive ``pandas.Timestamp``."""
    if not isinstance(value, str):
        raise parameter_invalid(process, parameter, f"expected a date or date-time string, got {value!r}.")
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise parameter_invalid(
            process, parameter, f"'{value}' is not an RFC 3339 date (2023-01-31) or date-time (2023-01-31T10:00:00Z)."
        ) from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def parse_interval(extent: Any, process: str, parameter: str) -> tuple[str | None, str | None] | None:
    """A temporal interval as two ISO strings (UTC, ``Z``) or None ends; None for no filter."""
    if extent is None:
        return None
    if not isinstance(extent, (list, tuple)) or len(extent) != 2:
        raise parameter_invalid(process, parameter, "expected a list of two dates [start, end] (either may be null).")
    start, end = extent
    if start is None and end is None:
        raise parameter_invalid(process, parameter, "at least one of start and end must be given.")
    start_ts = parse_instant(start, process, parameter) if start is not None else None
    end_ts = parse_instant(end, process, parameter) if end is not None else None
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise process_error(
            "TemporalExtentEmpty",
            f"The temporal extent [{start}, {end}) of '{process}' is empty: the end must be later than the start "
            "(the end is excluded).",
        )
    return (
        start_ts.strftime("%Y-%m-%dT%H:%M:%SZ") if start_ts is not None else None,
        end_ts.strftime("%Y-%m-%dT%H:%M:%SZ") if end_ts is not None else None,
    )
