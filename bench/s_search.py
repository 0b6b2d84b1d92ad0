"""S1–S2: loading from STAC at scale — real STAC API servers and a big static catalog.

The collections are those of :mod:`tests.stac_api_servers`: copies of the demo Sentinel-2 items of
one tile, one an hour from 2021-01-01, whose assets are the demo COGs; 5 of the first 20,000 items
have ``eo:cloud_cover`` < 1. Two APIs serve them: stac-fastapi-geoparquet (Filter extension: CQL2 is
pushed to it) and ``rustac serve`` (no Filter: every page is walked and filtered by the client).

- **S1** (20,000 items): ``POST /result`` of load_collection (B04, B08, the whole time range, a
  256 × 256 px window, ``eo:cloud_cover < 1``) → GTiff, with Terracube configured with the API's
  collection URL. Baseline: what a user writes directly — pystac-client ``Client.open(api).search``
  with the same bbox, datetime and CQL2 filter (filtered in the script instead where the API lacks
  the Filter extension), rasterio reads of the window of both bands of every matching item, a
  first-valid mosaic per day in numpy, then a deflate-compressed tiled GTiff (date-major layers, as
  ours). Median of several interleaved runs after a warm-up of each; both outputs are compared.
  ``ratio`` = ours / baseline (target ≤ 1.2). One line per API.
- **S2** (100,000 items): planning a year — ``POST /validation`` of load_collection over 2022
  (8,760 items, 365 days; B04, B08, the S1 window) → GTiff: the search, the load plan and the lazy
  Dask graph, no pixel read. Against three sources: a static catalog on disk (100,000 item files),
  and the two APIs. Wall time of the request and peak RSS of the server worker that plans, against
  the targets 2 s and 300 MB (``idle_rss_mb``: the worker before, warmed up on a demo collection).
  ``cold_s`` is the first request of a fresh server, ``warm_s`` the median of the following ones; a
  source that takes longer than the bench's budget is given up (``gave_up_after_s``). A static catalog
  is indexed when the server starts (:mod:`processes.data.item_index`): ``index_build_s`` is building
  the index from the 100,000 item files (the first start ever), ``index_open_s`` opening the catalog
  with its stored index (every later start), both measured here in the bench's process; the planning
  request then reads only the year's item files. Floors for context: ``json_read_s``, ``json.loads``
  of every item file; for the APIs ``search_floor_s``, pystac-client walking the same search as plain
  dicts, pages of 1,000 as ours — what any client of the API pays.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import rasterio
import requests
from pyproj import Transformer
from rasterio.windows import from_bounds

from bench.common import PeakRss, server, server_pid, token
from tests.stac_api_servers import (
    CLEAR,
    COLLECTION,
    BigCollection,
    geoparquet_server,
    item_time,
    rustac_server,
    write_big_collection,
)

SIZE = 256
RES = 10.0
WINDOW = (610_000.0, 5_030_000.0 - SIZE * RES, 610_000.0 + SIZE * RES, 5_030_000.0)
"""West, south, east, north (EPSG:32632) of the window, inside the demo's tile T1."""
EPSG = 32632
BANDS = ("B04", "B08")
WHOLE_RANGE = ("2021-01-01", "2024-01-01")
YEAR = ("2022-01-01", "2023-01-01")
S1_REPEATS = 15
"""Runs of each side in S1 (3 without the Filter extension: each walks all 80 pages)."""
S2_REPEATS = 3
STATIC_BUDGET_S = 60.0
"""Seconds S2 may spend planning over the static catalog before it gives up (the bench's own time budget)."""
API_BUDGET_S = 60.0
S2_ITEMS = 100_000
TARGET_S, TARGET_MB = 2.0, 300.0


# --- the data ---------------------------------------------------------------------------------------
def _big(data_dir: Path, count: int) -> BigCollection:
    """The generated collection of ``count`` items, written once into the bench data dir."""
    out = data_dir / f"stac-big-{count}"
    big = BigCollection(out / "collection.json", out / "items.json", out / "collections.json",
                        tuple(item_time(i).strftime("%Y-%m-%dT%H") for i in sorted(CLEAR) if i < count))
    stamp = out / ".complete"
    if not stamp.exists():
        big = write_big_collection(data_dir / "demo", out, count)
        stamp.write_text("")
    return big


