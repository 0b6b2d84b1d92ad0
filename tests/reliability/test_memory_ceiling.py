"""The memory ceiling (``TERRACUBE_WORKER_MAX_MB``): a worker past it is recycled, the server keeps serving.

A server of its own with a 600 MB ceiling (a worker serving small requests stays near 200–350 MB
resident on the demo data; the test measures it first). A year of four 10 m bands as netCDF is a
legitimate synchronous request under the pixel limit, but writing it holds well over a gigabyte in
the worker: the watchdog ends that worker, its request fails, the master starts a fresh worker,
``GET /`` answers within a second throughout and the next request succeeds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.reliability.conftest import Server, describe, reliability_server, request_body

CEILING_MB = 600
CAPABILITIES_SECONDS = 1.0
HEAVY = request_body(None, bands=["B02", "B03", "B04", "B08"], fmt="netCDF", temporal=["2023-01-01", "2024-01-01"])


@pytest.fixture(scope="module")
def ceiling_server(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with reliability_server(demo_data, tmp_path_factory.mktemp("reliability") / "ceiling",
                            TERRACUBE_WORKER_MAX_MB=str(CEILING_MB), TERRACUBE_WORKERS="2",
                            TERRACUBE_THREADS="2", TERRACUBE_EMBEDDED_RUNNER="false",
                            TERRACUBE_SYNC_MAX_PIXELS="2000000000") as server:
        yield server


def workers(server: Server) -> list[psutil.Process]:
    """The gunicorn workers of ``server`` (children of its master, a child of this process)."""
    port = server.root.rsplit(":", 1)[1]
    for _ in range(20):  # /proc may refuse a read while the master reaps and forks workers: look again
        for child in psutil.Process(os.getpid()).children():
            try:
                if child.environ().get("TERRACUBE_PORT") == port:
                    return [p for p in child.children() if "worker" not in p.cmdline()]  # not a job runner
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no server process for port {port}")


def rss_mb(processes: list[psutil.Process]) -> dict[int, float]:
    return {p.pid: p.memory_info().rss / 2**20 for p in processes if p.is_running()}


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def test_a_worker_past_the_ceiling_is_recycled_and_the_server_keeps_serving(ceiling_server: Server):
    server = ceiling_server
    headers = server.headers()
    for _ in range(4):  # both workers serve a normal request first
        normal = requests.post(f"{server.api}/result", json=request_body(), headers=headers, timeout=120)
        assert normal.status_code == 200, describe(normal)
    before = rss_mb(workers(server))
    print(f"resident memory of the workers after normal requests: {before} (ceiling {CEILING_MB} MB)")
    assert len(before) == 2 and max(before.values()) < CEILING_MB * 0.8, before

    stop = threading.Event()
    slow: list[str] = []
    polls = 0

    def watch() -> None:
        nonlocal polls
        while not stop.is_set():
            start = time.monotonic()
            outcome = None
            for _attempt in range(2):  # a poll in flight in the worker being recycled dies with it: ask again
                try:
                    outcome = requests.get(f"{server.api}/", timeout=CAPABILITIES_SECONDS).status_code
                    break
                except requests.ConnectionError as error:
                    outcome = type(error).__name__
                except requests.Timeout:
                    outcome = "Timeout"
                    break
            seconds = time.monotonic() - start
            if outcome != 200 or seconds > CAPABILITIES_SECONDS:
                slow.append(f"{outcome} after {seconds:.2f} s")
            polls += 1
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        try:
            heavy = requests.post(f"{server.api}/result", json=HEAVY, headers=headers, timeout=300)
            failed = f"{heavy.status_code} {heavy.content[:200]!r}"
            assert heavy.status_code >= 500, f"the request past the ceiling succeeded: {failed}"
        except requests.ConnectionError as error:
            failed = f"{type(error).__name__}: {error}"
        wait_until(lambda: "past its ceiling" in server.log.read_text(), 20, "the recycling is logged")
        wait_until(lambda: len(rss_mb(workers(server))) == 2 and set(rss_mb(workers(server))) != set(before), 30,
                   "a fresh worker replaces the recycled one")
        after = requests.post(f"{server.api}/result", json=request_body(), headers=headers, timeout=120)
        assert after.status_code == 200, describe(after)
        time.sleep(1.0)
    finally:
        stop.set()
        watcher.join(timeout=10)
    print(f"the heavy request: {failed}; GET / polled {polls} times")
    assert polls > 5
    assert not slow, f"GET / was slow or failed {len(slow)} of {polls} times: {slow[:10]}"
    log = server.log.read_text()
    recycled = [line for line in log.splitlines() if "past its ceiling" in line]
    assert recycled and f"ceiling of {CEILING_MB} MB" in recycled[0], recycled
