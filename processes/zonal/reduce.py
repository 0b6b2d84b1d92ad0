"""Zonal statistics, the reduction: one pass per chunk, then the windows' partial results combined.

:mod:`processes.zonal.engine` groups each window's pixels by geometry (a :class:`Membership`) and builds
the lazy graph; this module reduces the values of a chunk per group and merges the groups of all
windows into one value per geometry.

Per chunk, the values are gathered in membership order and reduced per group with
``ufunc.reduceat`` for all (time, band, …) slices of the chunk at once: sums, valid counts, minima,
maxima, and per-chunk means and squared deviations for the variance (combined with Chan's formula,
which stays exact where a sum of squares would cancel). Median and quantiles sort each chunk's
valid values by (geometry, value) with one sort of 64-bit keys; a geometry lying in one window gets
its quantile there, only the values of geometries that straddle windows are kept to be merged.

With coverage weights (``aggregate_spatial_pixels: coverage``) every pixel carries the fraction of
it a polygon covers: counts and sums are sums of weights, the mean is the weighted mean, the
variance the unbiased estimate for reliability weights (``Σw(v−m)² / (W − Σw²/W)``, the sample
variance when every weight is 1), and quantiles are weighted so that equal weights give numpy's
default (type 7) quantile. Minimum and maximum take every pixel with a weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

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
    coverage: bool = False
    """Weight every pixel by the fraction of it a polygon covers (see the module docstring)."""


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
    weights: np.ndarray | None = None
    """Per pixel entry: the fraction of the pixel the geometry covers; None where every pixel counts fully."""

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(np.append(self.starts, len(self.pixels)))


# --- one pass per chunk --------------------------------------------------------------------------
@dataclass
class Partial:
    """Per-geometry summaries of one chunk: arrays of shape (slices, groups), by ``labels``."""

    labels: np.ndarray
    total: np.ndarray
    """Per group: its pixel count (or, with weights, the sum of its weights)."""
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    values: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] | None = None
    """For order statistics: per slice, the valid values, their geometries and weights."""


def gather(block: np.ndarray, membership: Membership) -> np.ndarray:
    """The chunk's values of the membership's pixels, as (slices, pixels) floats."""
    flat = block.reshape(-1, block.shape[-2] * block.shape[-1])
    values = flat[:, membership.pixels]
    return values if values.dtype in (np.float32, np.float64) else values.astype(np.float64)


def reduce_chunk(block: np.ndarray, membership: Membership, statistic: Statistic) -> Partial:
    starts, weights = membership.starts, membership.weights
    sizes = membership.sizes
    total = sizes if weights is None or len(starts) == 0 else np.add.reduceat(weights, starts)
    partial = Partial(membership.labels, total)
    if len(starts) == 0:
        return partial
    name = statistic.name
    n_slices = math.prod(block.shape[:-2])
    complete = block.dtype.kind != "f" or not np.isnan(block).any()  # no no-data: skip the masking passes
    if name == "count":  # only the no-data mask is needed
        if complete:
            partial.parts["valid"] = np.broadcast_to(total, (n_slices, len(starts)))
        else:
            missing = np.isnan(block).reshape(n_slices, -1)[:, membership.pixels]
            lost = missing if weights is None else missing * weights
            partial.parts["valid"] = total - np.add.reduceat(lost, starts, axis=1)
        return partial
    values = gather(block, membership)
    valid = np.ones(values.shape, dtype=bool) if complete else ~np.isnan(values)
    if complete:
        n_valid = np.broadcast_to(total, (n_slices, len(starts)))
    elif weights is None:
        n_valid = np.add.reduceat(valid, starts, axis=1, dtype=np.int64)
    else:
        n_valid = np.add.reduceat(np.where(valid, weights, 0.0), starts, axis=1)
    partial.parts["valid"] = n_valid
    if name in ("mean", "sum", "variance", "sd"):
        zeroed = values if complete else np.where(valid, values, 0)
        sums = np.add.reduceat(zeroed if weights is None else zeroed * weights, starts, axis=1, dtype=np.float64)
        partial.parts["sum"] = sums
        if name in ("variance", "sd"):
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.nan_to_num(sums / n_valid)
            deviation = values - np.repeat(means, sizes, axis=1)
            if not complete:
                deviation[~valid] = 0
            squared = deviation * deviation
            partial.parts["m2"] = np.add.reduceat(squared if weights is None else squared * weights, starts, axis=1)
            if weights is not None:  # Σw² of the valid pixels, for the unbiased denominator
                partial.parts["w2"] = np.add.reduceat(np.where(valid, weights * weights, 0.0), starts, axis=1)
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
    weights = membership.weights
    quantiles = np.full((values.shape[0], n_groups), np.nan)
    kept = []
    straddling = membership.straddles if membership.straddles is not None else np.ones(n_groups, dtype=bool)
    for s in range(values.shape[0]):
        whole = bool(valid[s].all())
        chosen = slice(None) if whole else valid[s]
        ordered, owners, ordered_weights = sort_grouped(values[s][chosen], local[chosen],
                                                        None if weights is None else weights[chosen])
        sizes = np.bincount(owners, minlength=n_groups)
        groups = np.flatnonzero(sizes)
        starts = (np.cumsum(sizes) - sizes)[groups]
        quantiles[s, groups] = quantile_of_sorted(ordered, starts, sizes[groups], probability, ordered_weights)
        wanted = np.repeat(straddling, sizes)
        kept.append((ordered[wanted], membership.labels[owners[wanted]],
                     None if ordered_weights is None else ordered_weights[wanted]))
    partial.parts["quantile"] = quantiles
    partial.values = kept


def sort_grouped(
    values: np.ndarray, owners: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``values`` sorted by (owner, value), their owners, and their weights (if any).

    Without weights, for float32 values one sort of 64-bit keys does it (owner in the high half,
    the value's bits made order-preserving in the low half): an order of magnitude faster than
    ``np.lexsort``, which the weighted case needs for the permutation.
    """
    if values.size == 0:
        return values, owners, weights
    if weights is not None:
        order = np.lexsort((values, owners))
        return values[order], owners[order], weights[order]
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
        return (low ^ ((np.uint32(0) - sign) | np.uint32(0x80000000))).view(np.float32), keys.view(np.int64), None
    order = np.argsort(values, kind="stable")
    order = order[np.argsort(owners[order], kind="stable")]
    return values[order], owners[order], None


