"""J1 and J2: what a batch job costs over the same graph through ``POST /result``.

Both run the real server with its embedded job runner (the other benchmarks run without one) and
time a job from ``POST /jobs`` until ``GET /jobs/{id}`` says ``finished`` (polled every 50 ms, so
the client's own polling adds next to nothing), against ``POST /result`` of the same graph.

J1, a tiny job (one date, one band, 50 × 50 px, GTiff): ``overhead_s`` = job time − /result time,
the median of several runs; ``overhead_under_load_s`` the same while another, large ``/result``
computes all the time.

J2, a multi-date GTiff job (2048 × 2048 px, two bands, six dates: one COG per date) on the job
runner's Dask LocalCluster against the same graph through /result (one multi-layer GeoTIFF, local
threads): ``ratio`` = batch time / sync time.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import requests

from bench.common import server, token

TINY_EXTENT = {"west": 601000, "south": 5036000, "east": 601500, "north": 5036500, "crs": 32632}
J2_EXTENT = {"west": 605000, "south": 5014520, "east": 625480, "north": 5035000, "crs": 32632}
RUNS = 5
LOAD_RUNS = 3


def _graph(extent: dict, dates: list[str], bands: list[str]) -> dict:
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "DEMO_SENTINEL2_L2A", "spatial_extent": extent, "temporal_extent": dates, "bands": bands}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
                 "result": True},
    }}}


class _Api:
    def __init__(self, root: str):
        self.api = f"{root}/openeo/1.2"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer basic//{token(root)}"

    def sync(self, graph: dict) -> float:
        start = time.perf_counter()
        response = self.session.post(f"{self.api}/result", json=graph, timeout=3600)
        response.raise_for_status()
        return time.perf_counter() - start

    def job(self, graph: dict, poll: float = 0.05) -> float:
        """Seconds from creating the job until its status is finished; the job is deleted after."""
        start = time.perf_counter()
        created = self.session.post(f"{self.api}/jobs", json=graph, timeout=60)
        created.raise_for_status()
        job_id = created.headers["OpenEO-Identifier"]
        self.session.post(f"{self.api}/jobs/{job_id}/results", timeout=60).raise_for_status()
        while True:
            status = self.session.get(f"{self.api}/jobs/{job_id}", timeout=60).json()["status"]
            if status in ("finished", "error", "canceled"):
                break
            time.sleep(poll)
        elapsed = time.perf_counter() - start
        if status != "finished":
            logs = self.session.get(f"{self.api}/jobs/{job_id}/logs", timeout=60).json()["logs"]
            raise RuntimeError(f"job {job_id} is {status}: {logs[-3:]}")
        self.session.delete(f"{self.api}/jobs/{job_id}", timeout=60)
        return elapsed


class _Load:
    """A large /result computing over and over in a thread, until stopped."""

    def __init__(self, api: _Api):
        self._api, self._stop = api, threading.Event()
        self._graph = _graph(J2_EXTENT, ["2023-01-01", "2023-03-01"], ["B04", "B08"])
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._api.sync(self._graph)

    def __enter__(self) -> _Load:
        self._thread.start()
        time.sleep(1.0)  # well into its computation
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _overheads(api: _Api, graph: dict, runs: int) -> tuple[list[float], list[float]]:
    jobs, syncs = [], []
    for _ in range(runs):
        jobs.append(api.job(graph))
        syncs.append(api.sync(graph))
    return jobs, syncs


def run_j1(data_dir: Path) -> dict:
    graph = _graph(TINY_EXTENT, ["2023-05-01", "2023-05-10"], ["B04"])
    with server(data_dir, job_runner=True) as root:
        api = _Api(root)
        api.sync(graph)  # warm-up: imports, the first job's cluster, caches
        api.job(graph)
        time.sleep(2.0)  # a user's next job comes after a while; see ``runs_back_to_back`` for none
        jobs, syncs = [], []
        for _ in range(RUNS):
            jobs.append(api.job(graph))
            syncs.append(api.sync(graph))
            time.sleep(1.0)
        back_jobs, back_syncs = _overheads(api, graph, 2)
        time.sleep(2.0)
        with _Load(api):
            load_jobs, load_syncs = _overheads(api, graph, LOAD_RUNS)
    job_s, sync_s = statistics.median(jobs), statistics.median(syncs)
    return {
        "name": "J1",
        "job_s": round(job_s, 3),
        "sync_s": round(sync_s, 3),
        "overhead_s": round(statistics.median(j - s for j, s in zip(jobs, syncs, strict=True)), 3),
        "overhead_max_s": round(max(j - s for j, s in zip(jobs, syncs, strict=True)), 3),
        "back_to_back_overhead_s": round(statistics.median(
            j - s for j, s in zip(back_jobs, back_syncs, strict=True)), 3),
        "job_under_load_s": round(statistics.median(load_jobs), 3),
        "sync_under_load_s": round(statistics.median(load_syncs), 3),
        "overhead_under_load_s": round(statistics.median(
            j - s for j, s in zip(load_jobs, load_syncs, strict=True)), 3),
        "runs": RUNS,
    }


def run_j2(data_dir: Path) -> dict:
    graph = _graph(J2_EXTENT, ["2023-01-01", "2023-04-01"], ["B04", "B08"])
    tiny = _graph(TINY_EXTENT, ["2023-05-01", "2023-05-10"], ["B04"])
    with server(data_dir, job_runner=True) as root:
        api = _Api(root)
        api.sync(tiny)  # warm-up: imports, the cluster's workers
        api.job(tiny)
        api.sync(graph)  # the files into the OS page cache, for both sides alike
        engine_s = api.job(graph, poll=0.2)
        direct_s = api.sync(graph)
    return {
        "name": "J2",
        "engine_s": round(engine_s, 3),
        "direct_s": round(direct_s, 3),
        "ratio": round(engine_s / direct_s, 2),
        "dates": 6,
        "megapixels": round(2048 * 2048 * 2 * 6 / 1e6, 1),
    }