def _static_catalog(big: BigCollection) -> Path:
    """The items of ``big`` as a static catalog: ``catalog.json`` → ``collection.json`` → one file an item."""
    root = big.collection.parent / "static"
    catalog = root / "catalog.json"
    if (root / ".complete").exists():
        return catalog
    features = json.loads(big.items_json.read_text())["features"]
    collection = json.loads(big.collection.read_text())
    folder = root / COLLECTION
    folder.mkdir(parents=True, exist_ok=True)
    for feature in features:
        item_id = feature["id"]
        (folder / f"{item_id}.json").write_text(json.dumps({**feature, "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "./collection.json", "type": "application/json"},
            {"rel": "collection", "href": "./collection.json", "type": "application/json"},
        ]}))
    collection["links"] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        *({"rel": "item", "href": f"./{f['id']}.json", "type": "application/geo+json"} for f in features),
    ]
    (folder / "collection.json").write_text(json.dumps(collection))
    catalog.write_text(json.dumps({
        "type": "Catalog", "stac_version": collection.get("stac_version", "1.1.0"), "id": "s2-bench",
        "description": f"{len(features):,} generated items (bench S2)",
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"},
                  {"rel": "child", "href": f"./{COLLECTION}/collection.json", "type": "application/json"}],
    }))
    (root / ".complete").write_text("")
    return catalog


# --- the requests -----------------------------------------------------------------------------------
def _graph(interval: tuple[str, str], cloud_below: float | None) -> dict:
    west, south, east, north = WINDOW
    arguments: dict[str, Any] = {
        "id": COLLECTION, "bands": list(BANDS), "temporal_extent": list(interval),
        "spatial_extent": {"west": west + 1, "south": south + 1, "east": east - 1, "north": north - 1, "crs": EPSG}}
    if cloud_below is not None:
        arguments["properties"] = {"eo:cloud_cover": {"process_graph": {"lt": {
            "process_id": "lt", "arguments": {"x": {"from_parameter": "value"}, "y": cloud_below}, "result": True}}}}
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": arguments},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                 "result": True},
    }}}


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


# --- S1: the baseline ---------------------------------------------------------------------------------
def direct(api: str, target: Path) -> tuple[list[str], np.ndarray]:
    """pystac-client search + rasterio window reads + numpy mosaic per day → GTiff; (days, layers)."""
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses

    west, south, east, north = WINDOW
    client = Client.open(api)
    bbox = Transformer.from_crs(EPSG, 4326, always_xy=True).transform_bounds(west, south, east, north)
    parameters: dict[str, Any] = {"collections": [COLLECTION], "bbox": list(bbox), "limit": 250,
                                  "datetime": f"{WHOLE_RANGE[0]}T00:00:00Z/2023-12-31T23:59:59Z"}
    pushdown = client.conforms_to(ConformanceClasses.FILTER)
    if pushdown:
        parameters.update(filter={"op": "<", "args": [{"property": "eo:cloud_cover"}, 1]}, filter_lang="cql2-json")
    items = [i for i in client.search(method="POST", **parameters).items_as_dicts()
             if pushdown or i["properties"]["eo:cloud_cover"] < 1]
    by_day: dict[str, list[dict]] = {}
    for item in sorted(items, key=lambda i: i["properties"]["datetime"]):
        by_day.setdefault(item["properties"]["datetime"][:10], []).append(item)

    def one_day(day_items: list[dict]) -> np.ndarray:
        out = np.full((len(BANDS), SIZE, SIZE), np.nan, dtype="float32")
        for item in day_items:
            for layer, band in enumerate(BANDS):
                with rasterio.open(item["assets"][band]["href"]) as src:
                    values = src.read(1, window=from_bounds(west, south, east, north, src.transform)).astype("float32")
                    values[values == src.nodata] = np.nan
                    np.copyto(out[layer], values, where=np.isnan(out[layer]))
        return out

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        stack = np.concatenate(list(pool.map(one_day, by_day.values())))
    with rasterio.open(target, "w", driver="GTiff", width=SIZE, height=SIZE, count=len(stack), dtype="float32",
                       crs=f"EPSG:{EPSG}", transform=rasterio.transform.from_origin(west, north, RES, RES),
                       nodata=np.nan, tiled=True, blockxsize=256, blockysize=256, compress="deflate") as dst:
        dst.write(stack)
    return list(by_day), stack


