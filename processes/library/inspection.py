"""``inspect``: log a value for the user, then pass it on unchanged.

Cubes are described (dimensions, labels, CRS, dtype) rather than computed: inspecting a lazy cube
must not trigger reading it. Plain values are logged as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from processes.core.env import ProcessEnv
from processes.core.errors import parameter_invalid
from processes.model.raster_cube import dimension_type

LEVELS = ("error", "warning", "info", "debug")


def describe(value: Any) -> Any:
    if isinstance(value, xr.DataArray):
        dims: dict[str, dict[str, Any]] = {}
        for dim in value.dims:
            labels: np.ndarray | list[Any] = value[dim].values if dim in value.coords else []
            shown = [str(v) for v in labels[:5]] + (["…"] if len(labels) > 5 else [])
            dims[str(dim)] = {"type": dimension_type(value, dim), "size": int(value.sizes[dim]), "labels": shown}
        crs = value.rio.crs
        return {"type": "datacube", "dtype": str(value.dtype), "dimensions": dims,
                "crs": crs.to_string() if crs is not None else None}
    return value


def inspect(data: Any, message: str = "", code: str = "User", level: str = "info", *, env: ProcessEnv) -> Any:
    if level not in LEVELS:
        raise parameter_invalid("inspect", "level", f"'{level}' is not one of {', '.join(LEVELS)}.")
    env.log(level, message or "inspect", {"code": code, "data": describe(data)})
    return data


PROCESSES = {"inspect": inspect}
