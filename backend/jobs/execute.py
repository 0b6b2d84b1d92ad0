"""Run one batch job: ``python -m backend.jobs.execute JOB_ID`` (started by the job runner).

Each job runs in its own process: the runner cancels a job by ending that process (a Dask
scheduler drops the tasks of a client that disconnects), and a job that exhausts memory or crashes
in a library takes only itself down. The process gets the runner's settings whole (as
``TERRACUBE_*`` variables, :meth:`backend.settings.Settings.as_environment`), builds the same
services as the API, evaluates the graph with :mod:`backend.evaluation`, computes on the Dask
scheduler named by ``TERRACUBE_DASK_SCHEDULER`` (threads when unset), writes the results and their
STAC description into its attempt's folder (:mod:`backend.jobs.folder`), and records progress,
logs and the outcome in the job store.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from backend.evaluation import evaluate, process_env
from backend.jobs.folder import JobFolder
from backend.jobs.results import save_job_result, write_stac
from backend.jobs.store import LOG_LEVELS, JobRecord, JobStore
from backend.services import Services, build_services
from backend.settings import Settings
from processes.core.errors import OpenEOError
from processes.formats.blocks import progress_callback

_COG = "image/tiff; application=geotiff; profile=cloud-optimized"


class _JobLog:
    """``ProcessEnv.log`` for a job: entries at or above the job's log level go to the store."""

    def __init__(self, store: JobStore, job_id: str, level: str):
        self._store, self._job_id, self._minimum = store, job_id, LOG_LEVELS.get(level, 1)

    def __call__(self, level: str, message: str, data: Any = None) -> None:
        if LOG_LEVELS.get(level, 1) >= self._minimum:
            self._store.log(self._job_id, level, message, data)


class _Heartbeat:
    """Reports progress to the store while the job runs; ends the process at once when the store
    says the job is no longer this attempt's (canceled, or taken over by another run)."""

    def __init__(self, store: JobStore, job_id: str, attempt: str | None, interval: float):
        self._store, self._job_id, self._attempt, self._interval = store, job_id, attempt, interval
        self._stop = threading.Event()
        self.progress = 0.0

    def start(self) -> None:
        threading.Thread(target=self._beat, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            # Without an attempt no runner claimed the job: the store would match no run either (a
            # running job always has its runner's token), so this process is not the job's run.
            if self._attempt is None or not self._store.heartbeat(self._job_id, self._attempt, self.progress):
                os._exit(3)


def run_job(settings: Settings, job_id: str) -> int:
    services = build_services(settings)
    store = services.jobs
    job = store.record(job_id)
    attempt = store.attempt(job_id)
    folder = JobFolder.of(settings, job_id)
    scratch = folder.scratch(attempt)
    shutil.rmtree(scratch, ignore_errors=True)
    heartbeat = _Heartbeat(store, job_id, attempt, min(5.0, settings.job_heartbeat_timeout_seconds / 4))
    heartbeat.start()
    client = _dask_client(settings)
    log = _JobLog(store, job_id, job.log_level)
    try:
        files = _compute(services, job, scratch, heartbeat, log)
        heartbeat.stop()
        if store.attempt(job_id) != attempt or store.status(job_id) != "running":
            return 3  # canceled or taken over while writing: leave the job to its new owner
        folder.publish(scratch)
        if store.finish(job_id, "finished", attempt=attempt):
            log("info", f"Job finished: {len(files)} result file(s).", {"files": [f.name for f in files]})
        return 0
    except Exception as exc:
        _record_failure(store, job_id, attempt, exc)
        return 1
    finally:
        heartbeat.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if client is not None:
            client.close()


def _compute(services: Services, job: JobRecord, scratch: Path, heartbeat: _Heartbeat, log: _JobLog) -> list[Path]:
    """Evaluate the job's graph, write its results and their STAC description into ``scratch``."""
    log("info", "Job started.", {"scheduler": services.settings.dask_scheduler or "local threads"})
    env = process_env(services, job.user_id, work_dir=scratch, log=log)
    value = evaluate(services, job.process, env, "job", job.parameters)
    progress_callback.set(lambda pct: setattr(heartbeat, "progress", min(pct, 99.0)))
    files = save_job_result(value, scratch)
    media_type = getattr(value, "media_type", None) or (_COG if files[0].suffix == ".tif" else "application/json")
    write_stac(job, files, scratch, media_type)
    return files


def _record_failure(store: JobStore, job_id: str, attempt: str | None, exc: Exception) -> None:
    """The job's error as its log entry and outcome: openEO errors as they are, the rest with
    their root cause and traceback."""
    data: dict[str, Any] | None
    if isinstance(exc, OpenEOError):
        where = f" (node '{exc.node_id}')" if exc.node_id else ""
        message, code, data = f"{exc.code}{where}: {exc.message}", exc.code, {"node_id": exc.node_id}
        store.log(job_id, "error", message, data, code=code)
        store.finish(job_id, "error", message, attempt=attempt)
        return
    if isinstance(exc, MemoryError):
        message = "The job ran out of memory. Process a smaller extent per job or fewer bands/dates at once."
        store.log(job_id, "error", message)
    else:
        message = f"{type(exc).__name__}: {exc}"
        store.log(job_id, "error", f"The job failed: {message}", {"traceback": traceback.format_exc(limit=8)})
    store.finish(job_id, "error", message, attempt=attempt)


def _dask_client(settings: Settings):
    if not settings.dask_scheduler:
        return None
    from distributed import Client

    try:
        return Client(settings.dask_scheduler, timeout=30)
    except OSError as exc:
        raise SystemExit(f"cannot reach the Dask scheduler {settings.dask_scheduler}: {exc}") from None


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m backend.jobs.execute JOB_ID", file=sys.stderr)
        return 2
    return run_job(Settings.from_env(), sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
