"""T1–T4: map tiles of Terracube's XYZ services against titiler and rio-tiler, on the same COGs.

The data is the shared Sentinel-2 sample over Bolzano (``../shared/data/s2-bolzano``: 12 dates of
935 × 705 px COGs with overviews); without it, the first tile of the demo bench data. Terracube
runs as ``terracube serve`` (2 workers) with its tile cache off, so every tile is rendered (cold);
titiler runs as ``uvicorn`` with 2 workers from the baseline virtualenv (``make bench`` makes it).
Both get the same GDAL settings.

- **T1**: one date, one band (B04 scaled 0–3000 to grey), z14 tiles over the scene, one at a time,
  interleaved: median and p95 milliseconds per tile over HTTP; ``ratio`` = ours / titiler's median.
- **T2**: the maximum NDVI over the 12 dates, z14: our XYZ service over HTTP against rio-tiler in
  process reading the same 24 assets tile by tile (no HTTP on its side).
- **T3**: z9 and z10 tiles over the whole scene, which both must draw from the overviews.
- **T4**: 16 clients requesting z12–z15 tiles for 20 s: tiles per second, errors, and the server's
  memory at the start (after warming up) and at the end; ``ratio`` = titiler's tiles/s / ours, with
  our cache off; ``ratio_with_cache`` the same against the default settings (tile cache on), as deployed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pystac
import requests

from backend.devserver import free_port, stop, wait_until_answering
from backend.maps.tiles import Tile, tile_of
from bench.common import PASSWORD, USER, server, server_pid

REPO = Path(__file__).resolve().parent.parent
BOLZANO = REPO.parent / "shared" / "data" / "s2-bolzano" / "catalog.json"
BASELINE = Path(__file__).resolve().parent / "baseline"
GDAL = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_CACHEMAX": "512"}
WORKERS = 2
CLIENTS = 16
LOAD_SECONDS = 20.0


@dataclass(frozen=True)
class Scene:
    collection: str
    stac: str | None
    """A ``TERRACUBE_STAC`` entry for the collection (None: the demo collection)."""
    dates: list[tuple[str, dict[str, str]]]
    """``(ISO date, {band: COG path})`` in date order."""
    bbox: tuple[float, float, float, float]
    """Longitude/latitude bounds of the first date's B04."""

    def tiles(self, z: int) -> list[Tile]:
        west, south, east, north = self.bbox
        first, last = tile_of(west, north, z), tile_of(east, south, z)
        return [Tile(z, x, y) for x in range(first.x, last.x + 1) for y in range(first.y, last.y + 1)]


def _scene(data_dir: Path) -> Scene:
    if BOLZANO.is_file():
        catalog, collection, stac = pystac.Catalog.from_file(str(BOLZANO)), "SENTINEL2_L2A", str(BOLZANO)
    else:
        catalog, collection, stac = (pystac.Catalog.from_file(str(data_dir / "demo" / "catalog.json")),
                                     "DEMO_SENTINEL2_L2A", None)
    items = sorted(catalog.get_child(collection).get_items(), key=lambda i: (i.datetime, i.id))
    first_tile = items[0].bbox
    items = [i for i in items if i.bbox == first_tile]  # the demo has two tiles a date: keep one
    dates = [(i.datetime.strftime("%Y-%m-%d"), {b: i.assets[b].get_absolute_href() for b in ("B04", "B08")})
             for i in items][:12]
    return Scene(collection, stac, dates, tuple(first_tile))


# --- the servers ------------------------------------------------------------------------------------
@contextmanager
def _titiler(python: str, log: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **GDAL}
    with open(log, "wb") as out:
        process = subprocess.Popen([python, "-m", "uvicorn", "--app-dir", str(BASELINE), "titiler_app:app",
                                    "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
                                    "--log-level", "warning"], env=env, stdout=out, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{root}/docs", process, log, "titiler", 60)
        yield root
    finally:
        stop(process, 20)


def _service(root: str, process: dict, value_range: list[float]) -> str:
    session = requests.Session()
    token = session.get(f"{root}/openeo/1.2/credentials/basic", auth=(USER, PASSWORD), timeout=30).json()
    headers = {"Authorization": f"Bearer basic//{token['access_token']}"}
    created = session.post(f"{root}/openeo/1.2/services", headers=headers, timeout=120, json={
        "type": "XYZ", "process": process, "configuration": {"value_range": value_range}})
    created.raise_for_status()
    described = session.get(created.headers["Location"], headers=headers, timeout=30).json()
    return described["url"]


def _load(collection: str, dates: tuple[str, str], bands: list[str]) -> dict:
    return {"process_id": "load_collection", "arguments": {
        "id": collection, "spatial_extent": None, "temporal_extent": list(dates), "bands": bands}}


def _one_band(scene: Scene) -> dict:
    day = scene.dates[0][0]
    end = np.datetime_as_string(np.datetime64(day) + np.timedelta64(1, "D"))
    return {"process_graph": {"load": _load(scene.collection, (day, str(end)), ["B04"]),
                              "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"},
                                                                                    "format": "PNG"},
                                       "result": True}}}


