"""W2: max-NDVI composite of a 2048 × 2048 px window straddling the tile border, GTiff through the API.

Engine: ``POST /result`` of load_collection (B04, B08, all dates) → ndvi → max over t → GTiff.
Baseline: the same with rasterio windows and numpy — per date, read both tiles' windows of B04
and B08, mosaic (first valid), NDVI, running nanmax — dates spread over a thread pool with one
thread per core, then a deflate-compressed tiled GeoTIFF. Both outputs are compared.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
import requests
from rasterio.windows import from_bounds

from bench.common import PeakRss, bench_items, server, server_pid, token

SIZE = 2048
RES = 10.0


def _window(items) -> tuple[float, float, float, float]:
    """2048 × 2048 px centred on the border between the two tiles, 5 km below the top edge."""
    tiles = sorted({tuple(i.properties.get("proj:bbox") or i.assets["B04"].extra_fields["proj:bbox"])
                    for i in items})
    border = tiles[0][2]  # east edge of the western tile
    north = tiles[0][3] - 5000
    return border - SIZE * RES / 2, north - SIZE * RES, border + SIZE * RES / 2, north


def direct(items, bounds, target: Path) -> np.ndarray:
    west, south, east, north = bounds
    by_date = defaultdict(list)
    for item in items:
        by_date[item.datetime.date()].append(item)

    def one_date(day_items) -> np.ndarray:
        red = np.full((SIZE, SIZE), np.nan, dtype="float32")
        nir = np.full((SIZE, SIZE), np.nan, dtype="float32")
        for item in day_items:
            for band, out in (("B04", red), ("B08", nir)):
                with rasterio.open(item.assets[band].get_absolute_href()) as src:
                    left, bottom, right, top = src.bounds
                    w, s, e, n = max(west, left), max(south, bottom), min(east, right), min(north, top)
                    if w >= e or s >= n:
                        continue
                    values = src.read(1, window=from_bounds(w, s, e, n, src.transform)).astype("float32")
                    values[values == src.nodata] = np.nan
                    row, col = int(round((north - n) / RES)), int(round((w - west) / RES))
                    view = out[row:row + values.shape[0], col:col + values.shape[1]]
                    np.copyto(view, values, where=np.isnan(view))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (nir - red) / (nir + red)

    result = np.full((SIZE, SIZE), np.nan, dtype="float32")
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for ndvi in pool.map(one_date, by_date.values()):
            result = np.fmax(result, ndvi)
    transform = rasterio.transform.from_origin(west, north, RES, RES)
    with rasterio.open(target, "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="float32",
                       crs="EPSG:32632", transform=transform, nodata=np.nan, tiled=True, blockxsize=256,
                       blockysize=256, compress="deflate", predictor=2) as dst:
        dst.write(result, 1)
    return result


def run(data_dir: Path) -> dict:
    items = [i for i in bench_items(data_dir)]
    bounds = _window(items)
    n_dates = len({i.datetime.date() for i in items})
    graph = {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "DEMO_SENTINEL2_L2A", "bands": ["B04", "B08"], "temporal_extent": None,
            "spatial_extent": {"west": bounds[0] + 1, "south": bounds[1] + 1, "east": bounds[2] - 1,
                               "north": bounds[3] - 1, "crs": 32632}}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "max": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t",
                "reducer": {"process_graph": {"m": {"process_id": "max", "arguments": {
                    "data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "max"}, "format": "GTiff"},
                 "result": True},
    }}}
    with tempfile.TemporaryDirectory() as folder, server(data_dir) as root:
        headers = {"Authorization": f"Bearer basic//{token(root)}"}
        engine_file = Path(folder) / "engine.tif"
        # the files into the OS page cache first, so that neither side pays the disk for the other
        direct(items, bounds, Path(folder) / "warm.tif")
        # warm-up with a small window: imports and worker start-up are not what W2 measures
        warm = json.loads(json.dumps(graph))
        extent = warm["process"]["process_graph"]["load"]["arguments"]["spatial_extent"]
        extent.update(east=extent["west"] + 2560, south=extent["north"] - 2560)
        requests.post(f"{root}/openeo/1.2/result", json=warm, headers=headers, timeout=3600)
        with PeakRss(server_pid(root)) as memory:
            start = time.perf_counter()
            response = requests.post(f"{root}/openeo/1.2/result", json=graph, headers=headers, timeout=3600)
            response.raise_for_status()
            engine_file.write_bytes(response.content)
            engine_s = time.perf_counter() - start
        start = time.perf_counter()
        expected = direct(items, bounds, Path(folder) / "direct.tif")
        direct_s = time.perf_counter() - start
        with rasterio.open(engine_file) as src:
            got = src.read(1)
        same = got.shape == expected.shape and bool(np.allclose(got, expected, equal_nan=True, atol=1e-6))
    cores = os.cpu_count() or 1
    pixel_dates = SIZE * SIZE * n_dates
    return {
        "name": "W2",
        "engine_s": round(engine_s, 3),
        "direct_s": round(direct_s, 3),
        "ratio": round(engine_s / direct_s, 2),
        "peak_rss_mb": memory.mb,
        "engine_mpx_per_core_s": round(pixel_dates / engine_s / cores / 1e6, 1),
        "direct_mpx_per_core_s": round(pixel_dates / direct_s / cores / 1e6, 1),
        "values_equal": same,
    }
