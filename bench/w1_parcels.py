"""W1: mean NDVI per parcel per date for 10,000 parcels (B04, B08, all dates, both tiles), CSV through the API.

Engine: ``POST /result`` of load_collection (B04, B08, all dates, the parcels' bounding box) → ndvi →
aggregate_spatial(mean) over the parcels given inline as GeoJSON → CSV.
Baseline: a hand-written label raster — the parcels rasterised once per tile (pixel centres, as
the openEO spec's inclusion rule), then per date and tile the parcels' pixels gathered, their NDVI
and ``np.bincount`` sums and counts per label; dates spread over one thread per core. The means
are compared parcel by parcel.

The same run is made with every tenth parcel (``W1-1k``: 1,000 parcels spread over the same area,
so the same pixels are read): the engine's time should stay flat from 1k to 10k parcels, because
the cost is in the pixels read, not in the number of parcels.

``W1-coverage`` is W1 with the processing parameter ``aggregate_spatial_pixels: coverage`` (every
pixel weighted by the fraction of it the parcel covers); its baseline takes the weights from
exactextract's own API once per tile and sums ``weight × NDVI`` and the weights with ``np.bincount``.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import requests
from rasterio.features import rasterize

from bench.common import PeakRss, bench_items, server, server_pid, token


def _label_raster(path: str, shapes: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels, labels, weights) of a tile by the pixel-centre rule: the parcels rasterised once."""
    with rasterio.open(path) as src:
        labels = rasterize(shapes, out_shape=(src.height, src.width), transform=src.transform, fill=0,
                           dtype="int32").ravel()
    pixels = np.flatnonzero(labels)
    return pixels, labels[pixels], np.ones(len(pixels))


def _coverage_weights(path: str, utm: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels, labels, weights) of a tile with exact coverage fractions, from exactextract's own API."""
    from exactextract import exact_extract

    with rasterio.open(path) as src:
        frame = exact_extract(src, utm.assign(label=np.arange(1, len(utm) + 1)), ["cell_id", "coverage"],
                              include_cols=["label"], output="pandas")
    sizes = frame["cell_id"].map(len).to_numpy()
    return (np.concatenate(frame["cell_id"].to_list()).astype(np.int64),
            np.repeat(frame["label"].to_numpy(), sizes), np.concatenate(frame["coverage"].to_list()))


def direct(items, parcels: gpd.GeoDataFrame, coverage: bool = False) -> pd.DataFrame:
    """Mean NDVI per parcel and date: ``DataFrame`` indexed by (parcel id, date)."""
    utm = parcels.to_crs(32632)
    shapes = [(geom, i + 1) for i, geom in enumerate(utm.geometry)]
    n = len(utm) + 1
    grids: dict[str, tuple] = {}  # per tile grid (T1, T2) → the parcels' pixels, labels and weights
    by_date: dict[str, list] = defaultdict(list)
    for item in items:
        by_date[item.datetime.strftime("%Y-%m-%dT%H:%M:%SZ")].append(item)

    def tile_pixels(item) -> tuple:
        key = item.id.split("_")[2]  # S2_DEMO_T1_YYYYMMDD → T1
        if key not in grids:
            path = item.assets["B04"].get_absolute_href()
            grids[key] = _coverage_weights(path, utm) if coverage else _label_raster(path, shapes)
        return grids[key]

    for day_items in by_date.values():  # the tiles' pixels first, so the threads only read
        for item in day_items:
            tile_pixels(item)

    def one_date(day_items) -> tuple[np.ndarray, np.ndarray]:
        sums, counts = np.zeros(n), np.zeros(n)
        for item in day_items:
            pixels, labels, weights = tile_pixels(item)
            with rasterio.open(item.assets["B04"].get_absolute_href()) as src:
                red = src.read(1).astype("float32").ravel()[pixels]
                nodata = src.nodata
            with rasterio.open(item.assets["B08"].get_absolute_href()) as src:
                nir = src.read(1).astype("float32").ravel()[pixels]
            with np.errstate(invalid="ignore", divide="ignore"):
                ndvi = (nir - red) / (nir + red)
            valid = np.isfinite(ndvi)
            if nodata is not None:
                valid &= (red != nodata) & (nir != nodata)
            sums += np.bincount(labels[valid], weights=weights[valid] * ndvi[valid], minlength=n)
            counts += np.bincount(labels[valid], weights=weights[valid], minlength=n)
        return sums, counts

    rows = []
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for date, (sums, counts) in zip(by_date, pool.map(one_date, by_date.values()), strict=True):
            means = np.where(counts > 0, sums / np.maximum(counts, 1e-300), np.nan)[1:]
            rows.append(pd.DataFrame({"parcel_id": utm["parcel_id"].to_numpy(), "date": date, "mean": means}))
    return pd.concat(rows).set_index(["parcel_id", "date"]).sort_index()


