"""Temporal aggregation: reduce groups of dates of a cube's temporal dimension.

``aggregate_temporal`` (groups given as intervals), ``aggregate_temporal_period`` (calendar periods:
hours … decades), ``climatological_normal`` (the mean per day/month/season of the year over a
climatology period) and ``anomaly`` (data minus the normal of its period).

Strategy: every process first turns the dates into *groups* (arrays of indices along the temporal
dimension; intervals may overlap, periods may be empty), then :func:`aggregate_groups` reduces them
all lazily. Groups of equal length are reduced together: their dates are gathered into one
``(group, ARRAY_DIM)`` block and the reducer callback runs once over it, vectorised like in
``reduce_dimension``. A monthly composite of daily data thus calls the reducer three or four times
(months of 28–31 days), not once per month or per pixel, and no padding changes what a reducer such
as ``count`` or ``sum(ignore_nodata=false)`` sees. An empty group is reduced as an array of one
no-data value (the reducers' result for "no data": null, or 0 for ``count``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from processes.core.errors import (
    DimensionNotAvailable,
    NoDataAvailable,
    TooManyDimensions,
    parameter_invalid,
    process_error,
)
from processes.model.intervals import parse_instant
from processes.model.raster_cube import (
    ARRAY_DIM,
    copy_dimension_types,
    describe_dimensions,
    dimension_type,
    dims_of_type,
    is_raster_cube,
    typed_coord,
)

GROUP_DIM = "__group__"
_TIME_OF_DAY = re.compile(r"^(\d{2}):(\d{2}):(\d{2})$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


# --- the temporal dimension -----------------------------------------------------------------------


def _require_cube(value: Any, process: str) -> xr.DataArray:
    if not is_raster_cube(value):
        raise parameter_invalid(process, "data", f"expected a data cube, got {type(value).__name__}.")
    return value


def temporal_dimension(cube: xr.DataArray, dimension: Any, process: str) -> str:
    """The temporal dimension to aggregate: ``dimension``, or the cube's only temporal one."""
    if dimension is None:
        temporal = dims_of_type(cube, "temporal")
        if not temporal:
            raise DimensionNotAvailable(
                f"'{process}' needs a temporal dimension; the cube has {describe_dimensions(cube) or 'none'}."
            )
        if len(temporal) > 1:
            raise TooManyDimensions(
                f"The data cube has several temporal dimensions ({', '.join(temporal)}): name the one to "
                f"aggregate in the parameter `dimension` of '{process}'."
            )
        return temporal[0]
    if dimension not in cube.dims or dimension_type(cube, dimension) != "temporal":
        raise DimensionNotAvailable(
            f"'{process}': the data cube has no temporal dimension named '{dimension}'; its dimensions are "
            f"{describe_dimensions(cube)}."
        )
    return str(dimension)


def timestamps(cube: xr.DataArray, dim: str, process: str) -> pd.DatetimeIndex:
    """The labels of ``dim`` as UTC-naive instants."""
    values = cube[dim].values
    try:
        text = values.dtype.kind in "OU"
        stamps = pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601" if text else None))
    except (ValueError, TypeError):
        raise parameter_invalid(
            process,
            "data",
            f"the labels of temporal dimension '{dim}' are not all dates or date-times (e.g. {values[:3].tolist()}); "
            "period labels such as '2023-06' can't be aggregated again.",
        ) from None
    return stamps.tz_localize(None)


def label_coord(labels: Sequence[Any], dim: str) -> xr.DataArray:
    """A temporal coordinate: date-times as instants, other labels (periods, dates) as given."""
    if labels and all(isinstance(v, str) and _DATETIME.match(v) for v in labels):
        values: Any = pd.to_datetime(list(labels), utc=True, format="ISO8601").tz_localize(None)
    elif len({type(v) for v in labels}) > 1:
        values = np.array(list(labels), dtype=object)
    else:
        values = list(labels)
    return typed_coord(values, dim, "temporal")


# --- the grouping engine --------------------------------------------------------------------------


