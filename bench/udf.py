"""udf: the cost of running user code in confined workers, on a 1024 × 1024 px window, B04 + B08, all dates.

Engine: ``POST /result`` of load_collection → apply(run_udf: ``apply_datacube`` returning ``cube * 2``)
→ netCDF: every block travels to a UDF worker (memfd) and back. Baseline: the same graph with the
built-in ``multiply`` (the same numpy, in the server process). Both go through the same server,
loading and writing, so the ratio is the price of isolation. Both outputs are compared.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
import xarray as xr

from bench.common import PeakRss, bench_items, server, server_pid, token

SIZE = 1024
RES = 10.0
UDF = """
import xarray

def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
    return cube * 2
"""


def _graph(bounds, child: dict) -> dict:
    west, south, east, north = bounds
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "DEMO_SENTINEL2_L2A", "bands": ["B04", "B08"], "temporal_extent": None,
            "spatial_extent": {"west": west + 1, "south": south + 1, "east": east - 1, "north": north - 1,
                               "crs": 32632}}},
        "apply": {"process_id": "apply", "arguments": {"data": {"from_node": "load"},
                                                       "process": {"process_graph": {"f": child}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "apply"}, "format": "netCDF"},
                 "result": True},
    }}}


def _window(items) -> tuple[float, float, float, float]:
    """1024 × 1024 px inside the western tile, 5 km from its top-left corner."""
    west_tile = min((tuple(i.properties.get("proj:bbox") or i.assets["B04"].extra_fields["proj:bbox"])
                     for i in items), key=lambda b: b[0])
    west, north = west_tile[0] + 5000, west_tile[3] - 5000
    return west, north - SIZE * RES, west + SIZE * RES, north


def _post(root: str, headers: dict, graph: dict, target: Path) -> float:
    start = time.perf_counter()
    response = requests.post(f"{root}/openeo/1.2/result", json=graph, headers=headers, timeout=3600)
    response.raise_for_status()
    target.write_bytes(response.content)
    return time.perf_counter() - start


def run(data_dir: Path) -> dict:
    items = bench_items(data_dir)
    bounds = _window(items)
    udf = _graph(bounds, {"process_id": "run_udf", "arguments": {
        "data": {"from_parameter": "x"}, "udf": UDF, "runtime": "Python"}, "result": True})
    builtin = _graph(bounds, {"process_id": "multiply", "arguments": {"x": {"from_parameter": "x"}, "y": 2},
                              "result": True})
    with tempfile.TemporaryDirectory() as folder, server(data_dir) as root:
        headers = {"Authorization": f"Bearer basic//{token(root)}"}
        engine_file, direct_file = Path(folder) / "udf.nc", Path(folder) / "builtin.nc"
        # warm-up: imports, the UDF workers' start (about a second each) and file caches are not measured
        _post(root, headers, udf, engine_file)
        _post(root, headers, builtin, direct_file)
        with PeakRss(server_pid(root)) as memory:
            engine_s = _post(root, headers, udf, engine_file)
        direct_s = _post(root, headers, builtin, direct_file)
        with xr.open_dataset(engine_file) as a, xr.open_dataset(direct_file) as b:
            got, expected = (next(iter(ds.data_vars.values())).values for ds in (a, b))
            same = bool(np.array_equal(got, expected, equal_nan=True))
            values = got.size
    cores = os.cpu_count() or 1
    return {
        "name": "udf",
        "engine_s": round(engine_s, 3),
        "direct_s": round(direct_s, 3),
        "ratio": round(engine_s / direct_s, 2),
        "peak_rss_mb": memory.mb,
        "engine_mvalues_per_core_s": round(values / engine_s / cores / 1e6, 1),
        "values_equal": same,
    }
