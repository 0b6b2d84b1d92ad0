"""Data cube processes that change dimensions and labels: apply along, add, drop, rename, filter.

``merge_cubes`` lives in :mod:`processes.library.merge`.

Everything stays lazy: labels are small and handled eagerly (as coordinates), the values are only
rearranged in the Dask graph (rename, expand, select, concatenate, reshape). ``trim_cube`` is the
one exception: which labels hold nothing but no-data depends on the values, so it computes one small
"any valid value" vector per dimension before it selects lazily.

Dimension metadata lives on the coordinates (see :mod:`processes.model.raster_cube`): the openEO type and axis,
and for bands the per-band metadata keyed by label. Every process here rebuilds a changed coordinate
from the old one's attributes, so types, axes and band metadata survive, and re-writes the CRS.

``apply_dimension`` calls its child process once with the cube, the dimension renamed to
:data:`processes.model.raster_cube.ARRAY_DIM`, as ``reduce_dimension`` does; the array processes work along it.
``filter_labels`` evaluates its condition once over all numeric labels (an element-wise graph on a
small array), else once per label with the label as plain value (strings, dates as RFC 3339).
"""

from __future__ import annotations

import re
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError, parameter_invalid, process_error
from processes.formats.cube_json import FILL_VALUE_ATTR
from processes.library.datacube import require_dimension
from processes.model.raster_cube import (
    ARRAY_DIM,
    AXIS_ATTR,
    BANDS_ATTR,
    DIM_TYPES,
    EMPTY_CUBE_ATTR,
    TYPE_ATTR,
    along_dimension,
    band_metadata,
    describe_dimensions,
    dimension_type,
    dims_of_type,
    is_raster_cube,
    nodata_as_nan,
    spatial_dims,
)
from processes.model.values import as_labeled_array, is_number, to_python

# --- shared helpers ------------------------------------------------------------------------------


def cube_argument(value: Any, process: str, parameter: str = "data") -> xr.DataArray:
    """A raster cube, or the cube without dimensions that ``create_data_cube`` gives."""
    if isinstance(value, xr.DataArray) and (is_raster_cube(value) or value.ndim == 0):
        return value
    raise parameter_invalid(process, parameter, f"expected a data cube, got {type(value).__name__}.")


def with_crs(result: xr.DataArray, source: xr.DataArray) -> xr.DataArray:
    crs = source.rio.crs if source.ndim else None
    return result.rio.write_crs(crs) if crs is not None and result.rio.crs != crs else result


def _plain_label(value: Any) -> Any:
    """A label as the plain value a user sees: dates as RFC 3339 strings, geometries as WKT."""
    if hasattr(value, "wkt") and not isinstance(value, str):
        return value.wkt
    return to_python(value)


def labels_of_dimension(cube: xr.DataArray, dim: str) -> list[Any]:
    if dim not in cube.coords:
        return list(range(cube.sizes[dim]))
    return [_plain_label(v) for v in cube[dim].values]


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def _timestamp(value: Any) -> pd.Timestamp | None:
    """A date or date-time label as naive UTC timestamp; None for anything else (e.g. periods)."""
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        stamp = pd.Timestamp(value)
    elif isinstance(value, str) and _DATE.match(value):
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            return None
    else:
        return None
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def _label_array(labels: list[Any], dim_type: str) -> np.ndarray | pd.DatetimeIndex:
    """Coordinate values for labels: dates of temporal dimensions as datetime64, mixed types as objects."""
    if dim_type == "temporal" and labels:
        stamps = [_timestamp(v) for v in labels]
        if all(s is not None for s in stamps):
            return pd.DatetimeIndex(stamps)
    if all(is_number(v) for v in labels) or all(isinstance(v, str) for v in labels):
        return np.asarray(labels)
    return np.array(labels, dtype=object)


def label_key(label: Any) -> tuple:
    """A hashable key under which equal labels meet: strict types as in ``eq`` (``"1"`` is not ``1``),
    numbers by value, dates in any RFC 3339 form as the same instant."""
    if is_number(label):
        return (0, float(label))
    stamp = _timestamp(label)
    if stamp is not None:
        return (1, stamp)
    return (2, type(label).__name__, label)


def _position(labels: list[Any], label: Any) -> int | None:
    key = label_key(label)
    return next((i for i, existing in enumerate(labels) if label_key(existing) == key), None)


