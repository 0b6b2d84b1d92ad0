"""V1: ``POST /validation`` of the W1 graph (10,000 inline parcels, 2.8 MB of JSON) through the API.

Engine: the server decodes the body, parses the graph, checks every argument and evaluates it
lazily (GeoJSON → geometries, the collection stacked, the zonal statistics graph built) without
reading a pixel. Baseline: what any reader of that request must do at least — decode the JSON and
turn the parcels into shapely geometries (``json.loads`` + ``shapely.from_geojson``), in this
process. The median of several requests is taken, after one warm-up request.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import geopandas as gpd
import requests
import shapely

from bench.common import PeakRss, server, server_pid, token
from bench.w1_parcels import _graph

REPEATS = 7


def _direct(body: bytes) -> float:
    start = time.perf_counter()
    document = json.loads(body)
    features = document["process"]["process_graph"]["agg"]["arguments"]["geometries"]["features"]
    geometries = shapely.get_parts(shapely.from_geojson(json.dumps(
        {"type": "GeometryCollection", "geometries": [f["geometry"] for f in features]})))
    assert len(geometries) == len(features)
    return time.perf_counter() - start


def run(data_dir: Path) -> dict:
    parcels = gpd.read_file(data_dir / "demo" / "parcels.geojson")
    body = json.dumps(_graph(json.loads(parcels.to_json(drop_id=True)), tuple(parcels.total_bounds))).encode()
    with server(data_dir) as root:
        headers = {"Authorization": f"Bearer basic//{token(root)}", "Content-Type": "application/json"}
        url = f"{root}/openeo/1.2/validation"
        times = []
        with PeakRss(server_pid(root)) as memory:
            for attempt in range(REPEATS + 1):
                start = time.perf_counter()
                response = requests.post(url, data=body, headers=headers, timeout=600)
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                if response.json()["errors"]:
                    raise RuntimeError(f"V1: the W1 graph does not validate: {response.json()['errors']}")
                if attempt:  # the first request pays imports and the catalog
                    times.append(elapsed)
    engine_s = statistics.median(times)
    direct_s = statistics.median(_direct(body) for _ in range(REPEATS))
    return {
        "name": "V1",
        "engine_s": round(engine_s, 3),
        "direct_s": round(direct_s, 3),
        "ratio": round(engine_s / direct_s, 2),
        "peak_rss_mb": memory.mb,
        "parcels": len(parcels),
        "request_mb": round(len(body) / 2**20, 2),
        "engine_max_s": round(max(times), 3),
        "all": [round(t, 3) for t in times],
    }
