"""Raster cubes ↔ the "datacube" JSON form of the openEO process tests.

The form (``openeo-processes/tests/README.md``)::

    {"type": "datacube", "nodata": NaN, "order": ["bands", "y", "x"],
     "dimensions": {"bands": {"type": "bands", "values": ["B04", "B08"]},
                    "y": {"type": "spatial", "axis": "y", "values": [...], "reference_system": "EPSG:25832"},
                    "x": {...}},
     "data": [[[...]]]}

is used for JSON output of small cubes and to read the data cubes of the official process tests.

Reading accepts the variants found there: ``dimensions`` as a list of ``{"name", …}``; a missing
``order`` (then the order of ``dimensions``); a missing ``axis`` (``new_cube`` takes it from the
names x/y, else the spatial dimensions count as y, x in their order); ``reference_system`` as EPSG
code, ``"EPSG:…"``, WKT or PROJJSON; ``nodata`` as one value or a list; ``data: null`` (values
irrelevant: all NaN); ``data: []`` for a dimension without labels; labels of mixed types
(``["red", 1, 2]`` stays mixed). Temporal labels that are date-times become ``datetime64``; other
temporal labels — periods such as ``"2024-03"`` or ``"2023-djf"`` and plain dates, the default labels
of ``aggregate_temporal`` — stay strings, so they are written back as they came.

Values: numbers with any ``null`` or NaN give a float64 cube in which the ``nodata`` values become
NaN too; whole numbers without give an int64 cube that keeps its nodata value as ``_FillValue``
attribute; booleans stay booleans (with nulls they become 1.0/0.0/NaN: xarray has no nullable
booleans); anything else (strings) stays as it is. A cube without dimensions (``data: []``, what
``create_data_cube`` returns) is a 0-d NaN array.

Writing gives date-times as ``YYYY-MM-DDTHH:MM:SSZ``, the CRS as ``"EPSG:<code>"`` (PROJJSON if it
has no code) on every spatial dimension, ``nodata`` NaN for float cubes (else the ``_FillValue``
attribute or None), and keeps NaN as float NaN in the Python object: ``processes.formats.json``
turns it into ``null``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import xarray as xr

from processes.model.raster_cube import (
    AXIS_ATTR,
    DIM_TYPES,
    dimension_type,
    new_cube,
    spatial_dims,
    with_dimension_type,
)

FILL_VALUE_ATTR = "_FillValue"

# A date and time with optional offset (see the module docstring for the other temporal labels).
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


class CubeJSONError(ValueError):
    """The datacube JSON is malformed; the message says where."""


# --- reading ----------------------------------------------------------------------------------------


def cube_from_json(obj: Mapping[str, Any]) -> xr.DataArray:
    """A raster cube from datacube JSON (dimension types and labels, CRS, nodata → NaN in float data)."""
    if obj.get("type") != "datacube":
        raise CubeJSONError(f"expected an object with \"type\": \"datacube\", got type {obj.get('type')!r}")
    specs = _dimension_specs(obj.get("dimensions"))
    given_order = obj.get("order")
    order = given_order if isinstance(given_order, list) else list(specs)
    if sorted(map(str, order)) != sorted(specs):
        raise CubeJSONError(f"\"order\" {order} must list each dimension of \"dimensions\" ({list(specs)}) once")
    if not order:
        return xr.DataArray(np.float64(np.nan))
    values = _typed_values(_data(obj.get("data"), specs, order), _nodata_values(obj.get("nodata")))
    labels = {name: _labels_of(name, specs[name]) for name in order}
    # new_cube parses every temporal dimension as dates: periods are typed temporal afterwards
    periods = [n for n in order if specs[n]["type"] == "temporal" and not isinstance(labels[n], pd.DatetimeIndex)]
    cube = new_cube(values.data, {n: ("other" if n in periods else specs[n]["type"], labels[n]) for n in order})
    for name in periods:
        cube = with_dimension_type(cube, name, "temporal")
    cube = _with_axes_and_mixed_labels(cube, specs, order)
    crs = _crs(specs, order)
    if crs is not None:
        # also for a cube with a single spatial dimension, where new_cube would not write it
        cube = cube.rio.write_crs(crs)
    if values.fill_value is not None:
        cube.attrs[FILL_VALUE_ATTR] = values.fill_value
    return cube


def _dimension_specs(dimensions: Any) -> dict[str, dict[str, Any]]:
    if isinstance(dimensions, list):  # [{"name": "t", "type": …}, …]
        try:
            dimensions = {d["name"]: d for d in dimensions}
        except (KeyError, TypeError):
            raise CubeJSONError("\"dimensions\" given as a list needs a \"name\" in every entry") from None
    if not isinstance(dimensions, Mapping):
        raise CubeJSONError(f"\"dimensions\" must map dimension names to descriptions, got {dimensions!r}")
    specs: dict[str, dict[str, Any]] = {}
    for name, spec in dimensions.items():
        dim_type = spec.get("type", "other")
        if dim_type not in DIM_TYPES:
            raise CubeJSONError(f"dimension {name!r} has type {dim_type!r}; expected one of {', '.join(DIM_TYPES)}")
        if not isinstance(spec.get("values"), list):
            raise CubeJSONError(f"dimension {name!r} needs its labels as a list in \"values\", got {spec.get('values')!r}")
        specs[str(name)] = {**spec, "type": dim_type}
    return specs


def _labels_of(name: str, spec: Mapping[str, Any]) -> list[Any] | pd.DatetimeIndex:
    values = spec["values"]
    if spec["type"] != "temporal" or not values or not all(isinstance(v, str) and _DATETIME.match(v) for v in values):
        return list(values)
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601"))
    except ValueError as err:
        raise CubeJSONError(f"temporal dimension {name!r} has a label that is no valid date-time: {err}") from None


def _data(data: Any, specs: Mapping[str, Mapping[str, Any]], order: list[str]) -> np.ndarray:
    """The nested lists as an object array of the dimensions' shape."""
    shape = tuple(len(specs[name]["values"]) for name in order)
    if data is None:  # the tests' "values are irrelevant"
        return np.full(shape, None, dtype=object)
    if data == [] and 0 in shape:
        return np.empty(shape, dtype=object)
    try:
        array = np.array(data, dtype=object)
    except ValueError:
        array = None
    if array is not None and any(isinstance(v, list) for v in array.ravel()):
        array = None  # numpy keeps the inner lists of ragged (or too deep) data as objects
    if array is None or array.shape != shape:
        got = "ragged nested lists" if array is None else f"shape {array.shape}"
        expected = ", ".join(f"{name} ({n})" for name, n in zip(order, shape, strict=True))
        raise CubeJSONError(f"\"data\" has {got}, but the dimensions {expected} need shape {shape}")
    return array