def relabel(cube: xr.DataArray, dim: str, labels: list[Any] | np.ndarray, attrs: dict) -> xr.DataArray:
    """``cube`` with new labels on ``dim``; the coordinate keeps ``attrs`` (type, axis, band metadata)."""
    values = labels if isinstance(labels, (np.ndarray, pd.Index)) else _label_array(list(labels),
                                                                                      attrs.get(TYPE_ATTR, "other"))
    return cube.assign_coords({dim: xr.DataArray(values, dims=(dim,), attrs=attrs)})


def drop_coords_along(cube: xr.DataArray, dim: str) -> xr.DataArray:
    """Without the coordinates that depend on ``dim`` (its labels and any auxiliary ones)."""
    along = [name for name, coord in cube.coords.items() if dim in coord.dims]
    return cube.drop_vars(along) if along else cube


# --- labels --------------------------------------------------------------------------------------


def dimension_labels(data: Any, dimension: Any) -> list[Any]:
    cube = cube_argument(data, "dimension_labels")
    return labels_of_dimension(cube, require_dimension(cube, dimension, "dimension_labels"))


def rename_labels(data: Any, dimension: Any, target: Any, source: Any = ()) -> xr.DataArray:
    cube = cube_argument(data, "rename_labels")
    dim = require_dimension(cube, dimension, "rename_labels")
    labels = labels_of_dimension(cube, dim)
    target, source = list(target or []), list(source or [])
    if not source:
        if labels != list(range(len(labels))) or not all(is_number(v) for v in labels):
            raise process_error(
                "LabelsNotEnumerated",
                f"The labels of dimension '{dim}' are not enumerated (0, 1, 2, …) but {_shorten(labels)}: "
                "give the labels to rename in `source`.",
            )
        if len(target) > len(labels):
            raise process_error(
                "LabelMismatch",
                f"`target` has {len(target)} labels, but dimension '{dim}' has only {len(labels)}.",
            )
        source = list(range(len(target)))
    elif len(source) != len(target):
        raise process_error(
            "LabelMismatch",
            f"`source` has {len(source)} labels and `target` {len(target)}: give one target label per source label.",
        )
    renamed = list(labels)
    positions = []
    for old, new in zip(source, target, strict=True):
        position = _position(labels, old)
        if position is None:
            raise process_error(
                "LabelNotAvailable",
                f"Dimension '{dim}' has no label {old!r}; its labels are {_shorten(labels)}.",
            )
        positions.append(position)
        renamed[position] = new
    renamed_positions = set(positions)
    kept = [label for i, label in enumerate(labels) if i not in renamed_positions]
    for new in target:
        if _position(kept, new) is not None or [label_key(t) for t in target].count(label_key(new)) > 1:
            raise process_error(
                "LabelExists",
                f"Dimension '{dim}' would have the label {new!r} twice: rename or drop the existing label first.",
            )
    attrs = dict(cube[dim].attrs) if dim in cube.coords else {TYPE_ATTR: "other"}
    if BANDS_ATTR in attrs:
        old_meta = band_metadata(cube)
        attrs[BANDS_ATTR] = {str(new): old_meta.get(str(old), {}) for old, new in zip(labels, renamed, strict=True)}
    return relabel(cube, dim, renamed, attrs)


def _shorten(labels: list[Any], limit: int = 8) -> str:
    shown = ", ".join(map(repr, labels[:limit]))
    return f"[{shown}{', …' if len(labels) > limit else ''}]"


def filter_labels(data: Any, condition: Any, dimension: Any, context: Any = None) -> xr.DataArray:
    cube = cube_argument(data, "filter_labels")
    dim = require_dimension(cube, dimension, "filter_labels")
    if not callable(condition):
        raise parameter_invalid("filter_labels", "condition", "expected a child process.")
    labels = labels_of_dimension(cube, dim)
    keep = _label_condition(condition, labels, context)
    return cube.isel({dim: np.flatnonzero(keep)})


def _label_condition(condition: Any, labels: list[Any], context: Any) -> np.ndarray:
    """Whether ``condition`` is true for each label: once over all numeric labels, else per label."""
    if labels and all(is_number(v) for v in labels):
        try:
            result = condition(value=xr.DataArray(np.asarray(labels), dims=("label",)), context=context)
        except OpenEOError:
            result = None  # a process that takes plain values only: ask per label below
        # Anything but one boolean per label (e.g. a plain value from a process that ignored the
        # array) may mean the processes wanted plain values: then they get them.
        if isinstance(result, xr.DataArray) and result.dims == ("label",) and result.dtype.kind == "b":
            return np.asarray(result.values)
    return np.array([to_python(condition(value=label, context=context)) is True for label in labels], dtype=bool)