def quantile_of_sorted(
    values: np.ndarray, starts: np.ndarray, sizes: np.ndarray, probability: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """The quantile of each sorted group ``values[start:start + size]``: numpy's default (type 7),
    or its weighted form.

    Weighted, the k-th of n values (k from 0) stands at ``S_k = k·w_k + (n−1)·Σ_{j<k} w_j``, and the
    quantile is interpolated at ``p·S_{n−1}``; with equal weights ``S_k = k·n·w``, which is type 7.
    """
    if weights is None:
        position = (sizes - 1) * probability
        below = np.floor(position).astype(np.int64)
        fraction = position - below
        above = np.minimum(below + 1, sizes - 1)
        low, high = values[starts + below].astype(np.float64), values[starts + above].astype(np.float64)
        return np.where(fraction == 0, low, low + (high - low) * fraction)
    rank = np.arange(len(values)) - np.repeat(starts, sizes)
    preceding = np.cumsum(weights) - weights
    preceding -= np.repeat(preceding[starts], sizes)  # Σ_{j<k} w_j within each group
    stand = rank * weights + np.repeat(sizes - 1, sizes) * preceding
    last = starts + sizes - 1
    target = probability * stand[last]
    reached = np.add.reduceat(stand <= np.repeat(target, sizes), starts)  # ≥ 1: the first stands at 0
    low = starts + reached - 1
    high = np.minimum(low + 1, last)
    span = stand[high] - stand[low]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(span > 0, (target - stand[low]) / span, 0.0)
    low_value, high_value = values[low].astype(np.float64), values[high].astype(np.float64)
    return low_value + (high_value - low_value) * np.clip(fraction, 0.0, 1.0)


# --- combining the windows -----------------------------------------------------------------------
def combine(partials: Sequence[Partial], statistic: Statistic, n_geoms: int, block_shape: tuple[int, ...]) -> np.ndarray:
    """The statistic of every geometry for one block of the other dimensions: (geometries, *block_shape[, 3])."""
    n_slices = math.prod(block_shape)
    counts = np.float64 if statistic.coverage else np.int64
    total = np.zeros(n_geoms, dtype=counts)
    valid = np.zeros((n_slices, n_geoms), dtype=counts)
    for p in partials:
        total[p.labels] += p.total
        if "valid" in p.parts:
            valid[:, p.labels] += p.parts["valid"]
    name = statistic.name
    result: np.ndarray
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
    """Unbiased variance from per-chunk (weight, mean, squared deviations), merged with Chan's formula.

    The denominator ``W − Σw²/W`` is ``n − 1`` when every weight is 1 (then Σw² is the count).
    """
    n = np.zeros((n_slices, n_geoms))
    mean = np.zeros((n_slices, n_geoms))
    m2 = np.zeros((n_slices, n_geoms))
    w2 = np.zeros((n_slices, n_geoms))
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
        w2[:, p.labels] += p.parts.get("w2", n_b)
    denominator = n - w2 / np.where(n > 0, n, 1)
    defined = denominator > 1e-9 * n  # one pixel (or all weight on one): undefined
    return np.where(defined, m2 / np.where(defined, denominator, 1), np.nan)


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
        weighted = any(k[2] is not None for k in kept)
        ordered, owners, weights = sort_grouped(np.concatenate([k[0] for k in kept]),
                                                np.concatenate([k[1] for k in kept]),
                                                np.concatenate([np.ones(len(k[0])) if k[2] is None else k[2]
                                                                for k in kept]) if weighted else None)
        groups, starts, sizes = np.unique(owners, return_index=True, return_counts=True)
        result[s, groups] = quantile_of_sorted(ordered, starts, sizes, probability, weights)
    return result
