"""A server killed with SIGKILL loses no job: finished results stay, interrupted jobs run again.

These tests start their own servers (the session server must not be killed) over the session's
demo data, each with its own data dir and job store. Where a test proves that jobs come back
without waiting for a stale heartbeat, the heartbeat timeout is long (``SLOW_HEARTBEAT``): a job
can then only be re-queued by its own process (it lost its Dask cluster) or by a runner that proved
the run dead — never by the timeout.

Job processes run in their own session; what belongs to one test's server is found by the data dir
in a process's environment (:meth:`Server.processes`), which also cleans up after each test.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
import sqlalchemy as sa
from distributed.core import rpc
from rasterio.io import MemoryFile

from backend.devserver import REPO, free_port
from backend.jobs.store import JobStore, jobs_table, make_engine
from backend.settings import Settings
from tests.conftest import LiveServer, server_env

LC = "DEMO_SENTINEL2_L2A"
SLOW_HEARTBEAT = "120"


def job_graph(format_: str = "GTiff", dates=("2023-05-01", "2023-06-01")) -> dict:
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": LC, "spatial_extent": None, "temporal_extent": list(dates), "bands": ["B04", "B08"]}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": format_},
                 "result": True},
    }}}


def ndvi_max_graph() -> dict:
    """The year's NDVI maximum, one GeoTIFF: a few seconds of computing on the LocalCluster."""
    return {"process": {"process_graph": {
        "load": {"process_id": "load_collection", "arguments": {
            "id": LC, "spatial_extent": None, "temporal_extent": ["2023-01-01", "2024-01-01"],
            "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "max": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {"m": {
                "process_id": "max", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "max"}, "format": "GTiff"},
                 "result": True},
    }}}


class Server:
    """A server in its own process group, so a test can SIGKILL all of it at once."""

    def __init__(self, data_dir: Path, **env: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {**os.environ, **server_env(data_dir, **{
            "TERRACUBE_HOST": "127.0.0.1", "TERRACUBE_PORT": str(self.port),
            "TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS": "12", **env})}
        self.process: subprocess.Popen | None = None

    @property
    def live(self) -> LiveServer:
        return LiveServer(f"http://127.0.0.1:{self.port}", self.data_dir)

    @functools.cached_property
    def store(self) -> JobStore:
        """The job store itself, read directly (also while no server runs)."""
        return JobStore(make_engine(Settings(data_dir=self.data_dir).job_store_url))

    def start(self) -> None:
        self.wait_until_port_is_free()  # the workers of a killed server answer until they notice
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

    def wait_until_port_is_free(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.live.root}/.well-known/openeo", timeout=1)
            except requests.ConnectionError:
                return
            time.sleep(0.2)
        raise AssertionError(f"port {self.port} still answers after {timeout} s")

    def processes(self, command: str = "") -> list[int]:
        """Every process of this server's data dir whose command line contains ``command``: the
        server, its workers, the runner and its LocalCluster, job processes (their own session)."""
        marker = {f"TERRACUBE_DATA_DIR={path}\0".encode() for path in (self.data_dir, self.data_dir.resolve())}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = b"\0" + (entry / "environ").read_bytes()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(b"\0" + m in environ for m in marker) and command in cmdline:
                found.append(int(entry.name))
        return found

    def runner_pid(self) -> int:
        return next(pid for pid in self.processes("backend.cli worker") if _parent(pid) == self.process.pid)

    def job_pids(self) -> list[int]:
        return self.processes("backend.jobs.execute")

    def kill_everything(self) -> None:
        """SIGKILL the server, its workers and runner, and every job process."""
        self.kill_group()
        for pid in self.job_pids():
            _kill(pid, signal.SIGKILL)

    def kill_group(self) -> None:
        """SIGKILL the server's process group: server, workers, runner and LocalCluster — but not
        the job processes, which run in their own session."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def kill_server_only(self) -> None:
        _kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        # what a test left behind: runners draining for a killed server, job processes
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            for pid in self.processes():
                _kill(pid, sig)
            deadline = time.monotonic() + grace
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def make_server(demo_data, tmp_path) -> Iterator:
    """``make_server(**env)``: a Server over the session's demo data, stopped (with whatever it
    left behind) after the test."""
    servers: list[Server] = []

    def make(**env: str) -> Server:
        data_dir = tmp_path / f"data{len(servers)}"
        data_dir.mkdir()
        (data_dir / "demo").symlink_to(demo_data / "demo", target_is_directory=True)
        servers.append(Server(data_dir, **env))
        return servers[-1]

    yield make
    for instance in servers:
        instance.stop()


@pytest.fixture
def server(make_server) -> Server:
    return make_server()


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


def job_logs(live: LiveServer, job_id: str) -> list[dict]:
    return requests.get(f"{live.api}/jobs/{job_id}/logs", headers=live.headers(), timeout=30).json()["logs"]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not {what} after {timeout} s")


def wait_mid_compute(server: Server, job_id: str, scheduler: str | None = None) -> None:
    """Until the job's tasks are being computed: the scheduler (the server's LocalCluster unless
    given) reports tasks processing on its workers."""
    if scheduler is None:
        lines = (server.data_dir / "server.log").read_text().splitlines()
        scheduler = [line.rsplit(" ", 1)[-1] for line in lines if "LocalCluster at " in line][-1]

    async def poll() -> None:
        async with rpc(scheduler) as connection:
            while not any((await connection.processing()).values()):
                await asyncio.sleep(0.02)

    asyncio.run(asyncio.wait_for(poll(), 90))
    assert status(server.live, job_id) == "running"


def wait_job_process(server: Server, job_id: str) -> None:
    """Until the runner started the job's process and recorded its pid (a run whose process was
    never recorded can only be recovered by its stale heartbeat)."""
    query = sa.select(jobs_table.c.pid).where(jobs_table.c.id == job_id)

    def recorded() -> bool:
        with server.store.engine.connect() as conn:
            return conn.execute(query).scalar() is not None

    wait_until(lambda: bool(server.job_pids()) and recorded(), 60, "a job process")


_REFERENCE: dict[str, bytes] = {}


def assert_same_as_sync(live: LiveServer, job_id: str, body: dict) -> None:
    """The job's single GeoTIFF holds the values of the same graph through ``POST /result``."""
    if "ndvi_max" not in _REFERENCE:  # one graph in these tests: computed once per session
        response = requests.post(f"{live.api}/result", json=body, headers=live.headers(), timeout=300)
        response.raise_for_status()
        _REFERENCE["ndvi_max"] = response.content
    results = requests.get(f"{live.api}/jobs/{job_id}/results", headers=live.headers(), timeout=30).json()
    [asset] = results["assets"].values()
    batch = requests.get(asset["href"], timeout=60)
    batch.raise_for_status()
    with MemoryFile(batch.content) as job_file, job_file.open() as got, \
            MemoryFile(_REFERENCE["ndvi_max"]) as sync_file, sync_file.open() as want:
        assert (got.crs, got.transform, got.shape, got.count) == (want.crs, want.transform, want.shape, want.count)
        np.testing.assert_allclose(got.read(), want.read(), rtol=1e-6, equal_nan=True)
        assert np.isfinite(got.read()).any()


