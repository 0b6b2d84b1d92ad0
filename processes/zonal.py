"""Zonal statistics: the engine of ``aggregate_spatial``.

Strategy (work is done once per pixel, not once per geometry or per date):

1. The cube's grid is cut into the windows of its spatial chunks. For each window that any
   geometry touches, one task rasterises the geometries there once (GDAL, pixel-centre rule for
   polygons, every touched pixel for lines and points) into a *membership*: the window's pixels
   grouped by geometry. A pixel usually belongs to one geometry; the few pixels where geometries
   overlap are found with a second, additive rasterisation (a coverage count) and resolved exactly
   with shapely, so they appear once in every geometry that holds them.
2. Every data chunk of such a window is reduced in one pass: its values are gathered in membership
   order and reduced per group with ``ufunc.reduceat`` for all (time, band, …) slices of the
   chunk at once — sums, valid counts, minima, maxima, and per-chunk means and squared deviations
   for the variance (combined with Chan's formula, which stays exact where a sum of squares would
   cancel). Median and quantiles sort each chunk's valid values by (geometry, value) with one
   sort of 64-bit keys; a geometry lying in one window gets its quantile there, only the values of
   geometries that straddle windows are kept to be merged.
3. One task per block of the other dimensions combines the windows' partial results into the
   values of all geometries.

A general reducer (any child process graph) instead gets every geometry's values along
``ARRAY_DIM``, padded with NaN (:func:`padded_values`).

Windows no geometry touches are never read. The membership task of a window is shared by all its
chunks, so rasterising happens once per grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

import dask.array as da
import numpy as np
import rasterio.features
import shapely
from affine import Affine
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from rasterio.enums import MergeAlg

ORDER_STATISTICS = ("median", "quantile")
"""Statistics that need every value of a geometry (not a mergeable summary)."""
STATISTICS = ("mean", "sum", "count", "min", "max", "variance", "sd", *ORDER_STATISTICS)


@dataclass(frozen=True)
class Statistic:
    """What to compute per geometry: a recognised single-process reducer and its arguments."""

    name: str
    """One of :data:`STATISTICS`."""
    ignore_nodata: bool = True
    """False: a geometry with any no-data pixel gets no-data (``count`` ignores this)."""
    count_all: bool = False
    """``count`` with ``condition: true``: all pixels, valid or not."""
    probability: float = 0.5
    """For ``quantile`` (and ``median``)."""
    with_counts: bool = False
    """Also return the total and the valid pixel count (``target_dimension``): a last axis of 3."""


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
@dataclass(frozen=True)
class Membership:
    """A window's pixels grouped by geometry: ``pixels[starts[k]:starts[k+1]]`` belong to ``labels[k]``."""

    pixels: np.ndarray
    """Flat (row-major) pixel indices within the window, grouped by geometry."""
    starts: np.ndarray
    """Start of each geometry's group in ``pixels``."""
    labels: np.ndarray
    """The geometries (positions in the full list) of the groups, ascending."""
    straddles: np.ndarray | None = None
    """Per group: whether the geometry reaches into other windows too."""

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(np.append(self.starts, len(self.pixels)))


def _polygonal(geoms: np.ndarray) -> np.ndarray:
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
    geoms: np.ndarray, ids: np.ndarray, transform: Affine, shape: tuple[int, int], straddles: np.ndarray | None = None
) -> Membership:
    """Which pixels of a window each geometry holds (see the module docstring).

    ``ids`` are the geometries' positions in the full list; ``straddles`` says which reach into
    other windows (their values are kept for order statistics).
    """
    empty = Membership(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))
    keep = ~shapely.is_empty(geoms)
    geoms, ids = geoms[keep], ids[keep]
    straddles = straddles[keep] if straddles is not None else np.ones(len(geoms), dtype=bool)
    if len(geoms) == 0 or shape[0] == 0 or shape[1] == 0:
        return empty
    area = _polygonal(geoms)
    shapes = [g.__geo_interface__ for g in geoms]  # converted once, burnt up to twice
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
    if pixels.size == 0:
        return empty
    # a stable sort by owner keeps pixels ascending within a geometry; radix sort for small ints
    order = np.argsort(owners.astype(np.uint16 if len(geoms) < 2**16 else np.int32), kind="stable")
    owners, pixels = owners[order], pixels[order]
    groups, starts = np.unique(owners, return_index=True)
    return Membership(pixels.astype(np.int64), starts.astype(np.int64), ids[groups].astype(np.int64), straddles[groups])


