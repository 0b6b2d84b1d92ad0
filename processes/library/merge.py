"""``merge_cubes``: two raster cubes into one, with an overlap resolver where they share labels.

The second cube is first brought onto the first's grid (resampled where the grids differ) and given
the first's dimensions; then dimensions with the same labels are aligned as they are, and the
others are labelled by positions in the union of both cubes' labels, so that xarray aligns them
exactly. Without overlap along one dimension the cubes are concatenated; otherwise the overlapping
values are combined by the resolver, lazily, block by block.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from processes.core.errors import parameter_invalid, process_error
from processes.formats.cube_json import FILL_VALUE_ATTR
from processes.library.dimensions import (
    cube_argument,
    drop_coords_along,
    label_key,
    labels_of_dimension,
    relabel,
    with_crs,
)
from processes.model.raster_cube import (
    BANDS_ATTR,
    TYPE_ATTR,
    band_metadata,
    dimension_type,
    dims_of_type,
    nodata_as_nan,
)
from processes.model.values import is_number

_ORDERED = ("spatial", "temporal")


def merge_cubes(cube1: Any, cube2: Any, overlap_resolver: Any = None, context: Any = None) -> xr.DataArray:
    first = cube_argument(cube1, "merge_cubes", "cube1")
    second = cube_argument(cube2, "merge_cubes", "cube2")
    _check_types(first, second)
    second = _on_grid_of(second, first)
    first, second = _with_dimensions_of(first, second), _with_dimensions_of(second, first)
    second = second.transpose(*first.dims)
    dims = [str(d) for d in first.dims]
    keys1 = {d: [label_key(v) for v in labels_of_dimension(first, d)] for d in dims}
    keys2 = {d: [label_key(v) for v in labels_of_dimension(second, d)] for d in dims}
    union = {d: _union(first, d, keys1[d], keys2[d]) for d in dims}
    shared = {d: _common(keys1[d], keys2[d]) for d in dims}
    overlap = bool(dims) and all(shared[d] for d in dims)
    if overlap and overlap_resolver is None:
        raise process_error(
            "OverlapResolverMissing",
            "The cubes overlap (they share labels in every dimension: "
            f"{', '.join(f'{d}: {len(shared[d])}' for d in dims)}), so merge_cubes needs an `overlap_resolver` "
            "to combine the overlapping values, e.g. max, or rename the labels of one cube first.",
        )
    differing = [d for d in dims if keys1[d] != keys2[d]]
    vector = [d for d in differing if dimension_type(first, d) == "geometry"]
    if vector:
        raise parameter_invalid(
            "merge_cubes", "cube2",
            "vector cubes can only be merged if they have the same geometries; filter both to the same ones first.",
        )
    labels = {d: _labels_by_key(first, second, d) for d in differing}
    attrs = _merged_attrs(first, second, differing)
    # Dimensions with the same labels take cube1's coordinate (and index); the others are labelled
    # by positions in the union of their labels, so that xarray aligns them exactly.
    second = xr.align(first, second, join="override", exclude=differing)[1]
    first, second = _on_union(first, differing, union), _on_union(second, differing, union)
    if not overlap and len(differing) == 1:
        merged = _concatenated(first, second, differing[0])
    else:
        if overlap:
            first, second = nodata_as_nan(first), nodata_as_nan(second)
        positions = {d: _positions_in(union[d], shared[d]) for d in differing} if overlap else None
        merged = _combined(first, second, {d: len(union[d]) for d in differing}, positions, overlap_resolver, context)
    for d in differing:
        merged = relabel(merged, d, [labels[d][k] for k in union[d]], attrs[d])
    merged.attrs = {**second.attrs, **first.attrs}
    if merged.dtype.kind == "f":
        merged.attrs.pop(FILL_VALUE_ATTR, None)
    return with_crs(merged, first if first.rio.crs is not None else second)


def _common(keys1: list[tuple], keys2: list[tuple]) -> list[tuple]:
    known = set(keys2)
    return [key for key in keys1 if key in known]


def _positions_in(keys: list[tuple], wanted: list[tuple]) -> list[int]:
    index = {key: i for i, key in enumerate(keys)}
    return [index[key] for key in wanted]


def _labels_by_key(first: xr.DataArray, second: xr.DataArray, dim: str) -> dict[tuple, Any]:
    """Each label by its key, as cube1 writes it if both have it."""
    labels = {label_key(v): v for v in labels_of_dimension(second, dim)}
    labels.update({label_key(v): v for v in labels_of_dimension(first, dim)})
    return labels


def _check_types(first: xr.DataArray, second: xr.DataArray) -> None:
    for dim in set(first.dims) & set(second.dims):
        if dimension_type(first, dim) != dimension_type(second, dim):
            raise parameter_invalid(
                "merge_cubes", "cube2",
                f"dimension '{dim}' is {dimension_type(second, dim)} in cube2 but {dimension_type(first, dim)} "
                "in cube1; rename one of them (rename_dimension) to keep both.",
            )
    if bool(dims_of_type(first, "geometry")) != bool(dims_of_type(second, "geometry")):
        raise parameter_invalid("merge_cubes", "cube2", "a vector cube can't be merged with a raster cube.")


def _on_grid_of(cube: xr.DataArray, base: xr.DataArray) -> xr.DataArray:
    """``cube`` with spatial labels snapped to the grid of ``base``; another CRS or grid is resampled."""
    crs, base_crs = cube.rio.crs, base.rio.crs
    shared = [d for d in dims_of_type(base, "spatial") if d in cube.dims and dimension_type(cube, d) == "spatial"]
    if not shared:
        return cube
    if crs is not None and base_crs is not None and crs != base_crs:
        return _resampled(cube, base, f"cube2 is in {crs}, cube1 in {base_crs}")
    snapped = {}
    for dim in shared:
        ours, theirs = base[dim].values.astype(float), cube[dim].values.astype(float)
        if len(ours) == len(theirs) and np.allclose(ours, theirs, rtol=0, atol=1e-6 * _step(ours, theirs)):
            snapped[dim] = ours
            continue
        step = _step(ours, theirs)
        offsets = (theirs - ours[0]) / step if len(ours) else theirs
        steps_match = len(theirs) < 2 or np.isclose(abs(np.diff(theirs)).mean(), step, rtol=1e-6)
        if not steps_match or not np.allclose(offsets, np.round(offsets), atol=1e-6):
            return _resampled(cube, base, f"the pixels of dimension '{dim}' are not on the grid of cube1")
        snapped[dim] = ours[0] + np.round(offsets) * step
    for dim, values in snapped.items():
        cube = relabel(cube, dim, values, dict(cube[dim].attrs))
    return cube


def _step(ours: np.ndarray, theirs: np.ndarray) -> float:
    for values in (ours, theirs):
        if len(values) > 1:
            return float(abs(np.diff(values)).mean())
    return 1.0


def _resampled(cube: xr.DataArray, base: xr.DataArray, why: str) -> xr.DataArray:
    from processes.library import resampling  # another concern; resolved at call time

    resample = getattr(resampling, "PROCESSES", {}).get("resample_cube_spatial")
    if resample is None:
        raise parameter_invalid(
            "merge_cubes", "cube2",
            f"{why}; resample cube2 onto cube1 with resample_cube_spatial before merging.",
        )
    return resample(data=cube, target=base)


def _with_dimensions_of(cube: xr.DataArray, other: xr.DataArray) -> xr.DataArray:
    """``cube`` broadcast (lazily) along the dimensions only ``other`` has, with their labels."""
    missing = [d for d in other.dims if d not in cube.dims]
    if not missing:
        return cube
    expanded = cube.expand_dims({d: other.sizes[d] for d in missing})
    expanded = expanded.assign_coords({d: other[d] for d in missing if d in other.coords})
    return expanded


def _union(first: xr.DataArray, dim: str, keys1: list[tuple], keys2: list[tuple]) -> list[tuple]:
    """Labels of cube1 then the new ones of cube2; sorted (in cube1's direction) for spatial and temporal."""
    known = set(keys1)
    union = keys1 + [k for k in keys2 if k not in known]
    if dimension_type(first, dim) not in _ORDERED or len(union) < 2:
        return union
    try:
        ordered = sorted(union)
    except TypeError:  # labels of several types can't be ordered
        return union
    return ordered[::-1] if len(keys1) > 1 and keys1[1] < keys1[0] else ordered


def _merged_attrs(first: xr.DataArray, second: xr.DataArray, dims: list[str]) -> dict[str, dict]:
    attrs = {}
    for dim in dims:
        coord_attrs = {**second[dim].attrs, **first[dim].attrs} if dim in first.coords else {TYPE_ATTR: "other"}
        if dimension_type(first, dim) == "bands":
            coord_attrs[BANDS_ATTR] = {**band_metadata(second), **band_metadata(first)}
        attrs[dim] = coord_attrs
    return attrs


def _on_union(cube: xr.DataArray, dims: list[str], union: dict[str, list[tuple]]) -> xr.DataArray:
    """``cube`` labelled by the positions of its labels in the union."""
    for dim in dims:
        positions = _positions_in(union[dim], [label_key(v) for v in labels_of_dimension(cube, dim)])
        cube = drop_coords_along(cube, dim).assign_coords({dim: positions})
    return cube


def _concatenated(first: xr.DataArray, second: xr.DataArray, dim: str) -> xr.DataArray:
    """Cubes that differ in one dimension's (disjoint) labels, one after the other along it."""
    merged = xr.concat([first, second], dim=dim, coords="minimal", compat="override", join="override")
    order = np.argsort(merged[dim].values, kind="stable")
    return merged if (order == np.arange(len(order))).all() else merged.isel({dim: order})


def _combined(
    first: xr.DataArray, second: xr.DataArray, sizes: dict[str, int], shared: dict[str, list[int]] | None,
    resolver: Any, context: Any,
) -> xr.DataArray:
    """Both cubes on the union of labels: cube1 where it has the labels, else cube2; where both have
    them (the positions ``shared``), what the resolver makes of the two."""
    full = {d: np.arange(n) for d, n in sizes.items()}
    merged = _where_present(first, first.reindex(full), second.reindex(full), full)
    if resolver is None or shared is None:
        return merged
    x, y = first.sel(shared), second.sel(shared)
    resolved = resolver(x=x, y=y, context=context)
    if not isinstance(resolved, xr.DataArray):
        if not (resolved is None or is_number(resolved) or isinstance(resolved, (bool, np.bool_))):
            raise parameter_invalid(
                "merge_cubes", "overlap_resolver", f"the child process returned {type(resolved).__name__}, not a value."
            )
        resolved = xr.full_like(x, np.nan if resolved is None else resolved,
                                dtype=float if resolved is None else np.asarray(resolved).dtype)
    if set(resolved.dims) != set(x.dims):
        raise parameter_invalid("merge_cubes", "overlap_resolver", "the child process must return one value per pixel.")
    resolved = resolved.transpose(*x.dims).assign_coords({d: x[d] for d in x.dims})
    return _where_present(resolved, resolved.reindex(full), merged, full)


def _where_present(part: xr.DataArray, on_union: xr.DataArray, other: xr.DataArray, full: dict) -> xr.DataArray:
    """``on_union`` where ``part`` has labels, else ``other``; the mask is as lazy as the data."""
    mask: xr.DataArray | None = None
    for dim, positions in full.items():
        present = np.isin(positions, part[dim].values)
        if present.all():
            continue
        values: np.ndarray | da.Array = present
        if on_union.chunks is not None:
            values = da.from_array(present, chunks=(on_union.chunksizes[dim],))
        along = xr.DataArray(values, dims=(dim,))
        mask = along if mask is None else mask & along
    return on_union if mask is None else on_union.where(mask, other)



PROCESSES = {"merge_cubes": merge_cubes}
