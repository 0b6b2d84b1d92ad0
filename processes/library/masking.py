"""Masking processes: replace pixels by a raster mask (``mask``) or by geometries (``mask_polygon``,
``filter_spatial``).

All three build one lazy boolean "replace here" array and apply it with ``DataArray.where``, so the
cube stays a single Dask graph:

- ``mask`` brings the mask cube onto the data's pixel grid (nearest neighbour, as
  ``resample_cube_spatial`` with its default method would) and lets xarray broadcast it along the
  dimensions the mask lacks (e.g. one SCL-derived mask over every band and date).
- ``mask_polygon``/``filter_spatial`` rasterise the geometries per chunk (one small rasterise per
  spatial window, see :func:`_rasterised`), so a mask is never held whole in memory.

Replacing with null means the cube's no-data value: NaN for float cubes, the ``_FillValue`` of an
integer cube that has one; other integer and boolean cubes become float cubes with NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import pyproj
import shapely
import xarray as xr
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from processes.core.errors import parameter_invalid, process_error
from processes.model.geometry import (
    WGS84,
    geojson_geometries,
    geometry_mask,
    is_geojson,
    parse_crs,
    polygons_only,
    reproject_geometries,
)
from processes.model.raster_cube import (
    copy_dimension_types,
    describe_dimensions,
    dimension_type,
    is_raster_cube,
    spatial_dims,
)

FILL_VALUE_ATTRS = ("_FillValue", "nodata")


# --- shared ---------------------------------------------------------------------------------------


def _require_raster(value: Any, process: str, parameter: str) -> tuple[xr.DataArray, str, str]:
    """The cube and the names of its (y, x) dimensions."""
    if not is_raster_cube(value):
        raise parameter_invalid(process, parameter, f"expected a raster data cube, got {type(value).__name__}.")
    names = spatial_dims(value)
    if names is None:
        raise process_error(
            "DimensionMissing",
            f"'{process}' needs a raster cube with spatial dimensions x and y; the cube in '{parameter}' has "
            f"{describe_dimensions(value)}.",
        )
    return value, names[0], names[1]


def _fill_value(cube: xr.DataArray) -> Any:
    """The no-data value recorded for an integer cube (attribute or encoding), or None."""
    for attr in FILL_VALUE_ATTRS:
        if cube.attrs.get(attr) is not None:
            return cube.attrs[attr]
    return cube.encoding.get("_FillValue")


def _is_nodata(cube: xr.DataArray) -> xr.DataArray | None:
    """Where ``cube`` holds no-data, or None if it can't hold any."""
    if cube.dtype.kind in "fc":
        return cube.isnull()
    fill = _fill_value(cube) if cube.dtype.kind in "iu" else None
    return cube == fill if fill is not None else None


def _replace(cube: xr.DataArray, where: xr.DataArray, replacement: Any, keep_nodata: bool) -> xr.DataArray:
    """``cube`` with the pixels where ``where`` is true replaced (null: the cube's no-data value)."""
    if keep_nodata and replacement is not None:
        nodata = _is_nodata(cube)
        if nodata is not None:
            where = where & ~nodata
    if replacement is None:
        fill = _fill_value(cube) if cube.dtype.kind in "iu" else None
        if fill is None and cube.dtype.kind not in "fc":  # integers without no-data value, booleans
            cube = cube.astype(np.float32 if cube.dtype.kind == "b" else np.result_type(cube.dtype, np.float32))
        replacement = fill if fill is not None else np.nan
    return cube.where(~where, replacement).transpose(*cube.dims)


