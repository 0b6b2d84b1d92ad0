"""A server killed with SIGKILL loses no job: finished results stay, interrupted jobs run again.

These tests start their own servers (the session server must not be killed) over the session's
demo data, with their own job store and a short heartbeat timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from backend.devserver import REPO, free_port
from tests.conftest import LiveServer, server_env

LC = "DEMO_SENTINEL2_L2A"


def job_graph(format_: str = "GTiff", dates=("2023-05-01", "2023-06-01")) -> dict:
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": LC, "spatial_extent": None, "temporal_extent": list(dates), "bands": ["B04", "B08"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": format_},
                 "result": True},
    }}}


class Server:
    """A server in its own process group, so a test can SIGKILL all of it at once."""

    def __init__(self, data_dir: Path, **env: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {**os.environ, **server_env(data_dir, TERRACUBE_HOST="127.0.0.1", TERRACUBE_PORT=str(self.port),
                                               TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS="12", **env)}
        self.process: subprocess.Popen | None = None

    @property
    def live(self) -> LiveServer:
        return LiveServer(f"http://127.0.0.1:{self.port}", self.data_dir)

    def start(self) -> None:
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve"], env=self.env, cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.live.root}/.well-known/openeo", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
        raise RuntimeError((self.data_dir / "server.log").read_text()[-3000:])

    def kill_everything(self) -> None:
        """SIGKILL the server, its workers and runner, and every job process."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for line in subprocess.run(["pgrep", "-f", "backend.jobs.execute"], capture_output=True, text=True).stdout.split():
            try:
                environ = Path(f"/proc/{line}/environ").read_bytes()
            except OSError:
                continue
            if str(self.data_dir).encode() in environ:
                os.kill(int(line), signal.SIGKILL)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def server(demo_data, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "demo").symlink_to(demo_data / "demo", target_is_directory=True)
    instance = Server(data_dir)
    yield instance
    instance.stop()


def create_and_start(live: LiveServer, body: dict) -> str:
    response = requests.post(f"{live.api}/jobs", json=body, headers=live.headers(), timeout=30)
    job_id = response.headers["OpenEO-Identifier"]
    requests.post(f"{live.api}/jobs/{job_id}/results", headers=live.headers(), timeout=30).raise_for_status()
    return job_id


def status(live: LiveServer, job_id: str) -> str:
    return requests.get(f"{live.api}/jobs/{job_id}", headers=live.headers(), timeout=30).json()["status"]


def wait_status(live: LiveServer, job_id: str, wanted: set[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(live, job_id)
        if current in wanted:
            return current
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} is {status(live, job_id)} after {timeout} s, wanted {wanted}")


def test_sigkill_mid_job_loses_nothing(server):
    server.start()
    live = server.live
    finished = create_and_start(live, job_graph(dates=("2023-05-01", "2023-05-10")))
    assert wait_status(live, finished, {"finished", "error"}) == "finished"

    interrupted = create_and_start(live, job_graph("netCDF", dates=("2023-01-01", "2024-01-01")))
    wait_status(live, interrupted, {"running"})
    server.kill_everything()

    server.start()
    # the interrupted job is queued again once its heartbeat is stale, and runs to the end
    final = wait_status(live, interrupted, {"finished", "error"})
    logs = requests.get(f"{live.api}/jobs/{interrupted}/logs", headers=live.headers(), timeout=30).json()["logs"]
    assert final == "finished", logs
    assert any("queued again" in entry["message"] for entry in logs)
    # the job finished before the kill is still there, with its results
    results = requests.get(f"{live.api}/jobs/{finished}/results", headers=live.headers(), timeout=30).json()
    href = next(iter(results["assets"].values()))["href"]
    assert requests.get(href, timeout=30).status_code == 200


def test_job_runs_on_an_external_dask_cluster(demo_data, tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [Path(sys.executable).parent / "dask"]
    scheduler = subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([*dask, "worker", address, "--nthreads", "2", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "demo").symlink_to(demo_data / "demo", target_is_directory=True)
    instance = Server(data_dir, TERRACUBE_DASK_SCHEDULER=address)
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            instance.start()
            live = instance.live
            job_id = create_and_start(live, job_graph(dates=("2023-05-01", "2023-05-10")))
            assert wait_status(live, job_id, {"finished", "error"}) == "finished"
            logs = requests.get(f"{live.api}/jobs/{job_id}/logs", headers=live.headers(), timeout=30).json()["logs"]
            assert any(entry.get("data", {}).get("scheduler") == address for entry in logs)
            # the worker of the external cluster really ran tasks
            processed = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_prefixes))
            assert processed > 0
    finally:
        instance.stop()
        worker.terminate()
        scheduler.terminate()
        worker.wait(timeout=30)
        scheduler.wait(timeout=30)