def _engine_layers(path: Path) -> tuple[list[str], np.ndarray]:
    with rasterio.open(path) as src:
        days = sorted({src.tags(layer)["datetime"][:10] for layer in range(1, src.count + 1)})
        return days, src.read()


def _s1(data_dir: Path, big: BigCollection, api: str, name: str, what: str, repeats: int) -> dict:
    url = f"{api}/collections/{COLLECTION}"
    body = _graph(WHOLE_RANGE, 1)
    engine, baseline = [], []
    with tempfile.TemporaryDirectory() as folder, server(data_dir, extra={"TERRACUBE_STAC": url}) as root:
        headers = {"Authorization": f"Bearer basic//{token(root)}"}
        engine_file, direct_file = Path(folder) / "engine.tif", Path(folder) / "direct.tif"

        def ours() -> None:
            response = requests.post(f"{root}/openeo/1.2/result", json=body, headers=headers, timeout=600)
            if response.status_code != 200:
                raise RuntimeError(f"{name}: /result answered {response.status_code}: {response.text[:500]}")
            engine_file.write_bytes(response.content)

        ours()  # warm-up of both: imports, the API's metadata, the files in the page cache
        direct(api, direct_file)
        with PeakRss(server_pid(root)) as memory:
            for _ in range(repeats):
                engine.append(_timed(ours)[0])
                seconds, (days, expected) = _timed(lambda: direct(api, direct_file))
                baseline.append(seconds)
        got_days, got = _engine_layers(engine_file)
    engine_s, direct_s = statistics.median(engine), statistics.median(baseline)
    return {
        "name": name, "api": what, "items": 20_000, "matching": len(days),
        "engine_s": round(engine_s, 3), "direct_s": round(direct_s, 3), "ratio": round(engine_s / direct_s, 2),
        "target_ratio": 1.2, "ok": engine_s / direct_s <= 1.2, "peak_rss_mb": memory.mb,
        "dates_equal": got_days == days and got_days == sorted(d[:10] for d in big.clear_dates),
        "values_equal": got.shape == expected.shape and bool(np.array_equal(got, expected, equal_nan=True)),
        "engine_all": [round(t, 3) for t in engine], "direct_all": [round(t, 3) for t in baseline],
    }


# --- S2 -----------------------------------------------------------------------------------------------
def _worker(root: str) -> psutil.Process:
    """The gunicorn worker that answers (the one server worker), not the master that forked it."""
    listening = psutil.Process(server_pid(root))
    children = listening.children()
    return children[0] if children else listening