def aggregate_groups(
    cube: xr.DataArray,
    dim: str,
    groups: Sequence[np.ndarray],
    labels: xr.DataArray,
    reducer: Callable[..., Any],
    context: Any,
    process: str,
) -> xr.DataArray:
    """Reduce each group of indices along ``dim`` with ``reducer``; the groups become the new ``dim``.

    The reducer sees a cube with ``ARRAY_DIM`` (the dates of a group) and ``GROUP_DIM`` (the groups
    of that length); a batch of one group keeps the dates as labels of ``ARRAY_DIM``.
    """
    crs = cube.rio.crs
    along = [name for name, coord in cube.coords.items() if dim in coord.dims and name != dim]
    source = cube.drop_vars(along)
    by_length: dict[int, list[int]] = defaultdict(list)
    for number, indices in enumerate(groups):
        by_length[len(indices)].append(number)
    parts, order = [], []
    for length, members in sorted(by_length.items()):
        if length == 0:
            batch = _no_data_array(source, dim).expand_dims({GROUP_DIM: len(members)})
        else:
            flat = np.concatenate([groups[m] for m in members])
            batch = source.isel({dim: flat}).drop_vars(dim)
            batch = batch.coarsen({dim: length}).construct({dim: (GROUP_DIM, ARRAY_DIM)})
            if len(members) == 1:
                batch = batch.assign_coords({ARRAY_DIM: cube[dim].values[groups[members[0]]]})
        like = batch.isel({ARRAY_DIM: 0}, drop=True)
        parts.append(_reduced(reducer(data=batch, context=context), like, process))
        order.extend(members)
    result = parts[0] if len(parts) == 1 else xr.concat(parts, dim=GROUP_DIM, coords="minimal", compat="override")
    if order != sorted(order):
        result = result.isel({GROUP_DIM: np.argsort(order)})
    result = result.rename({GROUP_DIM: dim}).assign_coords({dim: labels})
    result = copy_dimension_types(cube, result.transpose(*cube.dims))
    if crs is not None:
        result = result.rio.write_crs(crs)
    result.attrs = dict(cube.attrs)
    result.name = cube.name
    return result


def _no_data_array(cube: xr.DataArray, dim: str) -> xr.DataArray:
    """A one-element no-data array along ``ARRAY_DIM``: what an empty group is reduced as."""
    float_type = np.result_type(cube.dtype, np.float32) if cube.dtype.kind in "iufc" else np.float64
    if cube.sizes[dim]:
        nodata = xr.full_like(cube.isel({dim: 0}, drop=True), np.nan, dtype=float_type)
    else:  # a cube without dates: no element to take the shape and chunks from
        rest = [d for d in cube.dims if d != dim]
        shape = tuple(cube.sizes[d] for d in rest)
        values = da.full(shape, np.nan, dtype=float_type) if cube.chunks is not None else np.full(shape, np.nan)
        nodata = xr.DataArray(values, dims=rest, coords={d: cube[d] for d in rest if d in cube.coords})
    return nodata.expand_dims({ARRAY_DIM: 1})


def _reduced(result: Any, like: xr.DataArray, process: str) -> xr.DataArray:
    """A reducer's result as one value per group and pixel (shaped like ``like``)."""
    if isinstance(result, xr.DataArray):
        if ARRAY_DIM in result.dims:
            if result.sizes[ARRAY_DIM] != 1:
                raise parameter_invalid(
                    process,
                    "reducer",
                    "the reducer must return a single value per group of dates (use a reducer such as mean, max, "
                    "first), but it returned an array.",
                )
            result = result.isel({ARRAY_DIM: 0}, drop=True)
        if ARRAY_DIM in result.coords:
            result = result.drop_vars(ARRAY_DIM)
        extra = [d for d in result.dims if d not in like.dims]
        if extra:
            raise parameter_invalid(process, "reducer", f"the reducer returned unexpected dimensions {extra}.")
        if set(result.dims) != set(like.dims):
            result = result.broadcast_like(like)
        return result.transpose(*like.dims)
    if result is None or isinstance(result, (bool, int, float, np.number)):
        fill = np.nan if result is None else result
        return xr.full_like(like, fill, dtype=np.asarray(fill).dtype)
    raise parameter_invalid(process, "reducer", f"the reducer returned {type(result).__name__}, not a value.")