def interruptions(live: LiveServer, job_id: str) -> list[str]:
    return [e["message"] for e in job_logs(live, job_id) if "queued again" in e["message"]]


def test_sigkill_mid_job_loses_nothing(make_server):
    # the slow heartbeat: the restarted runner re-queues the job because it proves its runner and
    # its process gone, not because the heartbeat went stale
    server = make_server(TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS=SLOW_HEARTBEAT)
    server.start()
    live = server.live
    finished = create_and_start(live, job_graph(dates=("2023-05-01", "2023-05-10")))
    assert wait_status(live, finished, {"finished", "error"}) == "finished"

    interrupted = create_and_start(live, job_graph("netCDF", dates=("2023-01-01", "2024-01-01")))
    wait_status(live, interrupted, {"running"})
    wait_job_process(server, interrupted)
    server.kill_everything()

    server.start()
    final = wait_status(live, interrupted, {"finished", "error"}, timeout=90)
    logs = job_logs(live, interrupted)
    assert final == "finished", logs
    assert any("are gone" in message for message in interruptions(live, interrupted)), logs
    # the job finished before the kill is still there, with its results
    results = requests.get(f"{live.api}/jobs/{finished}/results", headers=live.headers(), timeout=30).json()
    href = next(iter(results["assets"].values()))["href"]
    assert requests.get(href, timeout=30).status_code == 200


@pytest.mark.parametrize("when", ["at start", "mid compute"])
def test_killing_server_and_runner_requeues_the_running_job(make_server, when):
    """kill -9 of the server's process group (server, runner and its LocalCluster): the job's
    process, in its own session, outlives them; it gives its job back to the queue instead of
    failing it, and the restarted server runs it to the same result as /result."""
    server = make_server(TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS=SLOW_HEARTBEAT)
    server.start()
    body = ndvi_max_graph()
    job_id = create_and_start(server.live, body)
    wait_job_process(server, job_id)
    if when == "mid compute":
        wait_mid_compute(server, job_id)
    server.kill_group()

    server.start()  # at once: the old job process may still be deciding
    assert wait_status(server.live, job_id, {"finished", "error"}, timeout=120) == "finished", \
        job_logs(server.live, job_id)
    assert interruptions(server.live, job_id), job_logs(server.live, job_id)
    assert_same_as_sync(server.live, job_id, body)


