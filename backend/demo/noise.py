"""Randomness for the demo data: named random streams and smooth random fields.

Every part of the generator draws from its own stream, derived from the size's seed and a name
(``rng_for(seed, "clouds", 3)``). Adding a product or a draw to one part therefore never shifts the numbers
of another, and dates can be rendered in any order or in parallel with identical results.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import numpy.typing as npt
from scipy import ndimage


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """The random stream for ``keys`` (e.g. ``"landscape"``, or ``"clouds", date_index``) under ``seed``."""
    entropy = [seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(entropy)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> npt.NDArray[np.float32]:
    """A random field of ``shape`` with features about ``scale_px`` pixels across, mean 0 and std ~1.

    White noise on a coarse lattice, interpolated with cubic splines: cheap at any size, and smooth enough
    for land-cover boundaries and cloud edges.
    """
    coarse_shape = (math.ceil(shape[0] / scale_px) + 2, math.ceil(shape[1] / scale_px) + 2)
    coarse = rng.standard_normal(coarse_shape).astype(np.float32)
    zoom = (shape[0] / (coarse_shape[0] - 2), shape[1] / (coarse_shape[1] - 2))
    # Zooming the lattice with its one-cell border, then cutting the border off, avoids the flattened
    # edges a spline shows at the array boundary.
    fine = ndimage.zoom(coarse, zoom, order=3, mode="nearest", grid_mode=True)
    top = (fine.shape[0] - shape[0]) // 2
    left = (fine.shape[1] - shape[1]) // 2
    field = fine[top: top + shape[0], left: left + shape[1]]
    return (field / max(float(field.std()), 1e-6)).astype(np.float32)