def _groups_by_key(keys: np.ndarray, wanted: np.ndarray) -> list[np.ndarray]:
    """For each key in ``wanted`` the indices (in order) whose key it is."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.searchsorted(sorted_keys, wanted, side="left")
    ends = np.searchsorted(sorted_keys, wanted, side="right")
    return [order[s:e] for s, e in zip(starts, ends, strict=True)]


# --- aggregate_temporal ---------------------------------------------------------------------------


def aggregate_temporal(
    data: Any, intervals: Any, reducer: Any, labels: Any = None, dimension: Any = None, context: Any = None
) -> xr.DataArray:
    cube = _require_cube(data, "aggregate_temporal")
    dim = temporal_dimension(cube, dimension, "aggregate_temporal")
    if not isinstance(intervals, list) or not intervals:
        raise parameter_invalid("aggregate_temporal", "intervals", "expected a non-empty list of [start, end] pairs.")
    stamps = timestamps(cube, dim, "aggregate_temporal")
    groups = [np.flatnonzero(_in_interval(stamps, interval)) for interval in intervals]
    names = _interval_labels(intervals, labels)
    return aggregate_groups(cube, dim, groups, label_coord(names, dim), reducer, context, "aggregate_temporal")


def _in_interval(stamps: pd.DatetimeIndex, interval: Any) -> np.ndarray:
    """Which instants lie in a left-closed interval of date(-time)s or of times of day."""
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        raise parameter_invalid(
            "aggregate_temporal", "intervals", f"each interval must be [start, end], got {interval!r}."
        )
    start, end = interval
    clock = [v for v in interval if isinstance(v, str) and _TIME_OF_DAY.match(v)]
    if clock:
        if len(clock) + sum(v is None for v in interval) != 2:
            raise parameter_invalid(
                "aggregate_temporal", "intervals", f"{interval!r} mixes a time of day with a date; use one kind."
            )
        seconds = (stamps - stamps.normalize()).total_seconds().to_numpy()
        low = _seconds_of_day(start) if start is not None else 0.0
        high = _seconds_of_day(end) if end is not None else 86400.0
        if low < high:
            return (seconds >= low) & (seconds < high)
        return (seconds >= low) | (seconds < high)  # e.g. 18:00:00 to 06:00:00: across midnight
    low_ts = parse_instant(start, "aggregate_temporal", "intervals") if start is not None else None
    high_ts = parse_instant(end, "aggregate_temporal", "intervals") if end is not None else None
    if low_ts is not None and high_ts is not None and high_ts <= low_ts:
        raise process_error(
            "TemporalExtentEmpty",
            f"The interval [{start}, {end}) of 'aggregate_temporal' is empty: the end must be later than the start "
            "(the end is excluded).",
        )
    keep = np.ones(len(stamps), dtype=bool)
    if low_ts is not None:
        keep &= stamps >= low_ts
    if high_ts is not None:
        keep &= stamps < high_ts
    return keep


def _seconds_of_day(value: str) -> float:
    hours, minutes, seconds = (int(part) for part in _TIME_OF_DAY.match(value).groups())  # type: ignore[union-attr]
    if hours > 23 or minutes > 59 or seconds > 60:
        raise parameter_invalid("aggregate_temporal", "intervals", f"'{value}' is not a valid time of day.")
    return hours * 3600.0 + minutes * 60.0 + seconds


def _interval_labels(intervals: list[Any], labels: Any) -> list[Any]:
    if labels:
        if not isinstance(labels, list):
            raise parameter_invalid("aggregate_temporal", "labels", "expected a list of labels.")
        if len(labels) != len(intervals):
            raise parameter_invalid(
                "aggregate_temporal",
                "labels",
                f"there are {len(labels)} labels for {len(intervals)} intervals; give one label per interval.",
            )
        names = list(labels)
    else:
        names = [interval[0] for interval in intervals]
        if any(name is None for name in names):
            raise parameter_invalid(
                "aggregate_temporal",
                "labels",
                "an interval without start has no default label (the start); give `labels` for the intervals.",
            )
    if len(set(map(str, names))) != len(names):
        duplicates = sorted({str(n) for n in names if list(map(str, names)).count(str(n)) > 1})
        raise process_error(
            "DistinctDimensionLabelsRequired",
            f"The labels of the intervals are not distinct ({', '.join(duplicates)} occur more than once): "
            "give distinct labels in the parameter `labels`.",
        )
    return names


# --- calendar periods -----------------------------------------------------------------------------

_SEASONS = ("mam", "jja", "son", "djf")  # in the order of a year's seasons labelled with that year
_TROPICAL_SEASONS = ("mjjaso", "ndjfma")
_EPOCH = pd.Timestamp("1970-01-01")


def period_keys(stamps: pd.DatetimeIndex, period: str) -> tuple[np.ndarray, Callable[[int], str]]:
    """An integer per instant, consecutive for consecutive periods, and the label of a key."""
    year = stamps.year.to_numpy().astype(np.int64)
    month = stamps.month.to_numpy().astype(np.int64)
    if period == "hour":
        keys = (stamps.floor("h") - _EPOCH) // pd.Timedelta(hours=1)
        return np.asarray(keys, dtype=np.int64), lambda k: (_EPOCH + pd.Timedelta(hours=k)).strftime("%Y-%m-%d-%H")
    if period == "day":
        keys = (stamps.normalize() - _EPOCH).days
        return np.asarray(keys, dtype=np.int64), _day_label
    if period == "week":  # ISO weeks start on Mondays; 1970-01-01 was a Thursday
        keys = ((stamps.normalize() - _EPOCH).days.to_numpy() + 3) // 7
        return np.asarray(keys, dtype=np.int64), _week_label
    if period == "dekad":
        day = stamps.day.to_numpy()
        keys = year * 36 + (month - 1) * 3 + np.minimum((day - 1) // 10, 2)
        return keys, lambda k: f"{k // 36:04d}-{k % 36 + 1:02d}"
    if period == "month":
        return year * 12 + month - 1, lambda k: f"{k // 12:04d}-{k % 12 + 1:02d}"
    if period == "season":  # December belongs to the winter of its year: 2023-12 and 2024-02 are 2023-djf
        season_year = np.where(month <= 2, year - 1, year)
        index = np.where(month <= 2, 3, (month - 3) // 3)
        return season_year * 4 + index, lambda k: f"{k // 4:04d}-{_SEASONS[k % 4]}"
    if period == "tropical-season":  # November to April belongs to the year of its November
        season_year = np.where(month <= 4, year - 1, year)
        index = np.where((month >= 5) & (month <= 10), 0, 1)
        return season_year * 2 + index, lambda k: f"{k // 2:04d}-{_TROPICAL_SEASONS[k % 2]}"
    if period == "year":
        return year, lambda k: f"{k:04d}"
    if period == "decade":
        return year // 10, lambda k: f"{k * 10:04d}"
    if period == "decade-ad":
        return (year - 1) // 10, lambda k: f"{k * 10 + 1:04d}"
    raise parameter_invalid(
        "aggregate_temporal_period",
        "period",
        f"'{period}' is not a period; use hour, day, week, dekad, month, season, tropical-season, year, decade or "
        "decade-ad.",
    )


def _day_label(key: int) -> str:
    day = _EPOCH + pd.Timedelta(days=key)
    return f"{day.year:04d}-{day.dayofyear:03d}"


def _week_label(key: int) -> str:
    monday = _EPOCH + pd.Timedelta(days=key * 7 - 3)
    iso = monday.isocalendar()
    return f"{iso[0]:04d}-{iso[1]:02d}"


def aggregate_temporal_period(
    data: Any, period: Any, reducer: Any, dimension: Any = None, context: Any = None
) -> xr.DataArray:
    cube = _require_cube(data, "aggregate_temporal_period")
    dim = temporal_dimension(cube, dimension, "aggregate_temporal_period")
    stamps = timestamps(cube, dim, "aggregate_temporal_period")
    keys, label = period_keys(stamps, period)
    # the labels cover the whole extent: periods without dates in between are reduced as no-data
    wanted = np.arange(keys.min(), keys.max() + 1) if len(keys) else np.array([], dtype=np.int64)
    groups = _groups_by_key(keys, wanted)
    labels = label_coord([label(int(k)) for k in wanted], dim)
    return aggregate_groups(cube, dim, groups, labels, reducer, context, "aggregate_temporal_period")


# --- climatological_normal, anomaly ---------------------------------------------------------------

_NORMAL_PERIODS = ("day", "month", "season", "tropical-season", "climatology-period")


def _mean(data: xr.DataArray, context: Any = None) -> xr.DataArray:
    return data.mean(ARRAY_DIM, skipna=True)


def climatological_normal(data: Any, period: Any, climatology_period: Any = (1981, 2010)) -> xr.DataArray:
    cube = _require_cube(data, "climatological_normal")
    dim = temporal_dimension(cube, None, "climatological_normal")
    if period not in _NORMAL_PERIODS:
        raise parameter_invalid(
            "climatological_normal", "period", f"'{period}' is not one of {', '.join(_NORMAL_PERIODS)}."
        )
    first, last = _climatology_years(climatology_period)
    stamps = timestamps(cube, dim, "climatological_normal")
    keep = _climatology_window(stamps, period, first, last)
    if not keep.any():
        raise NoDataAvailable(
            f"The data cube has no dates in the climatology period {first}–{last} "
            f"(its dates run from {stamps.min()} to {stamps.max()}); choose another `climatology_period`."
        )
    selected = np.flatnonzero(keep)
    keys, names = _normal_keys(stamps[selected], period)
    wanted = np.arange(len(names))
    groups = [selected[g] for g in _groups_by_key(keys, wanted)]
    return aggregate_groups(cube, dim, groups, label_coord(names, dim), _mean, None, "climatological_normal")


def _climatology_years(value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise parameter_invalid(
            "climatological_normal", "climatology_period", f"expected two years [first, last], got {value!r}."
        )
    first, last = int(value[0]), int(value[1])
    if last < first:
        raise parameter_invalid(
            "climatological_normal", "climatology_period", f"the last year {last} is before the first year {first}."
        )
    return first, last


def _climatology_window(stamps: pd.DatetimeIndex, period: str, first: int, last: int) -> np.ndarray:
    """The dates that count: the years first…last; seasons that cross the new year start in the
    previous December (November) if that month is in the data, and the one that would end after
    ``last`` is left out."""
    start, end = pd.Timestamp(year=first, month=1, day=1), pd.Timestamp(year=last + 1, month=1, day=1)
    crossing = {"season": 12, "tropical-season": 11}.get(period)
    if crossing is not None:
        before = pd.Timestamp(year=first - 1, month=crossing, day=1)
        has_before = bool(((stamps >= before) & (stamps < start)).any())
        start = before if has_before else pd.Timestamp(year=first, month=crossing - 9 if crossing == 12 else 5, day=1)
        end = pd.Timestamp(year=last, month=crossing, day=1)
    return np.asarray((stamps >= start) & (stamps < end))


def _normal_keys(stamps: pd.DatetimeIndex, period: str) -> tuple[np.ndarray, list[str]]:
    """A group number per date and the labels of the groups, for the periods of a normal."""
    month = stamps.month.to_numpy()
    if period == "day":
        day = stamps.dayofyear.to_numpy() - 1
        days = 366 if (day == 365).any() else 365
        return day, [f"{d:03d}" for d in range(1, days + 1)]
    if period == "month":
        return month - 1, [f"{m:02d}" for m in range(1, 13)]
    if period == "season":
        return np.where(month == 12, 0, month // 3), ["djf", "mam", "jja", "son"]
    if period == "tropical-season":
        return np.where((month >= 5) & (month <= 10), 1, 0), ["ndjfma", "mjjaso"]
    return np.zeros(len(stamps), dtype=np.int64), ["climatology-period"]


_ANOMALY_LABELS: dict[str, tuple[re.Pattern, int]] = {
    # period → pattern of a data label whose group 1 is the normal's label, and the width of numeric labels
    "hour": (re.compile(r"^-?\d{4}-\d{2}-\d{2}-(\d{2})$"), 2),
    "day": (re.compile(r"^-?\d{4}-(\d{3})$"), 3),
    "week": (re.compile(r"^-?\d{4}-(\d{2})$"), 2),
    "dekad": (re.compile(r"^-?\d{4}-(\d{2})$"), 2),
    "month": (re.compile(r"^-?\d{4}-(\d{2})$"), 2),
    "season": (re.compile(r"^-?\d{4}-(djf|mam|jja|son)$"), 0),
    "tropical-season": (re.compile(r"^-?\d{4}-(ndjfma|mjjaso)$"), 0),
    "year": (re.compile(r"^(-?\d{4})$"), 4),
    "decade": (re.compile(r"^(-?\d{3}0)$"), 4),
    "decade-ad": (re.compile(r"^(-?\d{3}1)$"), 4),
}
_SINGLE_PERIODS = ("single-period", "climatology-period")


def anomaly(data: Any, normals: Any, period: Any) -> xr.DataArray:
    cube = _require_cube(data, "anomaly")
    if not is_raster_cube(normals):
        raise parameter_invalid("anomaly", "normals", f"expected a data cube, got {type(normals).__name__}.")
    dim = temporal_dimension(cube, None, "anomaly")
    normal_dim = temporal_dimension(normals, None, "anomaly")
    if period not in _ANOMALY_LABELS and period not in _SINGLE_PERIODS:
        raise parameter_invalid("anomaly", "period", f"'{period}' is not a period of normals.")
    normal_labels = [_normal_label(v, period) for v in normals[normal_dim].values]
    if period in _SINGLE_PERIODS:
        if len(normal_labels) != 1:
            raise parameter_invalid(
                "anomaly",
                "normals",
                f"for period '{period}' the normals need exactly one label, not {len(normal_labels)}.",
            )
        index = np.zeros(cube.sizes[dim], dtype=np.int64)
    else:
        position = {label: i for i, label in enumerate(normal_labels)}
        wanted = _data_period_labels(cube, dim, period)
        # a period without a normal (e.g. day 366 against 365 daily normals) gets no-data
        index = np.array([position.get(label, -1) for label in wanted], dtype=np.int64)
    matched = _normals_like(normals.reset_coords(drop=True), normal_dim, cube, dim, index)
    with xr.set_options(keep_attrs=True):
        result = cube - matched
    result = copy_dimension_types(cube, result.transpose(*cube.dims))
    return result.rio.write_crs(cube.rio.crs) if cube.rio.crs is not None else result


def _normal_label(value: Any, period: str) -> str:
    width = _ANOMALY_LABELS.get(period, (None, 0))[1]
    if isinstance(value, (int, np.integer)) and width:
        return f"{int(value):0{width}d}"
    return str(value)


def _data_period_labels(cube: xr.DataArray, dim: str, period: str) -> list[str]:
    """The normal's label for every label of the data: from period labels (``2023-06`` → ``06``) or
    from instants."""
    values = cube[dim].values
    pattern = _ANOMALY_LABELS[period][0]
    if values.dtype.kind != "M":
        matches = [pattern.match(str(v)) for v in values]
        if all(matches):
            return [m.group(1) for m in matches]  # type: ignore[union-attr]
        if not all(isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}", v) for v in values):
            bad = next(str(v) for v, m in zip(values, matches, strict=True) if not m)
            raise parameter_invalid(
                "anomaly", "data", f"label '{bad}' of dimension '{dim}' is not a label of period '{period}'."
            )
    keys, label = period_keys(timestamps(cube, dim, "anomaly"), period)
    labels = [label(int(k)) for k in keys]
    return [pattern.match(v).group(1) for v in labels]  # type: ignore[union-attr]


def _normals_like(normals: xr.DataArray, normal_dim: str, cube: xr.DataArray, dim: str, index: np.ndarray):
    """The normal of each date of ``cube``, on the cube's labels (NaN where there is none)."""
    for other in normals.dims:
        if other == normal_dim:
            continue
        if other not in cube.dims:
            raise parameter_invalid(
                "anomaly", "normals", f"the normals have dimension '{other}', which the data cube lacks."
            )
        ours, theirs = cube[other].values, normals[other].values
        numeric = ours.dtype.kind in "fiu" and theirs.dtype.kind in "fiu"
        same = len(ours) == len(theirs) and (np.allclose(ours, theirs) if numeric else list(ours) == list(theirs))
        if not same:
            raise parameter_invalid(
                "anomaly", "normals", f"the labels of dimension '{other}' differ between the data and the normals."
            )
    picked = normals.isel({normal_dim: np.maximum(index, 0)})
    if (index < 0).any():
        picked = picked.astype(np.result_type(picked.dtype, np.float32)).where(
            xr.DataArray(index >= 0, dims=(normal_dim,))
        )
    picked = picked.rename({normal_dim: dim}) if normal_dim != dim else picked
    return picked.assign_coords({d: cube[d] for d in picked.dims})


PROCESSES = {
    "aggregate_temporal": aggregate_temporal,
    "aggregate_temporal_period": aggregate_temporal_period,
    "climatological_normal": climatological_normal,
    "anomaly": anomaly,
}
