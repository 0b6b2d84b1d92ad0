"""JSON: any processing result as JSON; small raster cubes in the datacube form.

JSON has no NaN or infinity: they become ``null``. Dates become RFC 3339 strings. Lazy values are
computed here. Raster cubes larger than ``MAX_CUBE_VALUES`` are refused with a pointer to GTiff or
netCDF, because a JSON document of millions of numbers helps nobody.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from processes.cube import is_raster_cube
from processes.cube_json import cube_to_json
from processes.errors import process_error

from . import OutputFormat
from .vector import is_vector_cube, vector_cube_to_frame

MAX_CUBE_VALUES = 5_000_000


def _accepts(value: Any) -> str | None:
    if isinstance(value, xr.DataArray) and value.size > MAX_CUBE_VALUES:
        return (f"the data cube has {value.size:,} values (JSON output is limited to {MAX_CUBE_VALUES:,}); "
                "use GTiff or netCDF.")
    return None


def to_json_value(value: Any) -> Any:
    """A JSON-serialisable Python value (computing lazy data)."""
    if isinstance(value, xr.DataArray):
        problem = _accepts(value)
        if problem:
            raise process_error("FormatUnsuitable", f"Data can't be returned as JSON: {problem}")
        if value.ndim == 0:
            return to_json_value(value.values.item())
        if is_vector_cube(value):
            frame = vector_cube_to_frame(value)
            return to_json_value(pd.DataFrame(frame.drop(columns="geometry")).to_dict(orient="records"))
        if is_raster_cube(value):
            return to_json_value(cube_to_json(value.compute()))
        return to_json_value(value.values.tolist())
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist())
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (pd.Timestamp, datetime.datetime)):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise process_error("FormatUnsuitable", f"A result of type {type(value).__name__} can't be written as JSON.")


def write_json(value: Any, target: Path, options: Mapping[str, Any]) -> None:
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(to_json_value(value), handle, allow_nan=False)


FORMAT = OutputFormat(
    name="JSON",
    title="JavaScript Object Notation",
    description="Any result as JSON (NaN → null); raster cubes in the openEO datacube form (type, order, "
    f"dimensions, data), up to {MAX_CUBE_VALUES:,} values.",
    gis_data_types=("raster", "vector", "table", "other"),
    media_type="application/json",
    extension="json",
    writer=write_json,
    accepts=_accepts,
)