def _graph(parcels_geojson: dict, bounds: tuple[float, float, float, float]) -> dict:
    west, south, east, north = bounds
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "DEMO_SENTINEL2_L2A", "bands": ["B04", "B08"], "temporal_extent": None,
            "spatial_extent": {"west": west, "south": south, "east": east, "north": north}}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "ndvi"}, "geometries": parcels_geojson,
            "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {
                "data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "agg"}, "format": "CSV"},
                 "result": True},
    }}}


def _engine_frame(csv_bytes: bytes) -> pd.DataFrame:
    table = pd.read_csv(io.BytesIO(csv_bytes))
    value = [c for c in table.columns if c not in ("id", "parcel_id", "crop", "area_m2", "date", "geometry")]
    table = table.rename(columns={value[-1]: "mean"})
    return table[["parcel_id", "date", "mean"]].set_index(["parcel_id", "date"]).sort_index()


def _one(root: str, headers: dict, items, parcels: gpd.GeoDataFrame, name: str, coverage: bool = False) -> dict:
    features = json.loads(parcels.to_json(drop_id=True))
    bounds = tuple(parcels.total_bounds)
    graph = _graph(features, bounds)
    if coverage:
        graph["aggregate_spatial_pixels"] = "coverage"
    with PeakRss(server_pid(root)) as memory:
        start = time.perf_counter()
        response = requests.post(f"{root}/openeo/1.2/result", json=graph, headers=headers, timeout=3600)
        if response.status_code != 200:
            raise RuntimeError(f"W1 request failed: {response.status_code} {response.text[:500]}")
        engine_s = time.perf_counter() - start
    got = _engine_frame(response.content)
    start = time.perf_counter()
    expected = direct(items, parcels, coverage)
    direct_s = time.perf_counter() - start
    joined = expected.join(got, rsuffix="_engine", how="left")
    same = len(got) == len(expected) and bool(
        np.allclose(joined["mean"], joined["mean_engine"], rtol=1e-4, atol=1e-5, equal_nan=True))
    cores = os.cpu_count() or 1
    n_dates = len({i.datetime.date() for i in items})
    parcel_dates = len(parcels) * n_dates
    return {
        "name": name,
        "engine_s": round(engine_s, 3),
        "direct_s": round(direct_s, 3),
        "ratio": round(engine_s / direct_s, 2),
        "peak_rss_mb": memory.mb,
        "parcels": len(parcels),
        "engine_parcel_dates_per_core_s": round(parcel_dates / engine_s / cores),
        "direct_parcel_dates_per_core_s": round(parcel_dates / direct_s / cores),
        "values_equal": same,
    }


def run(data_dir: Path) -> list[dict]:
    items = bench_items(data_dir)
    parcels = gpd.read_file(data_dir / "demo" / "parcels.geojson")
    direct(items, parcels.head(10))  # the files into the OS page cache, so neither side pays the disk for the other
    with server(data_dir) as root:
        headers = {"Authorization": f"Bearer basic//{token(root)}"}
        # warm-up: imports, catalog and worker start-up are not what W1 measures
        _one_warm = _graph(json.loads(parcels.head(10).to_json(drop_id=True)), tuple(parcels.head(10).total_bounds))
        requests.post(f"{root}/openeo/1.2/result", json=_one_warm, headers=headers, timeout=3600)
        small = _one(root, headers, items, parcels.iloc[::10], "W1-1k")
        full = _one(root, headers, items, parcels, "W1")
        weighted = _one(root, headers, items, parcels, "W1-coverage", coverage=True)
    return [small, full, weighted]
