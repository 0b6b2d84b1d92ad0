"""Zonal statistics: the engine of ``aggregate_spatial``.

Strategy (work is done once per pixel, not once per geometry or per date):

1. The cube's grid is cut into the windows of its spatial chunks. For each window that any
   geometry touches, one task rasterises the geometries there once (GDAL, pixel-centre rule for
   polygons, every touched pixel for lines and points) into a *membership*: the window's pixels
   grouped by geometry. A pixel usually belongs to one geometry; the few pixels where geometries
   overlap are found with a second, additive rasterisation (a coverage count) and resolved exactly
   with shapely, so they appear once in every geometry that holds them. With coverage weights
   (``Statistic.coverage``) polygons take every pixel they overlap, weighted by the covered
   fraction (:mod:`processes.zonal.coverage`).
2. Every data chunk of such a window is reduced in one pass (:mod:`processes.zonal.reduce`).
3. One task per block of the other dimensions combines the windows' partial results into the
   values of all geometries.

A general reducer (any child process graph) instead gets every geometry's values along
``ARRAY_DIM``, padded with NaN (:func:`padded_values`).

Windows no geometry touches are never read. The membership task of a window is shared by all its
chunks, so rasterising happens once per grid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import cast

import dask.array as da
import numpy as np
import rasterio.features
import shapely
from affine import Affine
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from dask.typing import DaskCollection
from rasterio.enums import MergeAlg

from processes.model.geometry import apply_transform
from processes.zonal.coverage import coverage_fractions
from processes.zonal.reduce import Membership, Statistic, combine, gather, reduce_chunk


@dataclass(frozen=True)
class Grid:
    """A regular pixel grid: the transform of its pixel corners and its size."""

    transform: Affine
    height: int
    width: int

    @classmethod
    def from_centres(cls, y: np.ndarray, x: np.ndarray) -> Grid:
        dx = float(x[1] - x[0]) if len(x) > 1 else 1.0
        dy = float(y[1] - y[0]) if len(y) > 1 else -1.0
        origin = Affine.translation(float(x[0]) - dx / 2, float(y[0]) - dy / 2) @ Affine.scale(dx, dy)
        return cls(origin, len(y), len(x))

    def window(self, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[Affine, shapely.Polygon]:
        """The transform of a window's pixels and its outline."""
        transform = self.transform @ Affine.translation(cols[0], rows[0])
        xa, ya = transform @ (0, 0)
        xb, yb = transform @ (cols[1] - cols[0], rows[1] - rows[0])
        return transform, shapely.box(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb))


def is_regular(coords: np.ndarray) -> bool:
    if len(coords) < 3:
        return True
    steps = np.diff(np.asarray(coords, dtype=np.float64))
    return bool(np.allclose(steps, steps[0], rtol=1e-6, atol=0))


# --- 1. membership -------------------------------------------------------------------------------
def polygonal(geoms: np.ndarray) -> np.ndarray:
    return np.isin(shapely.get_type_id(geoms), (3, 6))  # Polygon, MultiPolygon


def _may_share_pixels(geoms: np.ndarray, area: np.ndarray, pixel: float) -> np.ndarray:
    """Geometries that may share a pixel with another one (a superset; the rest can't).

    Polygons share pixels only where their interiors intersect (neighbouring parcels merely
    touch); lines and points share the pixels they touch, so every geometry within a pixel of one
    counts.
    """
    flagged = ~area
    tree = shapely.STRtree(geoms)
    first, second = tree.query(geoms, predicate="intersects")
    pair = first < second
    first, second = first[pair], second[pair]
    both = area[first] & area[second]
    overlapping = ~both
    overlapping[both] = ~shapely.touches(geoms[first[both]], geoms[second[both]])
    flagged[first[overlapping]] = True
    flagged[second[overlapping]] = True
    if (~area).any():
        xmin, ymin, xmax, ymax = shapely.bounds(geoms[~area]).T
        near = shapely.box(xmin - pixel, ymin - pixel, xmax + pixel, ymax + pixel)
        flagged[tree.query(near)[1]] = True
    return flagged


