"""rio-tiler in process: the max NDVI over dates of one web-mercator tile (bench T2's baseline).

Runs in the baseline virtualenv. Reads JSON from stdin — ``{"pairs": [[red COG, nir COG], …], "tiles":
[[z, x, y], …], "rounds": n}`` — and prints one JSON line with the seconds each tile took: read the
red and near-infrared tile of every date (nearest, as a tile server does), NDVI, the maximum over
dates ignoring nodata, scaled from [-1, 1] to 0–255, encoded as PNG.
"""

import json
import sys
import time

import numpy as np
from rio_tiler.io import Reader
from rio_tiler.utils import render


def max_ndvi_tile(pairs, z, x, y):
    layers = []
    for red_url, nir_url in pairs:
        with Reader(red_url) as red_cog, Reader(nir_url) as nir_cog:
            red = red_cog.tile(x, y, z)
            nir = nir_cog.tile(x, y, z)
        r = red.array[0].astype("float32").filled(np.nan)
        n = nir.array[0].astype("float32").filled(np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            layers.append((n - r) / (n + r))
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        best = np.nanmax(np.stack(layers), axis=0)
    valid = np.isfinite(best)
    grey = np.where(valid, np.clip((best + 1) / 2 * 255, 0, 255), 0).astype("uint8")
    return render(grey[np.newaxis], mask=(valid * 255).astype("uint8"), img_format="PNG")


def main():
    job = json.load(sys.stdin)
    times = []
    for _ in range(job["rounds"]):
        for z, x, y in job["tiles"]:
            start = time.perf_counter()
            max_ndvi_tile(job["pairs"], z, x, y)
            times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": times}))


if __name__ == "__main__":
    main()
