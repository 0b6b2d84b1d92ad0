"""The job runner: takes queued jobs from the store and runs each in its own process.

One loop, once a second: end the processes of jobs that were canceled, record jobs whose process
died without a word (out of memory, killed), re-queue jobs whose run vanished (see
``JobStore.recover``), and start queued jobs while fewer than ``max_running_jobs`` run. Jobs compute
on a Dask cluster: the one at ``TERRACUBE_DASK_SCHEDULER``, or a LocalCluster the runner starts.
Run it with ``terracube worker``; ``terracube serve`` starts one unless ``TERRACUBE_EMBEDDED_RUNNER``
is false. Several runners may share one store: claiming a job is atomic.

Who outlives whom: job processes run in their own session, so a signal to the server's process group
does not reach them. The LocalCluster's scheduler lives inside the runner, so a job process whose
runner is gone has lost its cluster and gives its job back to the queue (``backend.jobs.execute``);
on an external cluster it runs on and finishes. A runner whose server is gone takes no new jobs and
lets its running ones finish before it exits. A runner that starts re-queues at once the runs it can
prove dead (:func:`proven_gone`), the rest once their heartbeat is stale.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from backend.jobs.folder import JobFolder
from backend.jobs.store import JobStore, make_engine
from backend.settings import Settings

if TYPE_CHECKING:
    from distributed import LocalCluster  # imported when started: the API workers never need it

log = logging.getLogger(__name__)

EXIT_REQUEUED = 75
"""The exit code of a job process that gave its job back to the queue (``EX_TEMPFAIL``)."""


@dataclass
class _Running:
    job_id: str
    attempt: str | None
    process: subprocess.Popen
    output: Path
    started: float = field(default_factory=time.monotonic)


class JobRunner:
    def __init__(self, settings: Settings, store: JobStore | None = None):
        self.settings = settings
        self.store = store or JobStore(make_engine(settings.job_store_url))
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._running: dict[str, _Running] = {}
        self._stop = threading.Event()
        self._cluster: LocalCluster | None = None
        self._stale_after = dt.timedelta(seconds=settings.job_heartbeat_timeout_seconds)
        self._scheduler_was_ready = True

    def start_cluster(self) -> None:
        """A LocalCluster for the jobs when no scheduler is configured."""
        if self.settings.dask_scheduler:
            return
        from distributed import LocalCluster

        workers = max(1, min(2, os.cpu_count() or 1))
        # The scheduler always serves HTTP (health, metrics; the dashboard too if bokeh is there):
        # on port 0 it takes a free port, so several servers on one machine never compete for 8787.
        self._cluster = LocalCluster(n_workers=workers, threads_per_worker=max(1, (os.cpu_count() or 2) // workers),
                                     processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1")
        self.settings = replace(self.settings, dask_scheduler=self._cluster.scheduler_address)
        log.info("job runner: LocalCluster at %s", self._cluster.scheduler_address)

    def run_forever(self, parent_pid: int | None = None) -> None:
        self.start_cluster()
        for job_id, status in self.store.recover(self._stale_after, proven_gone):
            log.warning("job %s: its run is gone, now %s", job_id, status)
        try:
            while not self._stop.is_set():
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("job runner: the server is gone; finishing running jobs, taking no new ones")
                    self._drain()
                    return
                self.tick()
                self._stop.wait(1.0)
        finally:
            self.shutdown()

    def tick(self) -> None:
        self._reap()
        for job_id, status in self.store.recover(self._stale_after, proven_gone):
            log.warning("job %s: its run is gone, now %s", job_id, status)
        if len(self._running) >= self.settings.max_running_jobs or not self.store.ids_with_status(["queued"]):
            return
        if not self._cluster_ready():
            return
        while len(self._running) < self.settings.max_running_jobs:
            job = self.store.claim_next(self.name)
            if job is None:
                break
            self._launch(job.id)

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        for running in list(self._running.values()):
            self._kill(running)
            if running.attempt is not None:
                self.store.requeue(running.job_id, running.attempt, "the job runner stopped")
        self._running.clear()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _cluster_ready(self) -> bool:
        """Whether jobs can start: an external scheduler must answer (a job started on a dead one
        would only give itself back to the queue and use up one of its attempts). No workers are
        required: an adaptive cluster starts them when tasks arrive."""
        if self._cluster is not None or not self.settings.dask_scheduler:
            return True
        ready = probe_scheduler(self.settings.dask_scheduler, timeout=3.0) is not None
        if ready != self._scheduler_was_ready:
            log.log(logging.INFO if ready else logging.WARNING, "job runner: the Dask scheduler %s is %s",
                    self.settings.dask_scheduler, "reachable" if ready else "unreachable; starting no jobs")
            self._scheduler_was_ready = ready
        return ready

    def _launch(self, job_id: str) -> None:
        folder = JobFolder.of(self.settings, job_id)
        folder.root.mkdir(parents=True, exist_ok=True)
        output = folder.process_log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERRACUBE_")}
        env.update(self.settings.as_environment())
        attempt = self.store.attempt(job_id)
        command = [sys.executable, "-m", "backend.jobs.execute", job_id]
        if self._cluster is not None:  # the job's cluster lives and dies with this process
            command += ["--cluster-owner", str(os.getpid())]
        with open(output, "wb") as handle:
            process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        if attempt is not None:
            self.store.set_pid(job_id, attempt, process.pid)
        self._running[job_id] = _Running(job_id, attempt, process, output)
        log.info("job %s: started (pid %s)", job_id, process.pid)

    def _reap(self) -> None:
        for job_id, running in list(self._running.items()):
            code = running.process.poll()
            ours = self.store.attempt(job_id) == running.attempt
            status = self.store.status(job_id) if ours else "taken over"
            if code is None:
                if status != "running":  # canceled, deleted or re-queued: stop its computation
                    self._kill(running)
                    del self._running[job_id]
                    log.info("job %s: process ended (%s)", job_id, status)
                continue
            del self._running[job_id]
            if status == "running" and code == EXIT_REQUEUED and running.attempt is not None:
                # it lost its cluster but could not record that (the store was away meanwhile)
                self.store.requeue(job_id, running.attempt, "its process lost its Dask cluster")
            elif status == "running":  # the process died without recording an outcome
                tail = running.output.read_text(errors="replace")[-1500:] if running.output.exists() else ""
                reason = "killed (out of memory?)" if code < 0 else f"exit code {code}"
                message = f"The job's process ended unexpectedly ({reason})."
                self.store.log(job_id, "error", message, {"output": tail})
                self.store.finish(job_id, "error", message + (f" Last output: {tail.strip()[-300:]}" if tail else ""),
                                  attempt=running.attempt)

    def _drain(self) -> None:
        while self._running and not self._stop.is_set():
            self._reap()
            self._stop.wait(1.0)

    @staticmethod
    def _kill(running: _Running) -> None:
        try:
            os.killpg(running.process.pid, signal.SIGTERM)
            running.process.wait(timeout=10)
        except (ProcessLookupError, PermissionError):
            pass
        except subprocess.TimeoutExpired:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()


def proven_gone(attempt: str, pid: int | None) -> bool:
    """Whether a run of a job is provably over: its runner (named ``host:pid`` in the attempt,
    ``<host>:<pid>#<token>``) ran on this host, and neither that runner nor the job's process
    (which runs on its runner's host) exists here any more.

    Only proof counts: a run of another host, or one whose process id is not recorded yet, waits
    for its heartbeat to go stale; a process id that was given to another process meanwhile looks
    alive, which only makes us wait too. A job process that outlived its runner (it computes on an
    external cluster) is alive and keeps its job. Runners that share a store need distinct host
    names (separate machines and containers have them)."""
    runner = attempt.rsplit("#", 1)[0]
    host, _, runner_pid = runner.rpartition(":")
    if pid is None or host != socket.gethostname() or not runner_pid.isdigit():
        return False
    return not _exists(int(runner_pid)) and not _exists(pid)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a zombie (dead, not yet reaped by whoever inherited it) is gone too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def probe_scheduler(address: str, timeout: float = 5.0) -> int | None:
    """The number of workers of the Dask scheduler at ``address``, asked over a new connection
    (not a client's, which may be the thing that broke); None when it does not answer."""
    import asyncio

    from distributed.core import rpc
    from distributed.security import Security

    # the connection a Client(address) makes: TLS and the rest from the Dask configuration
    connection_args = Security().get_connection_args("client")

    async def identity() -> int:
        async with rpc(address, timeout=timeout, connection_args=connection_args) as scheduler:
            info = await asyncio.wait_for(scheduler.identity(), timeout)
        return int(info.get("n_workers", len(info.get("workers", {}))))

    try:
        return asyncio.run(identity())
    except Exception:  # refused, timed out, closed, not a scheduler: it does not answer
        return None