def _rasterize(shapes: list, chosen: np.ndarray, area: np.ndarray, out: np.ndarray, transform: Affine,
               values: np.ndarray | None = None) -> None:
    """Burn ``shapes[chosen]`` into ``out``: their ``values`` (last wins), or 1 added per geometry."""
    for kind, touched in ((area, False), (~area, True)):
        picked = np.flatnonzero(chosen & kind)
        if picked.size == 0:
            continue
        if values is None:
            pairs = [(shapes[k], 1) for k in picked]
            rasterio.features.rasterize(pairs, out=out, transform=transform, all_touched=touched,
                                        merge_alg=MergeAlg.add)
        else:
            pairs = [(shapes[k], int(values[k])) for k in picked]
            rasterio.features.rasterize(pairs, out=out, transform=transform, all_touched=touched)


def window_membership(
    geoms: np.ndarray, ids: np.ndarray, transform: Affine, shape: tuple[int, int],
    straddles: np.ndarray | None = None, coverage: bool = False,
) -> Membership:
    """Which pixels of a window each geometry holds (see the module docstring).

    ``ids`` are the geometries' positions in the full list; ``straddles`` says which reach into
    other windows (their values are kept for order statistics); ``coverage`` weights the pixels
    of polygons by the fraction they cover.
    """
    empty = Membership(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool),
                       np.zeros(0) if coverage else None)
    keep = ~shapely.is_empty(geoms)
    geoms, ids = geoms[keep], ids[keep]
    straddles = straddles[keep] if straddles is not None else np.ones(len(geoms), dtype=bool)
    if len(geoms) == 0 or shape[0] == 0 or shape[1] == 0:
        return empty
    if coverage:
        pixels, owners, weights = _weighted_pixels(geoms, transform, shape)
    else:
        pixels, owners = _centre_pixels(geoms, transform, shape)
        weights = None
    if pixels.size == 0:
        return empty
    # a stable sort by owner keeps pixels ascending within a geometry; radix sort for small ints
    order = np.argsort(owners.astype(np.uint16 if len(geoms) < 2**16 else np.int32), kind="stable")
    owners, pixels = owners[order], pixels[order]
    groups, starts = np.unique(owners, return_index=True)
    return Membership(pixels.astype(np.int64), starts.astype(np.int64), ids[groups].astype(np.int64), straddles[groups],
                      None if weights is None else weights[order])