# --- adding, dropping and renaming dimensions ----------------------------------------------------


def create_data_cube() -> xr.DataArray:
    """A cube without dimensions (a single no-data value); ``add_dimension`` gives it dimensions."""
    return xr.DataArray(np.float64(np.nan), attrs={EMPTY_CUBE_ATTR: True})


def add_dimension(data: Any, name: Any, label: Any, type: str = "other") -> xr.DataArray:  # noqa: A002
    cube = cube_argument(data, "add_dimension")
    if name in cube.dims:
        raise process_error(
            "DimensionExists",
            f"A dimension named '{name}' exists already ({describe_dimensions(cube)}): choose another name.",
        )
    if type not in DIM_TYPES:
        raise parameter_invalid("add_dimension", "type", f"'{type}' is no dimension type; use one of {', '.join(DIM_TYPES)}.")
    axis = _free_axis(cube, name) if type == "spatial" else None
    attrs: dict[str, Any] = {TYPE_ATTR: type}
    if axis is not None:
        attrs[AXIS_ATTR] = axis
    result = cube.expand_dims(name)
    result = relabel(result, name, [label], attrs)
    return with_crs(result, cube)


def _free_axis(cube: xr.DataArray, name: str) -> str:
    """The first of the axes x, y, z that no spatial dimension has yet (the spec's rule)."""
    taken = {cube[d].attrs.get(AXIS_ATTR) for d in dims_of_type(cube, "spatial")}
    guessed = spatial_dims(cube)
    if guessed is not None:
        taken |= {"y", "x"}
    free = [axis for axis in ("x", "y", "z") if axis not in taken]
    if not free:
        raise process_error(
            "DimensionExists",
            f"The cube has spatial dimensions for all axes x, y and z already; '{name}' can't be added as spatial.",
        )
    return free[0]


def drop_dimension(data: Any, name: Any) -> xr.DataArray:
    cube = cube_argument(data, "drop_dimension")
    dim = require_dimension(cube, name, "drop_dimension")
    if cube.sizes[dim] != 1:
        raise process_error(
            "DimensionLabelCountMismatch",
            f"Dimension '{dim}' has {cube.sizes[dim]} labels; only a dimension with a single label can be dropped. "
            "Reduce it with reduce_dimension or select one label with a filter first.",
        )
    return with_crs(drop_coords_along(cube, dim).isel({dim: 0}), cube)


def rename_dimension(data: Any, source: Any, target: Any) -> xr.DataArray:
    cube = cube_argument(data, "rename_dimension")
    dim = require_dimension(cube, source, "rename_dimension")
    if target in cube.dims:
        raise process_error(
            "DimensionExists",
            f"A dimension named '{target}' exists already ({describe_dimensions(cube)}): choose another name.",
        )
    spatial = spatial_dims(cube)
    if spatial is not None and dim in spatial and AXIS_ATTR not in cube[dim].attrs:
        # the axis was known from the name or position only: write it down before the name changes
        cube = relabel(cube, dim, cube[dim].values, {**cube[dim].attrs, AXIS_ATTR: "yx"[spatial.index(dim)]})
    if dim not in cube.coords:
        return cube.rename({dim: target})
    return with_crs(cube.rename({dim: target}), cube)


def flatten_dimensions(data: Any, dimensions: Any, target_dimension: Any, label_separator: str = "~") -> xr.DataArray:
    """The dimensions (in the given order) as one of type ``other`` at the place of the first of them."""
    cube = cube_argument(data, "flatten_dimensions")
    dims = [require_dimension(cube, d, "flatten_dimensions") for d in dimensions or []]
    if not dims:
        raise parameter_invalid("flatten_dimensions", "dimensions", "give at least one dimension to flatten.")
    if target_dimension in cube.dims:
        raise process_error(
            "TargetDimensionExists",
            f"A dimension named '{target_dimension}' exists already ({describe_dimensions(cube)}): "
            "choose another target_dimension.",
        )
    first = min(cube.dims.index(d) for d in dims)
    others = [d for d in cube.dims if d not in dims]
    order = [*others[:first], *dims, *others[first:]]
    labels = [labels_of_dimension(cube, d) for d in dims]
    flat = [label_separator.join(map(str, combo)) for combo in _product(labels)]
    values = cube.transpose(*order).data
    shape = [cube.sizes[d] for d in others]
    shape.insert(first, len(flat))
    result = xr.DataArray(
        values.reshape(shape),
        dims=[*others[:first], target_dimension, *others[first:]],
        coords={name: coord for name, coord in cube.coords.items() if not set(coord.dims) & set(dims)},
        attrs=cube.attrs,
        name=cube.name,
    )
    return with_crs(relabel(result, target_dimension, np.asarray(flat, dtype=str), {TYPE_ATTR: "other"}), cube)


