"""Shared pieces of the benchmarks: the live server, peak memory sampling, the bench catalog."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pystac
import requests

from backend.devserver import running_server

USER, PASSWORD = "bench", "bench-password"


@contextmanager
def server(data_dir: Path, *, job_runner: bool = False, extra: dict[str, str] | None = None) -> Iterator[str]:
    """The bench server; with ``job_runner`` also its embedded job runner, and two API workers (a
    job's status is polled while a /result computes); ``extra`` settings (``TERRACUBE_*``) win."""
    env = {
        "TERRACUBE_DATA_DIR": str(data_dir),
        "TERRACUBE_USERS": f"{USER}:{PASSWORD}",
        "TERRACUBE_EMBEDDED_RUNNER": "true" if job_runner else "false",
        "TERRACUBE_SYNC_MAX_PIXELS": str(2_000_000_000),
        "TERRACUBE_WORKERS": "2" if job_runner else "1",
    }
    env.update(extra or {})
    log = "bench-jobs-server.log" if job_runner else "bench-server.log"
    with running_server(env, data_dir / log) as root:
        yield root


def token(root: str) -> str:
    response = requests.get(f"{root}/openeo/1.2/credentials/basic", auth=(USER, PASSWORD), timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


class PeakRss:
    """Samples the summed RSS of a process tree (or this process) every 50 ms."""

    def __init__(self, pid: int | None = None):
        self._pid = pid or os.getpid()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        root = psutil.Process(self._pid)
        while not self._stop.is_set():
            try:
                total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                total = 0
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return round(self.peak / 2**20, 1)


def server_pid(root: str) -> int:
    port = int(root.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    raise RuntimeError(f"no process listens on port {port}")


def bench_items(data_dir: Path, collection: str = "DEMO_SENTINEL2_L2A") -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(str(data_dir / "demo" / "catalog.json"))
    return sorted(catalog.get_child(collection).get_items(), key=lambda i: (i.datetime, i.id))