@dataclass(frozen=True)
class _Values:
    data: np.ndarray
    """The data as a typed array."""
    fill_value: int | None = None
    """The nodata value of integer data (float data has NaN instead)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and np.isnan(v))


def _floats(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.array([np.nan if _is_missing(v) else float(v) for v in flat], dtype="float64").reshape(shape)


def _typed_values(data: np.ndarray, nodata: list[Any]) -> _Values:
    flat = data.ravel()
    present = [v for v in flat if not _is_missing(v)]
    missing = len(present) < flat.size
    if not present:
        return _Values(_floats(flat, data.shape))
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return _Values(_floats(flat, data.shape) if missing else data.astype(bool))
    if not all(_is_number(v) for v in present):
        return _Values(data)  # strings, or mixed: kept as they are
    numeric_nodata = [v for v in nodata if _is_number(v) and not np.isnan(v)]
    if not missing and all(isinstance(v, (int, np.integer)) for v in present):
        whole = [int(v) for v in numeric_nodata if float(v).is_integer()]
        return _Values(data.astype(np.int64), whole[0] if whole else None)
    values = _floats(flat, data.shape)
    for v in numeric_nodata:
        values[values == v] = np.nan
    return _Values(values)


def _nodata_values(nodata: Any) -> list[Any]:
    if nodata is None:
        return []
    return list(nodata) if isinstance(nodata, list) else [nodata]


def _crs(specs: Mapping[str, Mapping[str, Any]], order: list[str]) -> pyproj.CRS | None:
    systems: dict[str, pyproj.CRS] = {}
    for name in order:
        spec = specs[name]
        if spec["type"] == "spatial" and spec.get("reference_system") is not None:
            try:
                systems[name] = pyproj.CRS.from_user_input(spec["reference_system"])
            except pyproj.exceptions.CRSError as err:
                raise CubeJSONError(f"dimension {name!r} has an unknown reference_system: {err}") from None
    crs = next(iter(systems.values()), None)
    if any(other != crs for other in systems.values()):
        raise CubeJSONError(f"the spatial dimensions {sorted(systems)} have different reference systems")
    return crs


def _with_axes_and_mixed_labels(cube: xr.DataArray, specs: Mapping[str, Mapping[str, Any]],
                                order: list[str]) -> xr.DataArray:
    """Axes given in the JSON (``new_cube`` knows them only from the names x/y), and mixed labels.

    ``new_cube`` gives labels one numpy type, which would turn ``["red", 1, 2]`` into strings.
    """
    spatial = [name for name in order if specs[name]["type"] == "spatial"]
    axes = {name: specs[name]["axis"] for name in spatial if specs[name].get("axis") in ("x", "y")}
    if len(spatial) == 2 and not axes and spatial_dims(cube) is None:
        axes = dict(zip(spatial, ("y", "x"), strict=True))
    fixed = {}
    for name in order:
        values, attrs = cube[name].values, dict(cube[name].attrs)
        labels = specs[name]["values"]
        mixed = len({type(v) for v in labels}) > 1 and not all(_is_number(v) for v in labels)
        if mixed and specs[name]["type"] != "temporal":
            values = np.array(labels, dtype=object)
        if name in axes:
            attrs[AXIS_ATTR] = axes[name]
        if mixed or attrs != cube[name].attrs:
            fixed[name] = xr.DataArray(values, dims=(name,), attrs=attrs)
    return cube.assign_coords(fixed) if fixed else cube


# --- writing ----------------------------------------------------------------------------------------


def cube_to_json(cube: xr.DataArray) -> dict[str, Any]:
    """The cube (computed) in datacube JSON form; NaN stays float NaN (the JSON writer makes it null)."""
    if cube.ndim == 0:
        value = cube.values.item()
        empty = isinstance(value, float) and np.isnan(value)
        return {"type": "datacube", "nodata": None, "order": [], "dimensions": {}, "data": [] if empty else value}
    reference_system = _reference_system(cube)
    spatial = spatial_dims(cube)
    axes: dict[Hashable, str] = dict(zip(spatial, ("y", "x"), strict=True)) if spatial else {}
    dims: dict[str, Any] = {}
    for dim in cube.dims:
        dim_type = dimension_type(cube, dim)
        entry: dict[str, Any] = {"type": dim_type}
        axis = cube[dim].attrs.get(AXIS_ATTR) or axes.get(dim) if dim_type == "spatial" else None
        if axis:
            entry["axis"] = axis
        labels = cube[dim].values if dim in cube.coords else np.arange(cube.sizes[dim])
        entry["values"] = _plain(labels).tolist()
        if dim_type == "spatial" and reference_system is not None:
            entry["reference_system"] = reference_system
        dims[str(dim)] = entry
    values = np.asarray(cube.values)
    return {
        "type": "datacube",
        "nodata": _nodata_of(cube, values),
        "order": [str(d) for d in cube.dims],
        "dimensions": dims,
        "data": _plain(values).tolist(),
    }


def _reference_system(cube: xr.DataArray) -> str | dict | None:
    try:
        crs = cube.rio.crs
    except Exception:  # rioxarray raises several types on a broken spatial_ref
        return None
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else pyproj.CRS(crs).to_json_dict()


def iso_datetime(value: Any) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC (fractions of seconds only where there are any); None for NaT."""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    text = stamp.isoformat()
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "Z"


def _nodata_of(cube: xr.DataArray, values: np.ndarray) -> Any:
    if values.dtype.kind == "f":
        return float("nan")
    fill = cube.attrs.get(FILL_VALUE_ATTR, cube.attrs.get("nodata"))
    return fill.item() if isinstance(fill, np.generic) else fill


def _plain(values: np.ndarray) -> np.ndarray:
    """Values whose ``tolist`` is JSON-able: date-times as ISO strings (``tolist`` gives nanosecond integers)."""
    if values.dtype.kind == "M":
        return np.array([iso_datetime(v) for v in values.ravel()], dtype=object).reshape(values.shape)
    return values