def _centre_pixels(geoms: np.ndarray, transform: Affine, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(pixel, geometry) pairs by openEO's rule: polygons hold the pixels whose centre they contain,
    lines and points the pixels they touch."""
    area = polygonal(geoms)
    # converted once (burnt up to twice), in C: twice as fast as shapely's __geo_interface__, exact
    shapes = json.loads("[" + ",".join(shapely.to_geojson(geoms)) + "]")
    everything = np.ones(len(geoms), dtype=bool)
    labels = np.zeros(shape, dtype=np.int32)
    _rasterize(shapes, everything, area, labels, transform, np.arange(1, len(geoms) + 1))
    flat_labels = labels.ravel()
    pixels = np.flatnonzero(flat_labels)
    owners = flat_labels[pixels] - 1
    sharing = _may_share_pixels(geoms, area, max(abs(transform.a), abs(transform.e)))
    if sharing.any():
        coverage = np.zeros(shape, dtype=np.int32)
        _rasterize(shapes, sharing, area, coverage, transform)
        shared = np.flatnonzero(coverage.ravel() > 1)
        if shared.size:
            alone = coverage.ravel()[pixels] <= 1
            shared_pixels, shared_owners = _resolve_overlaps(geoms, area, shared, transform, shape[1])
            pixels = np.concatenate([pixels[alone], shared_pixels])
            owners = np.concatenate([owners[alone], shared_owners])
    return pixels, owners


def _weighted_pixels(
    geoms: np.ndarray, transform: Affine, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixel, geometry, weight) triples: polygons with their exact coverage fractions (each polygon on
    its own, so overlaps need no resolving), lines and points by :func:`_centre_pixels` with weight 1."""
    area = polygonal(geoms)
    polygons, others = np.flatnonzero(area), np.flatnonzero(~area)
    pixels, owners, weights = coverage_fractions(geoms[polygons], transform, shape)
    owners = polygons[owners]
    if others.size:
        other_pixels, other_owners = _centre_pixels(geoms[others], transform, shape)
        pixels = np.concatenate([pixels, other_pixels])
        owners = np.concatenate([owners, others[other_owners]])
        weights = np.concatenate([weights, np.ones(len(other_pixels))])
    return pixels, owners, weights


def _collection(array: da.Array) -> DaskCollection:
    # A dask array is a dask collection, but dask's protocol declares ``__dask_scheduler__`` a
    # staticmethod where da.Array has a plain function, so mypy does not see it as one.
    return cast(DaskCollection, array)


def _resolve_overlaps(
    geoms: np.ndarray, area: np.ndarray, shared: np.ndarray, transform: Affine, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (pixel, geometry) pair of the pixels more than one geometry was burnt into."""
    rows, cols = np.divmod(shared, width)
    xs, ys = apply_transform(transform, cols + 0.5, rows + 0.5)
    tree = shapely.STRtree(geoms)
    pairs_pixel, pairs_geom = [], []
    if area.any():  # polygons hold the pixels whose centre they intersect
        hit_pixel, hit_geom = tree.query(shapely.points(xs, ys), predicate="intersects")
        keep = area[hit_geom]
        pairs_pixel.append(hit_pixel[keep])
        pairs_geom.append(hit_geom[keep])
    if (~area).any():  # lines and points hold the pixels they touch
        x0, y0 = apply_transform(transform, cols, rows)
        x1, y1 = apply_transform(transform, cols + 1, rows + 1)
        boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
        hit_pixel, hit_geom = tree.query(boxes, predicate="intersects")
        keep = ~area[hit_geom]
        pairs_pixel.append(hit_pixel[keep])
        pairs_geom.append(hit_geom[keep])
    return shared[np.concatenate(pairs_pixel)], np.concatenate(pairs_geom).astype(np.int64)


# --- the lazy graph ------------------------------------------------------------------------------
def zonal_statistics(data: da.Array, grid: Grid, geoms: np.ndarray, statistic: Statistic) -> da.Array:
    """Lazy ``(geometries, *data.shape[:-2][, 3])`` statistic of ``data`` (``(..., y, x)``) per geometry.

    ``geoms`` are shapely geometries in the grid's CRS (empty ones allowed).
    """
    n_geoms = len(geoms)
    token = tokenize(data.name, grid, statistic, n_geoms, id(geoms))
    membership_name, partial_name, out_name = (f"zonal-{part}-{token}" for part in ("membership", "partial", "result"))
    graph: dict = {}
    found = list(_windows(data, grid, geoms))
    spans = np.bincount(np.concatenate([w[1] for w in found]), minlength=n_geoms) if found else np.zeros(n_geoms)
    windows = []
    for (i, j), candidates, transform, shape in found:
        graph[(membership_name, i, j)] = (
            window_membership, geoms[candidates], candidates, transform, shape, spans[candidates] > 1,
            statistic.coverage,
        )
        windows.append((i, j))
    other_blocks = data.numblocks[:-2]
    extra = ((3,),) if statistic.with_counts else ()
    for index in product(*(range(n) for n in other_blocks)):
        keys = []
        for i, j in windows:
            key = (partial_name, *index, i, j)
            graph[key] = (reduce_chunk, (data.name, *index, i, j), (membership_name, i, j), statistic)
            keys.append(key)
        block_shape = tuple(data.chunks[axis][k] for axis, k in enumerate(index))
        graph[(out_name, 0, *index, *(0,) * len(extra))] = (combine, keys, statistic, n_geoms, block_shape)
    layers = HighLevelGraph.from_collections(out_name, graph, dependencies=[_collection(data)])
    chunks = ((n_geoms,), *data.chunks[:-2], *extra)
    return da.Array(layers, out_name, chunks=chunks, dtype=np.float64)


# --- the general reducer: every geometry's values along an array dimension -----------------------
def _windows(data: da.Array, grid: Grid, geoms: np.ndarray):
    """``((i, j), candidate geometries, transform, shape)`` of every spatial chunk some geometry touches."""
    tree = shapely.STRtree(geoms)
    row_edges = np.cumsum((0, *data.chunks[-2]))
    col_edges = np.cumsum((0, *data.chunks[-1]))
    for i, j in product(range(len(data.chunks[-2])), range(len(data.chunks[-1]))):
        rows, cols = (int(row_edges[i]), int(row_edges[i + 1])), (int(col_edges[j]), int(col_edges[j + 1]))
        transform, outline = grid.window(rows, cols)
        candidates = tree.query(outline, predicate="intersects")
        if candidates.size:  # windows without geometries are never read
            yield (i, j), np.sort(candidates), transform, (rows[1] - rows[0], cols[1] - cols[0])


def _gather_chunk(block: np.ndarray, membership: Membership) -> tuple[np.ndarray, np.ndarray]:
    return gather(block, membership), np.repeat(membership.labels, membership.sizes)


def _pad_block(
    gathered: Sequence[tuple[np.ndarray, np.ndarray]], geometries: np.ndarray, length: int, block_shape: tuple[int, ...]
) -> np.ndarray:
    """(geometries of this block, *block_shape, length): the geometries' values, NaN-padded."""
    n_slices = math.prod(block_shape)
    out = np.full((n_slices, len(geometries), length), np.nan)
    if gathered:
        values = np.concatenate([g[0] for g in gathered], axis=1)
        owners = np.concatenate([g[1] for g in gathered])
        position = np.searchsorted(geometries, owners)
        wanted = (position < len(geometries)) & (geometries[np.minimum(position, len(geometries) - 1)] == owners)
        values, owners, position = values[:, wanted], owners[wanted], position[wanted]
        order = np.argsort(owners, kind="stable")
        values, owners, position = values[:, order], owners[order], position[order]
        _, starts, sizes = np.unique(owners, return_index=True, return_counts=True)
        rank = np.arange(owners.size) - np.repeat(starts, sizes)
        out[:, position, rank] = values
    return np.moveaxis(out, 0, 1).reshape((len(geometries), *block_shape, length))


def padded_values(
    data: da.Array, grid: Grid, geoms: np.ndarray, max_elements: int = 2**24
) -> tuple[da.Array, np.ndarray]:
    """Lazy ``(geometries, *data.shape[:-2], pixels)``: every geometry's pixel values, padded with NaN,
    and the pixel count of every geometry.

    The last axis is as long as the largest geometry's pixel count. Geometries are chunked so one
    block holds about ``max_elements`` values. The geometries are rasterised now (no cube data is
    read) since the length of the last axis must be known.
    """
    memberships = {
        index: window_membership(geoms[candidates], candidates, transform, shape)
        for index, candidates, transform, shape in _windows(data, grid, geoms)
    }
    counts = np.zeros(len(geoms), dtype=np.int64)
    for membership in memberships.values():
        counts[membership.labels] += membership.sizes
    length = max(1, int(counts.max(initial=0)))
    slices = max((math.prod(c) for c in product(*data.chunks[:-2])), default=1)
    per_block = max(1, max_elements // (length * slices))
    geometry_chunks = tuple(min(per_block, len(geoms) - k) for k in range(0, len(geoms), per_block)) or (0,)
    token = tokenize(data.name, grid, len(geoms), id(geoms), "padded")
    gather_name, out_name = f"zonal-gather-{token}", f"zonal-padded-{token}"
    graph: dict = {}
    for index in product(*(range(n) for n in data.numblocks[:-2])):
        keys = []
        for (i, j), membership in memberships.items():
            key = (gather_name, *index, i, j)
            graph[key] = (_gather_chunk, (data.name, *index, i, j), membership)
            keys.append(key)
        block_shape = tuple(data.chunks[axis][k] for axis, k in enumerate(index))
        start = 0
        for g, size in enumerate(geometry_chunks):
            wanted = np.arange(start, start + size)
            graph[(out_name, g, *index, 0)] = (_pad_block, keys, wanted, length, block_shape)
            start += size
    layers = HighLevelGraph.from_collections(out_name, graph, dependencies=[_collection(data)])
    chunks = (geometry_chunks, *data.chunks[:-2], (length,))
    return da.Array(layers, out_name, chunks=chunks, dtype=np.float64), counts
