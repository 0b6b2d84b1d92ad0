"""Run one batch job: ``python -m backend.jobs.execute JOB_ID`` (started by the job runner).

Each job runs in its own process: the runner cancels a job by ending that process (a Dask
scheduler drops the tasks of a client that disconnects), and a job that exhausts memory or crashes
in a library takes only itself down. The process evaluates the graph, computes on the Dask
scheduler named by ``TERRACUBE_DASK_SCHEDULER`` (threads when unset), writes the results and their
STAC description into the job folder, and records progress, logs and the outcome in the job store.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import threading
import traceback

from backend.catalog import build_catalog
from backend.jobs.results import save_job_result, write_stac
from backend.jobs.store import LOG_LEVELS, JobStore, make_engine
from backend.process_graphs import UdpStore
from backend.settings import Settings
from backend.workspace import Workspace
from processes.env import ProcessEnv
from processes.errors import OpenEOError
from processes.formats.blocks import progress_callback
from processes.graph import Evaluator
from processes.processing_parameters import ProcessingOptions
from processes.registry import build_registry


class _JobLog:
    """``ProcessEnv.log`` for a job: entries at or above the job's log level go to the store."""

    def __init__(self, store: JobStore, job_id: str, level: str):
        self._store, self._job_id, self._minimum = store, job_id, LOG_LEVELS.get(level, 1)

    def __call__(self, level: str, message: str, data=None) -> None:
        if LOG_LEVELS.get(level, 1) >= self._minimum:
            self._store.log(self._job_id, level, message, data)


def run_job(settings: Settings, job_id: str) -> int:
    store = JobStore(make_engine(settings.job_store_url))
    job = store.record(job_id)
    attempt = store.attempt(job_id)
    log = _JobLog(store, job_id, job.log_level)
    # Each run writes into its own folder, moved into place only when it succeeded: a run that lost
    # the job (re-queued after a missed heartbeat) can never mix its files with another run's.
    job_dir = settings.jobs_dir / job_id
    scratch = job_dir / f"run-{(attempt or 'x').rsplit('#', 1)[-1]}"
    shutil.rmtree(scratch, ignore_errors=True)
    progress = {"value": 0.0}
    stop = threading.Event()
    interval = min(5.0, settings.job_heartbeat_timeout_seconds / 4)

    def beat() -> None:
        while not stop.wait(interval):
            if not store.heartbeat(job_id, attempt, progress["value"]):
                os._exit(3)  # canceled or taken over by another run: stop computing at once

    threading.Thread(target=beat, daemon=True).start()
    client = _dask_client(settings, log)
    try:
        log("info", "Job started.", {"scheduler": settings.dask_scheduler or "local threads"})
        udps = UdpStore(store.engine)
        env = ProcessEnv(collections=build_catalog(settings), user_id=job.user_id, work_dir=scratch, log=log,
                         user_processes=functools.partial(udps.lookup, job.user_id),
                         user_file=Workspace(settings.workspaces_dir, job.user_id).resolve,
                         options=ProcessingOptions("job", job.parameters))
        value = Evaluator(build_registry(), env).evaluate_process(job.process)
        progress_callback.set(lambda pct: progress.__setitem__("value", min(pct, 99.0)))
        files = save_job_result(value, scratch)
        media_type = getattr(value, "media_type", None) or ("image/tiff; application=geotiff; profile=cloud-optimized"
                                                            if files[0].suffix == ".tif" else "application/json")
        write_stac(job, files, scratch, media_type)
        stop.set()
        if store.attempt(job_id) != attempt or store.status(job_id) != "running":
            return 3
        results = job_dir / "results"
        shutil.rmtree(results, ignore_errors=True)
        scratch.rename(results)
        if store.finish(job_id, "finished", attempt=attempt):
            log("info", f"Job finished: {len(files)} result file(s).", {"files": [f.name for f in files]})
        return 0
    except OpenEOError as err:
        where = f" (node '{err.node_id}')" if err.node_id else ""
        store.log(job_id, "error", f"{err.code}{where}: {err.message}", {"node_id": err.node_id}, code=err.code)
        store.finish(job_id, "error", f"{err.code}{where}: {err.message}", attempt=attempt)
        return 1
    except MemoryError:
        message = "The job ran out of memory. Process a smaller extent per job or fewer bands/dates at once."
        store.log(job_id, "error", message)
        store.finish(job_id, "error", message, attempt=attempt)
        return 1
    except Exception as exc:  # anything else: the root cause with its traceback in the job's log
        message = f"{type(exc).__name__}: {exc}"
        store.log(job_id, "error", f"The job failed: {message}", {"traceback": traceback.format_exc(limit=8)})
        store.finish(job_id, "error", message, attempt=attempt)
        return 1
    finally:
        stop.set()
        shutil.rmtree(scratch, ignore_errors=True)
        if client is not None:
            client.close()


def _dask_client(settings: Settings, log):
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