def _resolve_overlaps(
    geoms: np.ndarray, area: np.ndarray, shared: np.ndarray, transform: Affine, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (pixel, geometry) pair of the pixels more than one geometry was burnt into."""
    rows, cols = np.divmod(shared, width)
    xs, ys = transform @ (cols + 0.5, rows + 0.5)
    tree = shapely.STRtree(geoms)
    pairs_pixel, pairs_geom = [], []
    if area.any():  # polygons hold the pixels whose centre they intersect
        hit_pixel, hit_geom = tree.query(shapely.points(xs, ys), predicate="intersects")
        keep = area[hit_geom]
        pairs_pixel.append(hit_pixel[keep])
        pairs_geom.append(hit_geom[keep])
    if (~area).any():  # lines and points hold the pixels they touch
        x0, y0 = transform @ (cols, rows)
        x1, y1 = transform @ (cols + 1, rows + 1)
        boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
        hit_pixel, hit_geom = tree.query(boxes, predicate="intersects")
        keep = ~area[hit_geom]
        pairs_pixel.append(hit_pixel[keep])
        pairs_geom.append(hit_geom[keep])
    return shared[np.concatenate(pairs_pixel)], np.concatenate(pairs_geom).astype(np.int64)


# --- 2. one pass per chunk -----------------------------------------------------------------------
@dataclass
class Partial:
    """Per-geometry summaries of one chunk: arrays of shape (slices, groups), by ``labels``."""

    labels: np.ndarray
    total: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    values: list[tuple[np.ndarray, np.ndarray]] | None = None
    """For order statistics: per slice, the valid values and their geometries."""


def _gather(block: np.ndarray, membership: Membership) -> np.ndarray:
    """The chunk's values of the membership's pixels, as (slices, pixels) floats."""
    flat = block.reshape(-1, block.shape[-2] * block.shape[-1])
    values = flat[:, membership.pixels]
    return values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)


def reduce_chunk(block: np.ndarray, membership: Membership, statistic: Statistic) -> Partial:
    starts = membership.starts
    partial = Partial(membership.labels, membership.sizes)
    if len(starts) == 0:
        return partial
    name = statistic.name
    n_slices = math.prod(block.shape[:-2])
    complete = block.dtype.kind != "f" or not np.isnan(block).any()  # no no-data: skip the masking passes
    if name == "count":  # only the no-data mask is needed
        if complete:
            partial.parts["valid"] = np.broadcast_to(partial.total, (n_slices, len(starts)))
        else:
            missing = np.isnan(block).reshape(n_slices, -1)[:, membership.pixels]
            partial.parts["valid"] = partial.total - np.add.reduceat(missing, starts, axis=1, dtype=np.int64)
        return partial
    values = _gather(block, membership)
    valid = np.ones(values.shape, dtype=bool) if complete else ~np.isnan(values)
    n_valid = (np.broadcast_to(partial.total, (n_slices, len(starts))) if complete
               else np.add.reduceat(valid, starts, axis=1, dtype=np.int64))
    partial.parts["valid"] = n_valid
    if name in ("mean", "sum", "variance", "sd"):
        zeroed = values if complete else np.where(valid, values, 0)
        sums = np.add.reduceat(zeroed, starts, axis=1, dtype=np.float64)
        partial.parts["sum"] = sums
        if name in ("variance", "sd"):
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.nan_to_num(sums / n_valid)
            deviation = values - np.repeat(means, partial.total, axis=1)
            if not complete:
                deviation[~valid] = 0
            partial.parts["m2"] = np.add.reduceat(deviation * deviation, starts, axis=1)
    elif name == "min":
        partial.parts["min"] = np.fmin.reduceat(values, starts, axis=1)
    elif name == "max":
        partial.parts["max"] = np.fmax.reduceat(values, starts, axis=1)
    elif name in ORDER_STATISTICS:
        _order_statistics(partial, values, valid, membership, statistic.probability)
    return partial


def _order_statistics(
    partial: Partial, values: np.ndarray, valid: np.ndarray, membership: Membership, probability: float
) -> None:
    """The quantile of every group, and the sorted values of the groups that straddle windows."""
    n_groups = len(membership.labels)
    local = np.repeat(np.arange(n_groups, dtype=np.int32), membership.sizes)
    quantiles = np.full((values.shape[0], n_groups), np.nan)
    kept = []
    straddling = membership.straddles if membership.straddles is not None else np.ones(n_groups, dtype=bool)
    for s in range(values.shape[0]):
        whole = bool(valid[s].all())
        ordered, owners = sort_grouped(values[s] if whole else values[s][valid[s]], local if whole else local[valid[s]])
        sizes = np.bincount(owners, minlength=n_groups)
        groups = np.flatnonzero(sizes)
        starts = (np.cumsum(sizes) - sizes)[groups]
        quantiles[s, groups] = quantile_of_sorted(ordered, starts, sizes[groups], probability)
        if straddling.any():
            wanted = np.repeat(straddling, sizes)
            kept.append((ordered[wanted], membership.labels[owners[wanted]]))
        else:
            kept.append((ordered[:0], membership.labels[:0]))
    partial.parts["quantile"] = quantiles
    partial.values = kept


def sort_grouped(values: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` sorted by (owner, value), and their owners.

    For float32 values one sort of 64-bit keys does it (owner in the high half, the value's bits
    made order-preserving in the low half): an order of magnitude faster than ``np.lexsort``.
    """
    if values.size == 0:
        return values, owners
    if values.dtype == np.float32 and owners.max() < 2**31:
        bits = values.view(np.uint32)
        sign = bits >> np.uint32(31)  # negative floats: all bits flipped; positive: the sign bit
        keys = owners.astype(np.uint64)
        keys <<= np.uint64(32)
        keys |= bits ^ ((np.uint32(0) - sign) | np.uint32(0x80000000))
        keys.sort()
        low = keys.astype(np.uint32)
        sign = (low >> np.uint32(31)) ^ np.uint32(1)
        keys >>= np.uint64(32)
        return (low ^ ((np.uint32(0) - sign) | np.uint32(0x80000000))).view(np.float32), keys.view(np.int64)
    order = np.argsort(values, kind="stable")
    order = order[np.argsort(owners[order], kind="stable")]
    return values[order], owners[order]


def quantile_of_sorted(values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, probability: float) -> np.ndarray:
    """Type-7 sample quantile of each sorted group ``values[start:start + size]`` (numpy's default)."""
    position = (sizes - 1) * probability
    below = np.floor(position).astype(np.int64)
    fraction = position - below
    above = np.minimum(below + 1, sizes - 1)
    low, high = values[starts + below].astype(np.float64), values[starts + above].astype(np.float64)
    return np.where(fraction == 0, low, low + (high - low) * fraction)


# --- 3. combining the windows --------------------------------------------------------------------
def combine(partials: Sequence[Partial], statistic: Statistic, n_geoms: int, block_shape: tuple[int, ...]) -> np.ndarray:
    """The statistic of every geometry for one block of the other dimensions: (geometries, *block_shape[, 3])."""
    n_slices = math.prod(block_shape)
    total = np.zeros(n_geoms, dtype=np.int64)
    valid = np.zeros((n_slices, n_geoms), dtype=np.int64)
    for p in partials:
        total[p.labels] += p.total
        if "valid" in p.parts:
            valid[:, p.labels] += p.parts["valid"]
    name = statistic.name
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "count":
            result = np.broadcast_to(total, valid.shape).astype(np.float64) if statistic.count_all else valid.astype(
                np.float64)
        elif name in ("mean", "sum"):
            sums = _summed(partials, "sum", n_slices, n_geoms)
            result = sums / valid if name == "mean" else np.where(valid > 0, sums, np.nan)
        elif name in ("min", "max"):
            result = _extremes(partials, name, n_slices, n_geoms)
        elif name in ("variance", "sd"):
            result = _variance(partials, n_slices, n_geoms)
            if name == "sd":
                result = np.sqrt(result)
        else:
            result = _quantiles(partials, statistic.probability, n_slices, n_geoms)
        if not statistic.ignore_nodata and name != "count":
            result = np.where(valid < total, np.nan, result)
    result = np.where(total > 0, result, np.nan)  # geometries without any pixel of the grid
    out = result.T.reshape((n_geoms, *block_shape))
    if statistic.with_counts:
        totals = np.broadcast_to(total[:, None], (n_geoms, n_slices)).reshape(out.shape)
        out = np.stack([out, totals.astype(np.float64), valid.T.reshape(out.shape).astype(np.float64)], axis=-1)
    return out


def _summed(partials: Sequence[Partial], key: str, n_slices: int, n_geoms: int) -> np.ndarray:
    acc = np.zeros((n_slices, n_geoms))
    for p in partials:
        if key in p.parts:
            acc[:, p.labels] += p.parts[key]
    return acc


def _extremes(partials: Sequence[Partial], name: str, n_slices: int, n_geoms: int) -> np.ndarray:
    pick = np.fmin if name == "min" else np.fmax
    acc = np.full((n_slices, n_geoms), np.nan)
    for p in partials:
        if name in p.parts:
            acc[:, p.labels] = pick(acc[:, p.labels], p.parts[name])
    return acc


def _variance(partials: Sequence[Partial], n_slices: int, n_geoms: int) -> np.ndarray:
    """Sample variance from per-chunk (count, mean, squared deviations), merged with Chan's formula."""
    n = np.zeros((n_slices, n_geoms))
    mean = np.zeros((n_slices, n_geoms))
    m2 = np.zeros((n_slices, n_geoms))
    for p in partials:
        if "m2" not in p.parts:
            continue
        n_b = p.parts["valid"].astype(np.float64)
        mean_b = np.where(n_b > 0, p.parts["sum"] / np.where(n_b > 0, n_b, 1), 0.0)
        n_a, mean_a, m2_a = n[:, p.labels], mean[:, p.labels], m2[:, p.labels]
        n_ab = n_a + n_b
        safe = np.where(n_ab > 0, n_ab, 1)
        delta = mean_b - mean_a
        mean[:, p.labels] = mean_a + delta * n_b / safe
        m2[:, p.labels] = m2_a + p.parts["m2"] + delta * delta * n_a * n_b / safe
        n[:, p.labels] = n_ab
    return np.where(n > 1, m2 / np.where(n > 1, n - 1, 1), np.nan)


def _quantiles(partials: Sequence[Partial], probability: float, n_slices: int, n_geoms: int) -> np.ndarray:
    """Quantiles computed within a window stand; geometries straddling windows are sorted again."""
    result = np.full((n_slices, n_geoms), np.nan)
    for p in partials:
        if "quantile" in p.parts:
            result[:, p.labels] = p.parts["quantile"]
    for s in range(n_slices):
        kept = [p.values[s] for p in partials if p.values is not None]
        if not kept or not any(len(k[0]) for k in kept):
            continue
        ordered, owners = sort_grouped(np.concatenate([k[0] for k in kept]), np.concatenate([k[1] for k in kept]))
        groups, starts, sizes = np.unique(owners, return_index=True, return_counts=True)
        result[s, groups] = quantile_of_sorted(ordered, starts, sizes, probability)
    return result


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
            window_membership, geoms[candidates], candidates, transform, shape, spans[candidates] > 1
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
    layers = HighLevelGraph.from_collections(out_name, graph, dependencies=[data])
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
    return _gather(block, membership), np.repeat(membership.labels, membership.sizes)


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
    layers = HighLevelGraph.from_collections(out_name, graph, dependencies=[data])
    chunks = (geometry_chunks, *data.chunks[:-2], (length,))
    return da.Array(layers, out_name, chunks=chunks, dtype=np.float64), counts
