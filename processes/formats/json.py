"""JSON: any processing result as JSON; small raster cubes in the openEO datacube form.

:func:`to_json_value` turns a result into plain Python values that ``json`` can write: numpy
scalars and arrays become numbers and lists, NaN and ±infinity become ``null`` (JSON has neither),
dates and times become ISO 8601 strings in UTC (``2023-05-01T10:30:00Z``), geometries and
GeoDataFrames their GeoJSON, vector cubes a list of records (one per geometry and date), raster
cubes the datacube form of :mod:`processes.formats.cube_json`. Lazy values are computed here. Raster cubes
larger than :data:`MAX_CUBE_VALUES` are refused with a pointer to GTiff or netCDF: a JSON document
of millions of numbers helps nobody and would hold the whole cube in memory.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from processes.formats.cube_json import cube_to_json, iso_datetime
from processes.formats.output_format import OutputFormat, unsuitable
from processes.formats.vector import is_vector_cube, vector_cube_to_frame
from processes.model.raster_cube import EMPTY_CUBE_ATTR, is_raster_cube

NAME = "JSON"
MAX_CUBE_VALUES = 5_000_000


def _accepts(value: Any) -> str | None:
    if isinstance(value, xr.DataArray) and value.size > MAX_CUBE_VALUES:
        return (f"the data cube has {value.size:,} values and JSON output is limited to {MAX_CUBE_VALUES:,}; "
                "save it as GTiff or netCDF instead, or reduce it first.")
    return None


_SPECIAL_FLOATS: contextvars.ContextVar[bool] = contextvars.ContextVar("special_floats", default=False)


@contextlib.contextmanager
def special_floats_kept() -> Iterator[None]:
    """Within this block :func:`to_json_value` keeps NaN and ±infinity as floats instead of None.

    For ``POST /result`` answering a plain value (a graph without ``save_result``): the value is
    written with Python's ``json`` (``NaN``, ``Infinity`` tokens, as other Python openEO back-ends
    answer and the Python client reads), so the result is exact. ``save_result`` as JSON stays
    strict JSON with ``null``.
    """
    token = _SPECIAL_FLOATS.set(True)
    try:
        yield
    finally:
        _SPECIAL_FLOATS.reset(token)


def to_json_value(value: Any) -> Any:
    """``value`` as plain JSON-serialisable Python values (computing lazy data); see the module docstring."""
    if isinstance(value, xr.DataArray):
        return _data_array(value)
    if isinstance(value, xr.Dataset):
        return {str(name): _data_array(var) for name, var in value.data_vars.items()}
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, np.integer, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            return number if _SPECIAL_FLOATS.get() else None
        return number
    if _is_missing_time(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime.datetime, np.datetime64)):
        return iso_datetime(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (pd.Timedelta, datetime.timedelta, np.timedelta64)):
        return pd.Timedelta(value).isoformat()
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, pd.DataFrame) and not hasattr(value, "__geo_interface__"):
        return to_json_value(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return to_json_value(value.tolist())
    if hasattr(value, "__geo_interface__"):  # shapely geometries, GeoDataFrames, GeoSeries
        return to_json_value(value.__geo_interface__)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    raise unsuitable(NAME, f"a result of type {type(value).__name__} has no JSON form.")


def _is_missing_time(value: Any) -> bool:
    return value is pd.NaT or (isinstance(value, (np.datetime64, np.timedelta64)) and np.isnat(value))


def _data_array(value: xr.DataArray) -> Any:
    problem = _accepts(value)
    if problem:
        raise unsuitable(NAME, problem)
    if value.ndim == 0:
        if value.attrs.get(EMPTY_CUBE_ATTR):  # create_data_cube: a data cube without dimensions
            return {"type": "datacube", "order": [], "dimensions": {}, "data": []}
        return to_json_value(value.values[()])
    if is_vector_cube(value):
        frame = vector_cube_to_frame(value)
        return to_json_value(pd.DataFrame(frame.drop(columns="geometry")).to_dict(orient="records"))
    if is_raster_cube(value):
        return to_json_value(cube_to_json(value.compute()))
    return _array(np.asarray(value.values))


def _array(values: np.ndarray) -> Any:
    """Nested lists; datetimes as ISO strings (``tolist`` would give nanosecond integers)."""
    if values.dtype.kind in "mM":
        return to_json_value(np.array([to_json_value(v) for v in values.ravel()], dtype=object)
                             .reshape(values.shape).tolist())
    return to_json_value(values.tolist())


def write_json(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    document = to_json_value(value)
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(document, handle, allow_nan=False, ensure_ascii=False)


FORMAT = OutputFormat(
    name=NAME,
    title="JavaScript Object Notation",
    description=(
        "Any result as JSON (UTF-8). NaN and infinity become null; dates ISO 8601 in UTC. Raster data cubes in "
        "the datacube form of the openEO process tests (`type`, `order`, `dimensions` with `type`, `axis`, "
        f"`values`, `reference_system`; `data` as nested arrays), up to {MAX_CUBE_VALUES:,} values; vector cubes "
        "as a list of records, one per geometry and date."
    ),
    gis_data_types=("raster", "vector", "table", "other"),
    media_type="application/json",
    extension="json",
    writer=write_json,
    accepts=_accepts,
)