def _product(labels: list[list[Any]]) -> list[tuple[Any, ...]]:
    combos: list[tuple[Any, ...]] = [()]
    for values in labels:
        combos = [(*combo, value) for combo in combos for value in values]
    return combos


def unflatten_dimension(data: Any, dimension: Any, target_dimensions: Any, label_separator: str = "~") -> xr.DataArray:
    """Labels split at the separator; they must form the full grid of the new dimensions' labels."""
    cube = cube_argument(data, "unflatten_dimension")
    dim = require_dimension(cube, dimension, "unflatten_dimension")
    targets = list(target_dimensions or [])
    if len(targets) < 2 or len(set(targets)) != len(targets):
        raise parameter_invalid("unflatten_dimension", "target_dimensions", "give at least two different names.")
    clash = [t for t in targets if t in cube.dims and t != dim]
    if clash:
        raise process_error(
            "TargetDimensionExists",
            f"Dimension(s) {', '.join(clash)} exist already ({describe_dimensions(cube)}): choose other target names.",
        )
    parts = [str(label).split(label_separator) for label in labels_of_dimension(cube, dim)]
    if any(len(p) != len(targets) for p in parts):
        bad = next(label_separator.join(p) for p in parts if len(p) != len(targets))
        raise parameter_invalid(
            "unflatten_dimension", "data",
            f"label '{bad}' of dimension '{dim}' doesn't split into {len(targets)} parts at '{label_separator}'.",
        )
    new_labels = [list(dict.fromkeys(p[i] for p in parts)) for i in range(len(targets))]
    grid = [tuple(combo) for combo in _product(new_labels)]
    where = {tuple(p): i for i, p in enumerate(parts)}
    if len(where) != len(parts) or len(grid) != len(parts):
        raise parameter_invalid(
            "unflatten_dimension", "data",
            f"the labels of dimension '{dim}' don't form a full grid of {' × '.join(map(str, map(len, new_labels)))} "
            "distinct combinations, so they can't be split into dimensions.",
        )
    ordered = cube.isel({dim: [where[combo] for combo in grid]})
    axis = cube.dims.index(dim)
    shape = list(cube.shape)
    shape[axis:axis + 1] = [len(values) for values in new_labels]
    dims = [*cube.dims[:axis], *targets, *cube.dims[axis + 1:]]
    result = xr.DataArray(
        ordered.data.reshape(shape),
        dims=dims,
        coords={name: coord for name, coord in cube.coords.items() if dim not in coord.dims},
        attrs=cube.attrs,
        name=cube.name,
    )
    for target, values in zip(targets, new_labels, strict=True):
        result = relabel(result, target, np.asarray(values, dtype=str), {TYPE_ATTR: "other"})
    return with_crs(result, cube)


# --- values along a dimension --------------------------------------------------------------------