def test_a_job_process_gives_its_job_back_when_its_runner_is_killed(make_server):
    """kill -9 of the server and of its runner by pid, mid-compute; no server runs while the job's
    process finds its cluster gone, puts the job back in the queue and exits. A server started
    later runs it."""
    server = make_server(TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS=SLOW_HEARTBEAT)
    server.start()
    body = ndvi_max_graph()
    job_id = create_and_start(server.live, body)
    wait_job_process(server, job_id)
    wait_mid_compute(server, job_id)
    runner = server.runner_pid()
    _kill(runner, signal.SIGKILL)
    server.kill_server_only()

    wait_until(lambda: not server.job_pids(), 30, "the job process gone")
    assert server.store.status(job_id) == "queued"
    [message] = [e.message for e in server.store.logs(job_id) if "queued again" in e.message]
    assert "Dask" in message  # its cluster was lost — not a stale heartbeat
    assert not [e for e in server.store.logs(job_id, level="error")]

    server.start()
    assert wait_status(server.live, job_id, {"finished", "error"}, timeout=120) == "finished", \
        job_logs(server.live, job_id)
    assert_same_as_sync(server.live, job_id, body)


def test_killing_the_server_alone_lets_the_running_job_finish(make_server):
    """kill -9 of the server process only: its runner notices, takes no new jobs and lets the
    running one finish on its cluster; the restarted server shows the job finished, run once."""
    server = make_server(TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS=SLOW_HEARTBEAT)
    server.start()
    body = ndvi_max_graph()
    job_id = create_and_start(server.live, body)
    wait_job_process(server, job_id)
    wait_mid_compute(server, job_id)
    old_runner = server.runner_pid()
    server.kill_server_only()

    server.start()
    assert wait_status(server.live, job_id, {"finished", "error"}, timeout=120) == "finished", \
        job_logs(server.live, job_id)
    assert not interruptions(server.live, job_id), job_logs(server.live, job_id)
    assert sum(e["message"] == "Job started." for e in job_logs(server.live, job_id)) == 1
    assert_same_as_sync(server.live, job_id, body)
    # the old runner drained its jobs and exited
    wait_until(lambda: old_runner not in server.processes("backend.cli worker"), 30, "the old runner gone")


def test_job_runs_on_an_external_dask_cluster(make_server):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [Path(sys.executable).parent / "dask"]
    scheduler = subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([*dask, "worker", address, "--nthreads", "2", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    instance = make_server(TERRACUBE_DASK_SCHEDULER=address, TERRACUBE_JOB_HEARTBEAT_TIMEOUT_SECONDS=SLOW_HEARTBEAT)
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            instance.start()
            live = instance.live
            job_id = create_and_start(live, job_graph(dates=("2023-05-01", "2023-05-10")))
            assert wait_status(live, job_id, {"finished", "error"}) == "finished"
            logs = job_logs(live, job_id)
            assert any(entry.get("data", {}).get("scheduler") == address for entry in logs)
            # the worker of the external cluster really ran tasks
            processed = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_prefixes))
            assert processed > 0

            # the cluster does not depend on the runner: a job whose server and runner are killed
            # runs on and finishes by itself
            orphan = create_and_start(live, ndvi_max_graph())
            wait_job_process(instance, orphan)
            wait_mid_compute(instance, orphan, address)
            instance.kill_group()
            wait_until(lambda: not instance.job_pids(), 60, "the job process done")
            assert instance.store.status(orphan) == "finished"
            assert not [e for e in instance.store.logs(orphan) if "queued again" in e.message]
    finally:
        instance.stop()
        worker.terminate()
        scheduler.terminate()
        worker.wait(timeout=30)
        scheduler.wait(timeout=30)


def test_a_lost_cluster_is_told_apart_from_the_jobs_own_errors():
    """The job process's judgement (``execute._Cluster.lost``) on a real cluster: errors while the
    cluster is healthy are the job's own; cancelled tasks, a dead owner runner or a scheduler that
    does not answer mean the infrastructure is lost."""
    from distributed import LocalCluster

    from backend.jobs.execute import _Cluster
    from processes.core.errors import OpenEOError, unexpected_failure

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=":0") as local:
        cluster = _Cluster(local.scheduler_address, owner=None)
        cluster.connect()
        try:
            assert cluster.watch() is None
            assert cluster.lost(ValueError("a bug in a process")) is None
            assert cluster.lost(OpenEOError("a bad graph")) is None
            future = cluster.client.submit(time.sleep, 30, resources={"none-such": 1})  # never starts
            future.cancel()
            try:
                future.result()
            except Exception as exc:  # wrapped by the evaluator, as a process's failure would be
                wrapped = unexpected_failure(exc, "Process 'save_result' (node 'save') failed unexpectedly")
                wrapped.__cause__ = exc
                assert "dropped its tasks" in cluster.lost(wrapped)
            # a LocalCluster whose runner is gone is lost, whatever the error
            dead = subprocess.Popen([sys.executable, "-c", "pass"])
            dead.wait()
            orphaned = _Cluster(local.scheduler_address, owner=dead.pid)
            assert "is gone" in orphaned.watch() and "is gone" in orphaned.lost(ValueError("any"))
        finally:
            cluster.close()
    # the scheduler is gone: even an error that looks like the job's own means a lost cluster
    assert "closed" in cluster.lost(OpenEOError("the next node failed"))  # this client knows
    unconnected = _Cluster(local.scheduler_address, owner=None)
    assert "does not answer" in unconnected.lost(OpenEOError("the next node failed"))  # a new connection fails