def _spatial_chunks(cube: xr.DataArray, y: str, x: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if cube.chunks is None:
        return (cube.sizes[y],), (cube.sizes[x],)
    return cube.chunks[cube.dims.index(y)], cube.chunks[cube.dims.index(x)]


# --- mask ------------------------------------------------------------------------------------------


def mask(data: Any, mask: Any, replacement: Any = None) -> xr.DataArray:
    cube, y, x = _require_raster(data, "mask", "data")
    mask_cube, my, mx = _require_raster(mask, "mask", "mask")
    grid_mask = _on_data_grid(mask_cube, my, mx, cube, y, x)
    for dim in grid_mask.dims:
        if dim in (y, x):
            continue
        _check_compatible_dimension(cube, grid_mask, str(dim))
    grid_mask = grid_mask.assign_coords({d: cube[d] for d in grid_mask.dims})
    return _replace(cube, _truthy(grid_mask), replacement, keep_nodata=False)


def _truthy(values: xr.DataArray) -> xr.DataArray:
    """Pixels that mask: true, or non-zero numbers; no-data (NaN) in the mask masks nothing."""
    if values.dtype.kind == "b":
        return values
    if values.dtype.kind in "iufc":
        return (values != 0) & values.notnull()
    return xr.apply_ufunc(
        np.vectorize(lambda v: bool(v) if isinstance(v, (bool, int, float, np.number)) and v == v else False,
                     otypes=[bool]),
        values,
        dask="parallelized",
        output_dtypes=[bool],
    )


def _check_compatible_dimension(cube: xr.DataArray, mask_cube: xr.DataArray, dim: str) -> None:
    if dim not in cube.dims:
        raise process_error(
            "IncompatibleDataCubes",
            f"The mask has dimension '{dim}', which the data cube lacks (it has {describe_dimensions(cube)}). "
            f"Reduce or drop it from the mask first (e.g. reduce_dimension or drop_dimension).",
        )
    if dimension_type(cube, dim) != dimension_type(mask_cube, dim):
        raise process_error(
            "IncompatibleDataCubes",
            f"Dimension '{dim}' is of type {dimension_type(mask_cube, dim)} in the mask but "
            f"{dimension_type(cube, dim)} in the data cube.",
        )
    ours, theirs = list(cube[dim].values), list(mask_cube[dim].values)
    if ours != theirs:
        hint = ""
        if dimension_type(cube, dim) == "bands" and len(theirs) == 1:
            hint = (
                " To apply a one-band mask to every band, remove the mask's bands dimension first, e.g. with "
                "reduce_dimension (array_element index 0) or drop_dimension."
            )
        raise process_error(
            "IncompatibleDataCubes",
            f"The labels of dimension '{dim}' differ: the data cube has {_short(ours)}, the mask {_short(theirs)}. "
            f"A mask must have the same labels as the data along every non-spatial dimension it has.{hint}",
        )


def _short(labels: list[Any]) -> str:
    shown = ", ".join(str(v) for v in labels[:6])
    return f"[{shown}{', …' if len(labels) > 6 else ''}] ({len(labels)} labels)"


def _on_data_grid(
    mask_cube: xr.DataArray, my: str, mx: str, cube: xr.DataArray, y: str, x: str
) -> xr.DataArray:
    """The mask on the data's pixel grid, spatial dimensions named as the data's.

    Same grid: the mask as it is. Otherwise nearest neighbour, lazily; data pixels outside the mask
    get NaN (no-data), which masks nothing.
    """
    mask_crs, data_crs = mask_cube.rio.crs, cube.rio.crs
    mask_cube = mask_cube.reset_coords(drop=True)
    if mask_crs is not None and data_crs is not None and pyproj.CRS(mask_crs) != pyproj.CRS(data_crs):
        return _reprojected(mask_cube, my, mx, pyproj.CRS(mask_crs), cube, y, x, pyproj.CRS(data_crs))
    if mask_cube.sizes[my] == 0 or mask_cube.sizes[mx] == 0:
        raise process_error("IncompatibleDataCubes", "The mask has no pixels: its spatial dimensions are empty.")
    iy, outside_y = _nearest(mask_cube[my].values, cube[y].values)
    ix, outside_x = _nearest(mask_cube[mx].values, cube[x].values)
    same = np.array_equal(iy, np.arange(mask_cube.sizes[my])) and np.array_equal(ix, np.arange(mask_cube.sizes[mx]))
    same = same and not outside_y.any() and not outside_x.any()
    mask_cube = mask_cube.drop_vars([my, mx])
    if (my, mx) != (y, x):
        mask_cube = mask_cube.rename({my: y, mx: x})
    if same:
        return mask_cube
    resampled = mask_cube.isel({y: iy, x: ix})
    outside = xr.DataArray(outside_y[:, None] | outside_x[None, :], dims=(y, x))
    if outside.any():
        resampled = resampled.astype(np.result_type(resampled.dtype, np.float32)).where(~outside)
    return resampled


def _nearest(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each target coordinate the index of the nearest source pixel centre, and whether it lies
    outside the source pixels (more than half a pixel beyond the first/last centre)."""
    source = np.asarray(source, dtype=float)
    target = np.asarray(target, dtype=float)
    if len(source) == 1:
        return np.zeros(len(target), dtype=int), np.zeros(len(target), dtype=bool)
    order = np.argsort(source)
    ordered = source[order]
    pos = np.clip(np.searchsorted(ordered, target), 1, len(ordered) - 1)
    left, right = ordered[pos - 1], ordered[pos]
    pick = np.where(np.abs(target - left) <= np.abs(right - target), pos - 1, pos)
    half = np.abs(np.diff(ordered)).max() / 2
    outside = (target < ordered[0] - half) | (target > ordered[-1] + half)
    return order[pick], outside


def _reprojected(
    mask_cube: xr.DataArray,
    my: str,
    mx: str,
    mask_crs: pyproj.CRS,
    cube: xr.DataArray,
    y: str,
    x: str,
    data_crs: pyproj.CRS,
) -> xr.DataArray:
    """Nearest-neighbour reprojection of the mask onto the data grid, one Dask task per data chunk.

    Each task reads only the mask window that its chunk's footprint covers; the window is found
    at graph-build time from the chunk's reprojected outline.
    """
    mask_cube = mask_cube.transpose(*[d for d in mask_cube.dims if d not in (my, mx)], my, mx)
    mask_cube = mask_cube.astype(np.result_type(mask_cube.dtype, np.float32))
    source = mask_cube.data if isinstance(mask_cube.data, da.Array) else da.from_array(mask_cube.data)
    to_mask = pyproj.Transformer.from_crs(data_crs, mask_crs, always_xy=True)
    my_values, mx_values = mask_cube[my].values.astype(float), mask_cube[mx].values.astype(float)
    ys, xs = cube[y].values.astype(float), cube[x].values.astype(float)
    chunks_y, chunks_x = _spatial_chunks(cube, y, x)
    lead = source.shape[:-2]
    rows = []
    y0 = 0
    for ny in chunks_y:
        row = []
        x0 = 0
        for nx in chunks_x:
            gx, gy = np.meshgrid(xs[x0:x0 + nx], ys[y0:y0 + ny])
            outline_x, outline_y = [np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]]) for g in (gx, gy)]
            ex, ey = to_mask.transform(outline_x, outline_y)
            iy, _ = _nearest(my_values, np.asarray(ey))
            ix, _ = _nearest(mx_values, np.asarray(ex))
            wy = slice(int(iy.min()), int(iy.max()) + 1)
            wx = slice(int(ix.min()), int(ix.max()) + 1)
            block = da.map_blocks(
                _gather_nearest,
                source[..., wy, wx].rechunk(source[..., wy, wx].shape),
                xs[x0:x0 + nx],
                ys[y0:y0 + ny],
                my_values[wy],
                mx_values[wx],
                to_mask,
                chunks=(*lead, ny, nx),
                dtype=source.dtype,
                meta=np.array((), dtype=source.dtype),
            )
            row.append(block)
            x0 += nx
        rows.append(row)
        y0 += ny
    array = da.block(rows) if rows else da.zeros((*lead, 0, 0))
    other = [d for d in mask_cube.dims if d not in (my, mx)]
    coords = {d: mask_cube[d] for d in other if d in mask_cube.coords}
    return xr.DataArray(array, dims=(*other, y, x), coords=coords)


def _gather_nearest(window: np.ndarray, xs, ys, my_values, mx_values, transformer) -> np.ndarray:
    gx, gy = np.meshgrid(xs, ys)
    tx, ty = transformer.transform(gx.ravel(), gy.ravel())
    iy, out_y = _nearest(my_values, np.asarray(ty))
    ix, out_x = _nearest(mx_values, np.asarray(tx))
    values = window[..., iy, ix].astype(window.dtype)
    values[..., out_y | out_x] = np.nan
    return values.reshape(*window.shape[:-2], len(ys), len(xs))


# --- geometries -----------------------------------------------------------------------------------


def _geometries(value: Any, process: str, parameter: str) -> tuple[list[BaseGeometry], pyproj.CRS]:
    """Geometries and their CRS from GeoJSON, a GeoDataFrame/GeoSeries or a vector cube."""
    if is_geojson(value):
        crs = WGS84
        named = value.get("crs") if isinstance(value, Mapping) else None  # pre-RFC 7946 GeoJSON
        if isinstance(named, Mapping) and isinstance(named.get("properties"), Mapping):
            crs = parse_crs(named["properties"].get("name"), process, parameter)
        return _flatten(geojson_geometries(value, process, parameter)), crs
    geometry = getattr(value, "geometry", None)
    if geometry is not None and hasattr(value, "crs") and not isinstance(value, (xr.DataArray, xr.Dataset)):
        crs = pyproj.CRS(value.crs) if value.crs is not None else WGS84
        return _flatten([g for g in geometry if g is not None and not g.is_empty]), crs
    if isinstance(value, (xr.DataArray, xr.Dataset)):
        for dim in value.dims:
            if dim in value.coords and (
                dimension_type(value, dim) == "geometry"
                or (value[dim].size and isinstance(value[dim].values[0], BaseGeometry))
            ):
                index = value.xindexes.get(dim)
                index_crs = getattr(index, "crs", None)
                crs = pyproj.CRS(index_crs) if index_crs is not None else WGS84
                geoms = [g for g in value[dim].values if isinstance(g, BaseGeometry) and not g.is_empty]
                return _flatten(geoms), crs
    raise parameter_invalid(
        process, parameter, f"expected GeoJSON or a vector data cube, got {type(value).__name__}."
    )


def _flatten(geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    """Geometry collections as their parts (and dicts as shapely geometries)."""
    flat: list[BaseGeometry] = []
    for geom in geoms:
        geom = shape(geom) if isinstance(geom, Mapping) else geom
        if geom.geom_type == "GeometryCollection":
            flat.extend(_flatten(list(geom.geoms)))
        elif not geom.is_empty:
            flat.append(geom)
    return flat


def _native(geoms: list[BaseGeometry], crs: pyproj.CRS, cube: xr.DataArray) -> list[BaseGeometry]:
    target = cube.rio.crs
    return reproject_geometries(geoms, crs, pyproj.CRS(target)) if target is not None else geoms


def _inside(
    cube: xr.DataArray, y: str, x: str, geoms: list[BaseGeometry], all_touched: bool = False
) -> xr.DataArray:
    """Lazy (y, x) boolean: pixel centre inside a polygon (or, ``all_touched``, the pixel touched)."""
    dy, dx = _resolution(cube, y, x)
    array = geometry_mask(geoms, cube[y].values, cube[x].values, _spatial_chunks(cube, y, x), resolution=(dx, dy),
                          all_touched=all_touched)
    return xr.DataArray(array, dims=(y, x), coords={y: cube[y], x: cube[x]})


def _resolution(cube: xr.DataArray, y: str, x: str) -> tuple[float, float]:
    """(dy, dx) from the coordinates, or from the cube's transform if an axis has one pixel."""
    steps = []
    for dim, fallback_index in ((y, 1), (x, 0)):
        values = cube[dim].values
        if len(values) > 1:
            steps.append(float(values[1] - values[0]))
            continue
        try:
            steps.append(float(cube.rio.resolution()[fallback_index]))
        except Exception:  # no transform recorded: assume unit pixels
            steps.append(-1.0 if dim == y else 1.0)
    return steps[0], steps[1]


# --- mask_polygon, filter_spatial -----------------------------------------------------------------


def mask_polygon(data: Any, mask: Any, replacement: Any = None, inside: bool = False) -> xr.DataArray:
    cube, y, x = _require_raster(data, "mask_polygon", "data")
    geoms, crs = _geometries(mask, "mask_polygon", "mask")
    polygons = polygons_only(geoms, "mask_polygon", "mask")
    if cube.sizes[y] == 0 or cube.sizes[x] == 0:
        return cube
    within = _inside(cube, y, x, _native(polygons, crs, cube))
    return _replace(cube, within if inside else ~within, replacement, keep_nodata=True)


def filter_spatial(data: Any, geometries: Any) -> xr.DataArray:
    cube, y, x = _require_raster(data, "filter_spatial", "data")
    geoms, crs = _geometries(geometries, "filter_spatial", "geometries")
    if not geoms:
        raise parameter_invalid("filter_spatial", "geometries", "the GeoJSON holds no (non-empty) geometry.")
    native = _native(geoms, crs, cube)
    polygons = [g for g in native if g.geom_type in ("Polygon", "MultiPolygon")]
    others = [g for g in native if g.geom_type not in ("Polygon", "MultiPolygon")]
    # pixels outside the geometries' bounding box are dropped: for polygons those whose centre lies
    # outside it, for points and lines those the box does not touch
    keep_y = np.zeros(cube.sizes[y], dtype=bool)
    keep_x = np.zeros(cube.sizes[x], dtype=bool)
    for group, half_pixel in ((polygons, False), (others, True)):
        if group:
            in_y, in_x = _within_bounds(cube, y, x, group, half_pixel)
            keep_y |= in_y
            keep_x |= in_x
    window = {y: _span(keep_y), x: _span(keep_x)}
    cropped = cube.isel(window)
    if cropped.sizes[y] == 0 or cropped.sizes[x] == 0:
        return cropped
    # rasterised on the whole grid, whose resolution is known even if the crop is one pixel wide;
    # Dask computes only the chunks of the crop
    retained = None
    if polygons:
        retained = _inside(cube, y, x, polygons)
    if others:
        touched = _inside(cube, y, x, others, all_touched=True)
        retained = touched if retained is None else retained | touched
    assert retained is not None  # geoms is not empty, so polygons or others is not either
    return _replace(cropped, ~retained.isel(window), None, keep_nodata=False)


def _within_bounds(
    cube: xr.DataArray, y: str, x: str, geoms: list[BaseGeometry], half_pixel: bool
) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = shapely.total_bounds(np.asarray(geoms, dtype=object))
    result = []
    for dim, low, high in ((y, south, north), (x, west, east)):
        centres = cube[dim].values.astype(float)
        margin = np.abs(np.diff(centres)).max() / 2 if half_pixel and len(centres) > 1 else 0.0
        result.append((centres >= low - margin) & (centres <= high + margin))
    return result[0], result[1]


def _span(keep: np.ndarray) -> slice:
    """The index range from the first to the last kept pixel (empty if none)."""
    where = np.flatnonzero(keep)
    return slice(int(where[0]), int(where[-1]) + 1) if where.size else slice(0, 0)


def apply_polygon(data: Any, geometries: Any, process: Any, mask_value: Any = None, context: Any = None,
                  ) -> xr.DataArray:
    """The child process over one sub-cube per polygon (pixel centres inside it, the rest ``mask_value``).

    Each sub-cube is the polygon's bounding window of the cube; the results are put back in place.
    Pixels of no polygon get ``mask_value`` (default: no-data). Polygons sharing a pixel are refused
    (``GeometriesOverlap``), as the spec asks, so no pixel is processed twice.
    """
    cube, y, x = _require_raster(data, "apply_polygon", "data")
    geoms, crs = _geometries(geometries, "apply_polygon", "geometries")
    polygons = [g for g in _native(polygons_only(geoms, "apply_polygon", "geometries"), crs, cube) if not g.is_empty]
    if not polygons:
        raise parameter_invalid("apply_polygon", "geometries", "the vector data holds no (non-empty) polygon.")
    fill = np.nan if mask_value is None else mask_value
    masks = [_inside(cube, y, x, [polygon]) for polygon in polygons]
    windows = []
    for polygon in polygons:
        in_y, in_x = _within_bounds(cube, y, x, [polygon], half_pixel=False)
        windows.append({y: _span(in_y), x: _span(in_x)})
    _check_no_overlap(masks, windows, y, x)
    pieces = []
    for inside, window in zip(masks, windows, strict=True):
        sub = cube.isel(window)
        if sub.sizes[y] == 0 or sub.sizes[x] == 0:
            continue
        within = inside.isel(window)
        result = process(data=sub.where(within, fill), context=context)
        if not isinstance(result, xr.DataArray) or set(result.dims) != set(sub.dims) or any(
                result.sizes[d] != sub.sizes[d] for d in sub.dims):
            raise parameter_invalid("apply_polygon", "process", "the child process must return a data cube of the "
                                    "same dimensions and size as the sub-cube it was given.")
        pieces.append(result.transpose(*sub.dims).where(within).reindex_like(cube))
    covered = masks[0]
    for inside in masks[1:]:
        covered = covered | inside
    combined = pieces[0] if pieces else xr.full_like(cube, np.nan, dtype="float64")
    for piece in pieces[1:]:
        combined = combined.fillna(piece)
    combined = combined.where(covered, fill)
    combined = copy_dimension_types(cube, combined)
    return combined.rio.write_crs(cube.rio.crs) if cube.rio.crs is not None else combined


def _check_no_overlap(masks: list[xr.DataArray], windows: list[dict], y: str, x: str) -> None:
    """``GeometriesOverlap`` if two polygons hold the same pixel centre (checked on their common window)."""
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            common = {}
            for dim in (y, x):
                a, b = windows[i][dim], windows[j][dim]
                start, stop = max(a.start, b.start), min(a.stop, b.stop)
                if start >= stop:
                    break
                common[dim] = slice(start, stop)
            else:
                if bool((masks[i].isel(common) & masks[j].isel(common)).any()):
                    raise process_error(
                        "GeometriesOverlap",
                        f"Polygons {i} and {j} share pixels; apply_polygon processes every pixel once, so the "
                        "polygons must not overlap (merge or split them first).",
                    )


PROCESSES = {
    "apply_polygon": apply_polygon,
    "mask": mask,
    "mask_polygon": mask_polygon,
    "filter_spatial": filter_spatial,
}