def apply_dimension(
    data: Any, process: Any, dimension: Any, target_dimension: Any = None, context: Any = None
) -> xr.DataArray:
    cube = cube_argument(data, "apply_dimension")
    dim = require_dimension(cube, dimension, "apply_dimension")
    if not callable(process):
        raise parameter_invalid("apply_dimension", "process", "expected a child process.")
    target = dim if target_dimension is None else target_dimension
    source_attrs = dict(cube[dim].attrs) if dim in cube.coords else {TYPE_ATTR: "other"}
    if target == dim:
        final_dims = list(cube.dims)
        attrs = source_attrs
    elif target in cube.dims:  # an existing single-label dimension receives the values
        if cube.sizes[target] != 1:
            raise parameter_invalid(
                "apply_dimension", "target_dimension",
                f"dimension '{target}' exists with {cube.sizes[target]} labels; the values computed along "
                f"'{dim}' can only replace a target dimension with a single label (or name a new dimension).",
            )
        attrs = dict(cube[target].attrs) if target in cube.coords else {TYPE_ATTR: "other"}
        final_dims = [d for d in cube.dims if d != dim]
        cube = drop_coords_along(cube, target).isel({target: 0})
    else:
        final_dims = [target if d == dim else d for d in cube.dims]
        attrs = {TYPE_ATTR: "other"}

    cube = nodata_as_nan(cube)
    template = cube.isel({dim: 0}, drop=True)
    result = _callback_array(process(data=along_dimension(cube, dim, "apply_dimension"), context=context), template)
    count = result.sizes[ARRAY_DIM]
    result = result.rename({ARRAY_DIM: target}).transpose(*final_dims)
    if target == dim and count == cube.sizes[dim] and dim in cube.coords:
        result = result.assign_coords({dim: cube[dim]})  # the labels (and band metadata) are kept
    else:
        attrs = {k: v for k, v in attrs.items() if k != BANDS_ATTR}  # the band metadata was for other labels
        result = relabel(result, target, np.arange(count), attrs)
    return with_crs(result, cube)


def _callback_array(result: Any, template: xr.DataArray) -> xr.DataArray:
    """The child process' result as an array along ``ARRAY_DIM`` for every pixel of ``template``."""
    if isinstance(result, (list, tuple)):
        result = as_labeled_array(list(result), "apply_dimension", "process")
    elif result is None or is_number(result) or isinstance(result, (bool, np.bool_)):
        result = xr.DataArray([np.nan if result is None else result], dims=(ARRAY_DIM,))
    if not isinstance(result, xr.DataArray):
        raise parameter_invalid(
            "apply_dimension", "process", f"the child process returned {type(result).__name__}, not an array."
        )
    if ARRAY_DIM not in result.dims:  # a single value per pixel is an array of one
        result = result.expand_dims(ARRAY_DIM)
    extra = set(result.dims) - {ARRAY_DIM} - set(template.dims)
    if extra:
        raise parameter_invalid(
            "apply_dimension", "process",
            f"the child process returned values along unknown dimension(s) {', '.join(map(str, extra))}.",
        )
    if result.sizes[ARRAY_DIM] == 0:
        raise parameter_invalid("apply_dimension", "process", "the child process must return at least one value.")
    result = drop_coords_along(result, ARRAY_DIM)
    if template.chunks is not None and result.chunks is None and set(result.dims) != set(template.dims) | {ARRAY_DIM}:
        result = result.chunk()
    return xr.broadcast(result, template)[0]


def trim_cube(data: Any, *, env: ProcessEnv) -> xr.DataArray:
    """Drop labels with nothing but no-data: at the ends of spatial and temporal dimensions, anywhere in others.

    The output's shape depends on the values, so this computes one "has a valid value" vector per
    dimension (one pass over the data, when the graph is evaluated), then selects lazily. Validation
    and estimates (``env.validate_only``) read nothing and keep the cube as it is.
    """
    cube = cube_argument(data, "trim_cube")
    if cube.ndim == 0 or cube.dtype.kind == "b" or env.validate_only:
        return cube
    fill = cube.attrs.get(FILL_VALUE_ATTR)
    valid = cube.notnull() if fill is None else (cube.notnull() & (cube != fill))
    has_valid = [valid.any(dim=[d for d in cube.dims if d != dim]).data for dim in cube.dims]
    vectors = dask.compute(*has_valid)
    selection = {}
    for dim, vector in zip(cube.dims, vectors, strict=True):
        keep = np.flatnonzero(np.asarray(vector))
        if dimension_type(cube, dim) in ("spatial", "temporal") and keep.size:
            keep = np.arange(keep[0], keep[-1] + 1)  # ordered dimensions stay contiguous
        if keep.size != cube.sizes[dim]:
            selection[dim] = keep
    return cube.isel(selection) if selection else cube



PROCESSES = {
    "apply_dimension": apply_dimension,
    "add_dimension": add_dimension,
    "drop_dimension": drop_dimension,
    "rename_dimension": rename_dimension,
    "rename_labels": rename_labels,
    "dimension_labels": dimension_labels,
    "filter_labels": filter_labels,
    "trim_cube": trim_cube,
    "create_data_cube": create_data_cube,
    "flatten_dimensions": flatten_dimensions,
    "unflatten_dimension": unflatten_dimension,
}