def _max_ndvi(scene: Scene) -> dict:
    first, last = scene.dates[0][0], scene.dates[-1][0]
    end = str(np.datetime64(last) + np.timedelta64(1, "D"))
    reducer = {"process_graph": {"max": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"},
                                                                            "ignore_nodata": True},
                                         "result": True}}}
    return {"process_graph": {
        "load": _load(scene.collection, (first, end), ["B04", "B08"]),
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}, "red": "B04", "nir": "B08"}},
        "max": {"process_id": "reduce_dimension", "arguments": {"data": {"from_node": "ndvi"}, "dimension": "t",
                                                                "reducer": reducer}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "max"}, "format": "PNG"},
                 "result": True}}}


# --- measuring ---------------------------------------------------------------------------------------
def _get(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    response = session.get(url, timeout=120)
    elapsed = time.perf_counter() - start
    if response.status_code != 200 or not response.headers.get("Content-Type", "").startswith("image/png"):
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:300]}")
    return elapsed


def _interleaved(ours: str, theirs: str, tiles: list[Tile], rounds: int) -> tuple[list[float], list[float]]:
    a, b = requests.Session(), requests.Session()
    mine, other = [], []
    for _ in range(rounds):
        for tile in tiles:
            mine.append(_get(a, ours.format(z=tile.z, x=tile.x, y=tile.y)))
            other.append(_get(b, theirs.format(z=tile.z, x=tile.x, y=tile.y)))
    return mine, other


def _ms(values: list[float], q: float | None = None) -> float:
    if q is None:
        return round(statistics.median(values) * 1000, 1)
    return round(float(np.quantile(values, q)) * 1000, 1)


def _compare(name: str, what: str, mine: list[float], other: list[float], baseline: str, scene: Scene) -> dict:
    return {"name": name, "what": what, "data": scene.collection, "tiles": len(mine),
            "engine_median_ms": _ms(mine), "baseline_median_ms": _ms(other),
            "engine_p95_ms": _ms(mine, 0.95), "baseline_p95_ms": _ms(other, 0.95), "baseline": baseline,
            "ratio": round(statistics.median(mine) / statistics.median(other), 3),
            "ratio_p95": round(float(np.quantile(mine, 0.95) / np.quantile(other, 0.95)), 3)}


def _on_data(theirs: str, tiles: list[Tile]) -> list[Tile]:
    """The tiles that hold data (titiler answers 404 for the others, Terracube a transparent tile)."""
    session = requests.Session()
    return [t for t in tiles if session.get(theirs.format(z=t.z, x=t.x, y=t.y), timeout=60).status_code == 200]


def _titiler_url(root: str, cog: str, rescale: str) -> str:
    return f"{root}/cog/tiles/WebMercatorQuad/{{z}}/{{x}}/{{y}}.png?url={cog}&rescale={rescale}"