def _s2(data_dir: Path, source: str, what: str, repeats: int, budget_s: float) -> dict:
    """Planning requests (a cold one, then ``repeats`` more) until ``budget_s`` seconds are spent."""
    body = _graph(YEAR, None)
    times: list[float] = []
    timed_out = False
    with server(data_dir, extra={"TERRACUBE_STAC": source}) as root:
        headers = {"Authorization": f"Bearer basic//{token(root)}"}
        # the same request on a demo collection first: imports and the evaluator are not this source's cost
        warm = _graph(("2023-01-01", "2023-02-01"), None)
        warm["process"]["process_graph"]["load"]["arguments"]["id"] = "DEMO_SENTINEL2_L2A"
        requests.post(f"{root}/openeo/1.2/validation", json=warm, headers=headers, timeout=600).raise_for_status()
        worker = _worker(root)
        idle_mb = round(worker.memory_info().rss / 2**20, 1)
        with PeakRss(worker.pid) as memory:
            deadline = time.monotonic() + budget_s
            for _ in range(repeats + 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    seconds, response = _timed(functools.partial(
                        requests.post, f"{root}/openeo/1.2/validation", json=body, headers=headers, timeout=left))
                except requests.Timeout:
                    timed_out = True
                    with contextlib.suppress(psutil.NoSuchProcess):
                        worker.kill()  # else it plans on after the server has stopped, beside the next benchmark
                    break
                response.raise_for_status()
                if response.json()["errors"]:
                    raise RuntimeError(f"S2 ({what}): the graph does not validate: {response.json()['errors']}")
                times.append(seconds)
    result: dict[str, Any] = {
        "name": "S2", "source": what, "items": S2_ITEMS, "year_items": 8_760, "days": 365,
        "cold_s": round(times[0], 3) if times else None,
        "warm_s": round(statistics.median(times[1:]), 3) if len(times) > 1 else None,
        "peak_rss_mb": memory.mb, "idle_rss_mb": idle_mb, "target_s": TARGET_S, "target_mb": TARGET_MB,
        "ok": not timed_out and max(times) <= TARGET_S and memory.mb <= TARGET_MB,
        "all": [round(t, 3) for t in times],
    }
    if timed_out:
        result["gave_up_after_s"] = budget_s
    return result


def _json_read_s(catalog: Path) -> float:
    """Seconds to ``json.loads`` every item file: the least any reader of the catalog pays."""
    start = time.perf_counter()
    for path in (catalog.parent / COLLECTION).glob("BIG_*.json"):
        json.loads(path.read_bytes())
    return round(time.perf_counter() - start, 3)


def _index_s(catalog: Path) -> tuple[float, float]:
    """Seconds to open the static catalog building its item index, then again with the stored index."""
    from processes.data.stac_sources import open_static

    with tempfile.TemporaryDirectory() as folder:
        build_s, _ = _timed(lambda: open_static(catalog, Path(folder)))
        open_s, _ = _timed(lambda: open_static(catalog, Path(folder)))
    return round(build_s, 3), round(open_s, 3)


def _search_floor_s(api: str) -> float:
    """Seconds for pystac-client to walk the same search (pages as dicts): what any client of the API pays."""
    from pystac_client import Client

    bbox = Transformer.from_crs(EPSG, 4326, always_xy=True).transform_bounds(*WINDOW)
    start = time.perf_counter()
    search = Client.open(api).search(method="POST", collections=[COLLECTION], bbox=list(bbox), limit=1000,
                                     datetime=f"{YEAR[0]}T00:00:00Z/2022-12-31T23:59:59Z")
    count = sum(1 for _ in search.items_as_dicts())
    assert count == 8_760, count
    return round(time.perf_counter() - start, 3)


def run(data_dir: Path) -> list[dict]:
    results = []
    big = _big(data_dir, 20_000)
    with geoparquet_server(big, data_dir / "bench-s1-geoparquet.log") as api:
        results.append(_s1(data_dir, big, api, "S1", "stac-fastapi-geoparquet (Filter: CQL2 pushed)", S1_REPEATS))
    with rustac_server(big, data_dir / "bench-s1-rustac.log") as api:
        results.append(_s1(data_dir, big, api, "S1-no-filter", "rustac serve (no Filter: all pages)", 3))

    huge = _big(data_dir, S2_ITEMS)
    catalog = _static_catalog(huge)
    static = _s2(data_dir, str(catalog), "static catalog", S2_REPEATS, STATIC_BUDGET_S)
    static["json_read_s"] = _json_read_s(catalog)
    static["index_build_s"], static["index_open_s"] = _index_s(catalog)
    results.append(static)
    for what, serving in (("stac-fastapi-geoparquet", geoparquet_server), ("rustac serve", rustac_server)):
        with serving(huge, data_dir / f"bench-s2-{what.split()[0]}.log") as api:
            planned = _s2(data_dir, f"{api}/collections/{COLLECTION}", what, S2_REPEATS, API_BUDGET_S)
            planned["search_floor_s"] = _search_floor_s(api)
            results.append(planned)
    return results
