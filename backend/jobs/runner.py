"""The job runner: takes queued jobs from the store and runs each in its own process.

One loop, once a second: end the processes of jobs that were canceled, record jobs whose process
died without a word (out of memory, killed), re-queue jobs whose runner vanished (see
``JobStore.recover``), and start queued jobs while fewer than ``max_running_jobs`` run. Jobs compute
on a Dask cluster: the one at ``TERRACUBE_DASK_SCHEDULER``, or a LocalCluster the runner starts.
Run it with ``terracube worker``; ``terracube serve`` starts one unless ``TERRACUBE_EMBEDDED_RUNNER``
is false. Several runners may share one store: claiming a job is atomic.
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

    def start_cluster(self) -> None:
        """A LocalCluster for the jobs when no scheduler is configured."""
        if self.settings.dask_scheduler:
            return
        from distributed import LocalCluster

        workers = max(1, min(2, os.cpu_count() or 1))
        self._cluster = LocalCluster(n_workers=workers, threads_per_worker=max(1, (os.cpu_count() or 2) // workers),
                                     processes=True, dashboard_address=None, host="127.0.0.1")
        self.settings = replace(self.settings, dask_scheduler=self._cluster.scheduler_address)
        log.info("job runner: LocalCluster at %s", self._cluster.scheduler_address)

    def run_forever(self, parent_pid: int | None = None) -> None:
        self.start_cluster()
        for job_id, status in self.store.recover(self._stale_after):
            log.warning("job %s: runner gone, now %s", job_id, status)
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
        self.store.recover(self._stale_after)
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
            self.store.log(running.job_id, "warning", "The job runner stopped; the job will be queued again.")
        self._running.clear()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _launch(self, job_id: str) -> None:
        folder = JobFolder.of(self.settings, job_id)
        folder.root.mkdir(parents=True, exist_ok=True)
        output = folder.process_log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERRACUBE_")}
        env.update(self.settings.as_environment())
        with open(output, "wb") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "backend.jobs.execute", job_id],
                env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._running[job_id] = _Running(job_id, self.store.attempt(job_id), process, output)
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
            if status == "running":  # the process died without recording an outcome
                tail = running.output.read_text(errors="replace")[-1500:] if running.output.exists() else ""
                reason = "killed (out of memory?)" if code < 0 else f"exit code {code}"
                message = f"The job's process ended unexpectedly ({reason})."
                self.store.log(job_id, "error", message, {"output": tail})
                self.store.finish(job_id, "error", message + (f" Last output: {tail.strip()[-300:]}" if tail else ""),
                                  attempt=running.attempt)

    def _drain(self) -> None:
        while self._running:
            self._reap()
            time.sleep(1.0)

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