def _rio_tiler_max_ndvi(python: str, scene: Scene, tiles: list[Tile], rounds: int) -> list[float]:
    job = {"pairs": [[bands["B04"], bands["B08"]] for _, bands in scene.dates],
           "tiles": [[t.z, t.x, t.y] for t in tiles], "rounds": rounds}
    done = subprocess.run([python, str(BASELINE / "rio_tiler_max_ndvi.py")], input=json.dumps(job), text=True,
                          capture_output=True, env={**os.environ, **GDAL}, timeout=1800, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def _rss(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def _load_test(url: str, tiles: list[Tile], pid: int | None) -> dict:
    stop = time.monotonic() + LOAD_SECONDS
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()

    def client(offset: int) -> None:
        session = requests.Session()
        i = offset
        while time.monotonic() < stop:
            tile = tiles[i % len(tiles)]
            i += 1
            try:
                response = session.get(url.format(z=tile.z, x=tile.x, y=tile.y), timeout=60)
                good = response.status_code == 200
            except requests.RequestException:
                good = False
            with lock:
                counts["ok" if good else "errors"] += 1

    memory: list[float] = []

    def sample() -> None:
        while time.monotonic() < stop:
            if pid is not None:
                memory.append(_rss(pid))
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(k * 7,)) for k in range(CLIENTS)]
    sampler = threading.Thread(target=sample)
    start = time.monotonic()
    for thread in [*threads, sampler]:
        thread.start()
    for thread in [*threads, sampler]:
        thread.join()
    elapsed = time.monotonic() - start
    result = {"tiles_per_s": round(counts["ok"] / elapsed, 1), "errors": counts["errors"]}
    if memory:
        settled = memory[len(memory) // 5:]  # after the first fifth: workers have warmed up
        result.update(rss_start_mb=round(settled[0], 1), rss_end_mb=round(settled[-1], 1),
                      rss_peak_mb=round(max(memory), 1))
    return result


# --- the benchmark -----------------------------------------------------------------------------------
def run(data_dir: Path) -> list[dict]:
    python = os.environ.get("TERRACUBE_BENCH_BASELINE_PYTHON", str(REPO / ".venv-bench" / "bin" / "python"))
    if not Path(python).exists():
        return [{"name": name, "error": f"the baseline virtualenv is missing ({python}); run `make bench`"}
                for name in ("T1", "T2", "T3", "T4")]
    scene = _scene(data_dir)
    extra = {"TERRACUBE_TILE_CACHE_MB": "0", "TERRACUBE_WORKERS": str(WORKERS), **GDAL}
    if scene.stac:
        extra["TERRACUBE_STAC"] = scene.stac
    results = []
    with server(data_dir, extra=extra) as root, _titiler(python, data_dir / "bench-titiler.log") as titiler:
        grey = _service(root, _one_band(scene), [0, 3000])
        theirs = _titiler_url(titiler, scene.dates[0][1]["B04"], "0,3000")
        z14 = _on_data(theirs, scene.tiles(14))
        _interleaved(grey, theirs, z14[:2], 1)  # both servers' workers import and open their files
        mine, other = _interleaved(grey, theirs, z14, 5)
        results.append(_compare("T1", "one date, one band, z14, cold", mine, other, "titiler", scene))

        ndvi = _service(root, _max_ndvi(scene), [-1, 1])
        session = requests.Session()
        _get(session, ndvi.format(z=z14[0].z, x=z14[0].x, y=z14[0].y))
        mine = [_get(session, ndvi.format(z=t.z, x=t.x, y=t.y)) for _ in range(2) for t in z14]
        other = _rio_tiler_max_ndvi(python, scene, z14, 2)
        results.append(_compare("T2", f"max NDVI of {len(scene.dates)} dates, z14", mine, other,
                                "rio-tiler in process", scene))

        overview_tiles = _on_data(theirs, scene.tiles(9) + scene.tiles(10))
        mine, other = _interleaved(grey, theirs, overview_tiles, 10)
        results.append(_compare("T3", "z9–z10 over the whole scene (overviews)", mine, other, "titiler", scene))

        pan = _on_data(theirs, [t for z in (12, 13, 14, 15) for t in scene.tiles(z)])
        ours_load = _load_test(grey, pan, server_pid(root))
        their_load = _load_test(theirs, pan, None)
        t4 = {"name": "T4", "what": f"{CLIENTS} clients for {LOAD_SECONDS:.0f} s, z12–z15, cold (cache off)",
              "data": scene.collection, "tiles": len(pan), "engine": ours_load, "baseline": "titiler",
              "baseline_tiles_per_s": their_load["tiles_per_s"], "baseline_errors": their_load["errors"],
              "ratio": round(their_load["tiles_per_s"] / max(ours_load["tiles_per_s"], 1e-9), 3)}
    # as deployed: the same clients against the default settings, whose tile cache serves repeated tiles
    with server(data_dir, extra={k: v for k, v in extra.items() if k != "TERRACUBE_TILE_CACHE_MB"}) as root:
        cached = _load_test(_service(root, _one_band(scene), [0, 3000]), pan, server_pid(root))
    t4["engine_with_cache"] = cached
    t4["ratio_with_cache"] = round(their_load["tiles_per_s"] / max(cached["tiles_per_s"], 1e-9), 3)
    results.append(t4)
    return results
