"""Date and time processes: shifting instants, their differences, and range checks.

Dates and date-times are RFC 3339 strings in and out. A date (``2020-01-31``) means midnight UTC and
``date_shift`` gives a date back; a date-time keeps the time zone offset it was written with
(``2021-03-31T00:00:00+02:00`` stays ``+02:00``), one without an offset is taken as UTC. Leap
seconds (``23:59:60``) are accepted and count as ``23:59:59``, so they are never returned. Written
milliseconds appear in a result only when they are not zero.

Calendar units (day, week, month, year) change the date and never the time of day, on the clock of
the given offset; a day that doesn't exist in the target month becomes that month's last day
(``2020-01-31`` plus one month is ``2020-02-29``). Months between two instants count whole calendar
months from ``date1`` plus the elapsed fraction of the next month (so shifting by n months and
measuring gives n back); years are months / 12.

Inside callbacks these processes also take cubes of ``datetime64`` values (UTC, NaT as no-data):
``date_shift`` returns such a cube, ``date_difference`` a float cube and ``date_between`` a float
cube of 1/0 with NaN where the date is missing (logic's encoding of nullable booleans). Cubes of
text are not supported.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from processes.core.errors import parameter_invalid
from processes.model.values import to_python

UNITS = ("millisecond", "second", "minute", "hour", "day", "week", "month", "year")
_FIXED_UNITS = {  # units of a fixed length, in microseconds
    "millisecond": 1_000,
    "second": 1_000_000,
    "minute": 60_000_000,
    "hour": 3_600_000_000,
    "day": 86_400_000_000,
    "week": 604_800_000_000,
}
_DATE_TIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?)?"
)
_TIME = re.compile(r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?P<fraction>\.\d+)?[Zz]?")


@dataclass(frozen=True)
class Instant:
    """A parsed date or date-time, remembering how to write it back."""

    moment: datetime
    """The instant, time zone aware, on the clock of the offset it was given in (UTC for dates)."""
    has_time: bool
    """False for a date only (``2020-01-31``), which is written back as a date."""
    zone: str
    """The offset as written back: ``Z`` or ``±HH:MM``."""

    def text(self) -> str:
        """The instant as RFC 3339: a date, or a date-time with its offset and non-zero fraction."""
        day = self.moment
        text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
        if not self.has_time:
            return text
        text += f"T{day.hour:02d}:{day.minute:02d}:{day.second:02d}"
        if day.microsecond:
            text += (
                f".{day.microsecond // 1000:03d}"
                if day.microsecond % 1000 == 0
                else f".{day.microsecond:06d}"
            )
        return text + self.zone

    @property
    def utc(self) -> datetime:
        return self.moment.astimezone(UTC)


def _invalid_date(process: str, parameter: str, value: Any, reason: str = "") -> Exception:
    return parameter_invalid(
        process,
        parameter,
        f"{value!r} is not an RFC 3339 date (2020-01-31) or date-time (2020-01-31T10:00:00Z, with "
        f"Z or an offset like +02:00){reason}.",
    )


def parse_instant(value: Any, process: str, parameter: str) -> Instant:
    """A date or date-time argument as an :class:`Instant`; numpy and pandas datetimes are UTC."""
    if isinstance(value, (np.datetime64, pd.Timestamp)):
        value = to_python(value)
    elif isinstance(value, datetime):
        value = value.isoformat() if value.tzinfo else value.isoformat() + "Z"
    if not isinstance(value, str):
        raise _invalid_date(process, parameter, value)
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise _invalid_date(process, parameter, value)
    fields = {
        k: int(v) for k, v in match.groupdict().items() if v is not None and k not in ("fraction", "zone")
    }
    fraction, zone = match["fraction"], match["zone"]
    has_time = match["hour"] is not None
    # A leap second counts as the last regular second of its minute.
    if fields.get("second") == 60:
        fields["second"] = 59
    microsecond = int(fraction[1:7].ljust(6, "0")) if fraction else 0
    try:
        if zone is None or zone in "Zz":
            tz, written_zone = UTC, "Z"
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
            written_zone = zone
        moment = datetime(**fields, microsecond=microsecond, tzinfo=tz)
    except ValueError as err:
        raise _invalid_date(process, parameter, value, f" ({err})") from None
    return Instant(moment, has_time, written_zone)


def _integer(value: Any, process: str, parameter: str) -> int:
    if isinstance(value, np.generic):
        value = to_python(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise parameter_invalid(process, parameter, f"expected an integer, got {value!r}.")
    return value


def _unit(value: Any, process: str) -> str:
    if value not in UNITS:
        raise parameter_invalid(process, "unit", f"{value!r} is not a unit; use one of {', '.join(UNITS)}.")
    return value


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _out_of_range(process: str) -> Exception:
    return parameter_invalid(process, "value", "the resulting date is outside the years 0001 to 9999.")


# --- calendar arithmetic on plain values -----------------------------------------------------------
def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` shifted by calendar months, the day clamped to the target month's last day."""
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("year out of range")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _microseconds(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def month_difference(start: datetime, end: datetime) -> float:
    """Calendar months from ``start`` to ``end``: whole months plus the fraction of the next one."""
    months = (end.year - start.year) * 12 + end.month - start.month
    anchor = add_months(start, months)
    step = -1 if end < anchor else 1
    try:
        month_length = abs(add_months(start, months + step) - anchor)
    except OverflowError:  # past the ends of the calendar (December 9999, January 1), months of 31 days
        month_length = timedelta(days=31)
    return months + _microseconds(end - anchor) / _microseconds(month_length)


# --- cubes of datetime64 ---------------------------------------------------------------------------
def _datetime_cube(value: xr.DataArray, process: str, parameter: str) -> xr.DataArray:
    if value.dtype.kind != "M":
        raise parameter_invalid(
            process,
            parameter,
            f"expected dates, got a data cube of {value.dtype} values. Only cubes of datetime64 values can be "
            "used as dates.",
        )
    return value


def _datetime64(value: Any, process: str, parameter: str) -> np.datetime64:
    """A plain date argument as a UTC ``datetime64[ns]``, to combine with cubes."""
    return np.datetime64(parse_instant(value, process, parameter).utc.replace(tzinfo=None), "ns")


def _add_months_numpy(times: np.ndarray, months: Any) -> np.ndarray:
    """Vectorised :func:`add_months` on ``datetime64`` values (NaT stays NaT)."""
    month_start = times.astype("datetime64[M]")
    offset = times - month_start.astype(times.dtype)
    days = offset.astype("timedelta64[D]")
    time_of_day = offset - days.astype(offset.dtype)
    target = month_start + np.asarray(months).astype("timedelta64[M]")
    month_days = (target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")
    days = np.minimum(days, month_days - np.timedelta64(1, "D"))
    return (target.astype("datetime64[D]") + days).astype(times.dtype) + time_of_day


def _month_difference_numpy(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Vectorised :func:`month_difference`; NaN where either date is NaT."""
    start, end = np.broadcast_arrays(np.asarray(start, "datetime64[ns]"), np.asarray(end, "datetime64[ns]"))
    missing = np.isnat(start) | np.isnat(end)
    start = np.where(missing, np.datetime64(0, "ns"), start)
    end = np.where(missing, np.datetime64(0, "ns"), end)
    months = (end.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int64)
    anchor = _add_months_numpy(start, months)
    neighbour = _add_months_numpy(start, np.where(end < anchor, months - 1, months + 1))
    span = np.abs((neighbour - anchor).astype(np.int64))
    result = months + (end - anchor).astype(np.int64) / span
    return np.where(missing, np.nan, result)


def _shift_cube(date: xr.DataArray, value: int, unit: str) -> xr.DataArray:
    if unit in _FIXED_UNITS:
        return date + np.timedelta64(value * _FIXED_UNITS[unit], "us")
    months = value * (12 if unit == "year" else 1)
    return xr.apply_ufunc(
        _add_months_numpy,
        date,
        kwargs={"months": months},
        dask="parallelized",
        output_dtypes=[date.dtype],
        keep_attrs=True,
    )


def _difference_cube(date1: Any, date2: Any, unit: str) -> xr.DataArray:
    if unit in _FIXED_UNITS:
        return (date2 - date1) / np.timedelta64(_FIXED_UNITS[unit], "us")
    months = xr.apply_ufunc(_month_difference_numpy, date1, date2, dask="parallelized", output_dtypes=[float])
    return months / 12 if unit == "year" else months


# --- the processes ---------------------------------------------------------------------------------
def date_shift(date: Any, value: int, unit: str) -> Any:
    """``date`` plus ``value`` ``unit``s; a date stays a date, a date-time keeps its offset."""
    value, unit = _integer(value, "date_shift", "value"), _unit(unit, "date_shift")
    if isinstance(date, xr.DataArray):
        return _shift_cube(_datetime_cube(date, "date_shift", "date"), value, unit)
    if date is None:
        return None
    instant = parse_instant(date, "date_shift", "date")
    try:
        if unit in ("month", "year"):
            moment = add_months(instant.moment, value * (12 if unit == "year" else 1))
        else:  # on a fixed offset, adding days keeps the time of day
            moment = instant.moment + timedelta(microseconds=value * _FIXED_UNITS[unit])
    except OverflowError:
        raise _out_of_range("date_shift") from None
    return replace(instant, moment=moment).text()


def date_difference(date1: Any, date2: Any, unit: str = "second") -> Any:
    """``date2`` minus ``date1`` in ``unit``, with a fraction where needed (positive if ``date2`` is later)."""
    unit = _unit(unit, "date_difference")
    if isinstance(date1, xr.DataArray) or isinstance(date2, xr.DataArray):
        first, second = [
            _datetime_cube(d, "date_difference", name)
            if isinstance(d, xr.DataArray)
            else _datetime64(d, "date_difference", name)
            for name, d in (("date1", date1), ("date2", date2))
        ]
        return _difference_cube(first, second, unit)
    if date1 is None or date2 is None:
        return None
    start = parse_instant(date1, "date_difference", "date1").utc
    end = parse_instant(date2, "date_difference", "date2").utc
    if unit in _FIXED_UNITS:
        return _plain_number(_microseconds(end - start) / _FIXED_UNITS[unit])
    months = month_difference(start, end)
    return _plain_number(months / 12 if unit == "year" else months)


@dataclass(frozen=True)
class _Bound:
    """A value of ``date_between``: an instant, or a time of day (``HH:MM:SS``, UTC) as a timedelta."""

    instant: datetime | None
    time_of_day: timedelta | None


def _between_value(value: Any, process: str, parameter: str) -> _Bound:
    if isinstance(value, str):
        match = _TIME.fullmatch(value.strip())
        if match is not None:
            hour, minute, second = (int(match[k]) for k in ("hour", "minute", "second"))
            if hour > 23 or minute > 59 or second > 60:
                raise parameter_invalid(
                    process, parameter, f"{value!r} is not a valid time of day (HH:MM:SS)."
                )
            fraction = match["fraction"]
            microseconds = int(fraction[1:7].ljust(6, "0")) if fraction else 0
            clock = timedelta(hours=hour, minutes=minute, seconds=min(second, 59), microseconds=microseconds)
            return _Bound(None, clock)
    return _Bound(parse_instant(value, process, parameter).utc, None)


def _position(x: _Bound, bound: _Bound, parameter: str) -> tuple[Any, Any]:
    """``x`` and ``bound`` as comparable values: instants, or times of day if the bound is a time."""
    if bound.time_of_day is not None:
        if x.time_of_day is not None:
            return x.time_of_day, bound.time_of_day
        assert x.instant is not None
        midnight = x.instant.replace(hour=0, minute=0, second=0, microsecond=0)
        return x.instant - midnight, bound.time_of_day
    if x.instant is None:
        raise parameter_invalid(
            "date_between",
            parameter,
            "x is a time of day (HH:MM:SS) without a date, so its bounds must be times of day too.",
        )
    return x.instant, bound.instant


def _between_cube(x: xr.DataArray, low: _Bound, high: _Bound, exclude_max: bool) -> xr.DataArray:
    def side(bound: _Bound) -> tuple[Any, Any]:
        if bound.time_of_day is not None:
            return x - x.dt.floor("D"), np.timedelta64(_microseconds(bound.time_of_day), "us")
        assert bound.instant is not None
        return x, np.datetime64(bound.instant.replace(tzinfo=None), "ns")

    (x_low, low_value), (x_high, high_value) = side(low), side(high)
    inside = (x_low >= low_value) & ((x_high < high_value) if exclude_max else (x_high <= high_value))
    return inside.where(x.notnull())


def date_between(x: Any, min: Any, max: Any, exclude_max: bool = False) -> Any:
    """Whether ``x`` is within ``[min, max]`` (``[min, max)`` with ``exclude_max``); null for null.

    Dates, date-times and times of day (``HH:MM:SS``, UTC) can be mixed: a bound that is a time of
    day is compared with the time of day of ``x``.
    """
    if not isinstance(exclude_max, (bool, np.bool_)):
        raise parameter_invalid(
            "date_between", "exclude_max", f"expected true or false, got {exclude_max!r}."
        )
    low, high = _between_value(min, "date_between", "min"), _between_value(max, "date_between", "max")
    if isinstance(x, xr.DataArray):
        return _between_cube(_datetime_cube(x, "date_between", "x"), low, high, bool(exclude_max))
    if x is None:
        return None
    value = _between_value(x, "date_between", "x")
    x_low, low_value = _position(value, low, "min")
    x_high, high_value = _position(value, high, "max")
    return bool(x_low >= low_value and (x_high < high_value if exclude_max else x_high <= high_value))


PROCESSES = {
    "date_between": date_between,
    "date_difference": date_difference,
    "date_shift": date_shift,
}
