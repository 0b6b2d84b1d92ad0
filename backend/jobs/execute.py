"""Run one batch job: ``python -m backend.jobs.execute JOB_ID [--cluster-owner PID]`` (started by the job runner).

A *standby* job process (``--standby`` instead of a job id) gets ready before there is a job: it
imports everything heavy, builds the services and connects its Dask client, tells the runner
``ready`` on its stdout, then blocks reading one job id line from stdin. Given one, it sends its
stdout and stderr to the job's ``process.log`` and runs the job exactly as a process started for
it would; on end of input (the runner stopped it, or is gone) it exits. See :func:`standby`.

Each job runs in its own process: the runner cancels a job by ending that process (a Dask
scheduler drops the tasks of a client that disconnects), and a job that exhausts memory or crashes
in a library takes only itself down. The process gets the runner's settings whole (as
``TERRACUBE_*`` variables, :meth:`backend.settings.Settings.as_environment`), builds the same
services as the API, evaluates the graph with :mod:`backend.evaluation`, computes on the Dask
scheduler named by ``TERRACUBE_DASK_SCHEDULER`` (threads when unset), writes the results and their
STAC description into its attempt's folder (:mod:`backend.jobs.folder`), and records progress,
logs and the outcome in the job store.

A job process that loses its compute infrastructure — the scheduler gone or unreachable, or the
runner that owned the LocalCluster (``--cluster-owner``) gone with it — does not fail the job: it
gives its attempt back to the queue (:meth:`JobStore.requeue`) and exits with
:data:`EXIT_REQUEUED`; see :meth:`_Cluster.lost` for how that is told apart from the job's own
errors. On an external cluster a job process whose runner is gone runs on and finishes by itself.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import resource
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from backend.evaluation import evaluate, process_env
from backend.jobs.folder import JobFolder
from backend.jobs.results import save_job_result, write_stac
from backend.jobs.runner import EXIT_REQUEUED, probe_scheduler
from backend.jobs.store import LOG_LEVELS, JobRecord, JobStore
from backend.services import Services, build_services
from backend.settings import Settings
from processes.core.errors import OpenEOError
from processes.formats.blocks import ProgressMeter, progress_meter

_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
EXIT_NOT_OURS = 3
"""The exit code of a job process whose attempt lost the job (canceled, re-queued, taken over)."""


class _JobLog:
    """``ProcessEnv.log`` for a job: entries at or above the job's log level go to the store."""

    def __init__(self, store: JobStore, job_id: str, level: str):
        self._store, self._job_id, self._minimum = store, job_id, LOG_LEVELS.get(level, 1)

    def __call__(self, level: str, message: str, data: Any = None) -> None:
        if LOG_LEVELS.get(level, 1) >= self._minimum:
            self._store.log(self._job_id, level, message, data)


class _Cluster:
    """The Dask cluster this job computes on, and whether it is still there for the job.

    ``owner`` is the pid of the runner whose LocalCluster this is: its scheduler lives inside that
    process and dies with it. None for an external cluster (``TERRACUBE_DASK_SCHEDULER`` set by
    the operator), which does not depend on the runner.
    """

    def __init__(self, address: str, owner: int | None):
        self.address, self.owner = address, owner
        self.client: Any = None
        # The runner starts the job, so it is our parent until it dies; after that the process is
        # re-parented. Comparing parents cannot be fooled by a reused pid, so use it when it applies.
        self._owner_is_parent = owner is not None and os.getppid() == owner

    def connect(self) -> None:
        from distributed import Client

        self.client = Client(self.address, timeout=30)

    def connected(self) -> bool:
        return self.client is not None and self.client.status == "running"

    def close(self) -> None:
        if self.client is not None:
            try:  # the default waits twice the connect timeout when the scheduler is gone
                self.client.close(timeout=5)
            except Exception:  # closing a client whose scheduler is gone may complain; we are done with it
                pass

    def owner_gone(self) -> bool:
        if self.owner is None:
            return False
        if self._owner_is_parent:
            return os.getppid() != self.owner
        try:
            os.kill(self.owner, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def watch(self) -> str | None:
        """Cheap checks for the heartbeat, while the job may be busy elsewhere or blocked waiting
        for results: the runner that owned the cluster is gone, or this client gave up on its
        scheduler (it closes itself after failing to reconnect for its timeout)."""
        if self.owner_gone():
            return f"the job runner (pid {self.owner}) that ran its Dask cluster is gone"
        if self.client is not None and self.client.status in ("closing", "closed"):
            return f"its connection to the Dask scheduler {self.address} is closed"
        return None

    def lost(self, exc: BaseException) -> str | None:
        """Why ``exc`` means this job lost its compute infrastructure, or None when it is the job's
        own error (then the job fails as always).

        The exception's type alone cannot tell: a dead scheduler surfaces as a cancelled future, a
        closed comm, a timeout or an OSError — and the evaluator wraps whatever a process raised
        into an OpenEOError of its node, while a genuine error may be an OSError too (a missing
        file). So the state of the cluster decides, checked when the exception arrives:

        1. a cancelled future or a closed comm anywhere in the exception's chain: lost. The job
           never cancels its own futures; only a scheduler that dropped this client, or the client
           losing its connection, does — even when the scheduler answers again now (restarted at
           the same address), the job's tasks are gone.
        2. the runner that owned the LocalCluster is gone, or this client is no longer connected: lost.
        3. the scheduler does not answer a new connection: lost.
        4. a KilledWorker, timeout or OSError while the scheduler answers: ask again after a
           moment — a cluster that shuts down loses its workers before its scheduler — and call it
           lost if the scheduler stopped answering or has no workers left.

        Otherwise the scheduler is up, connected and has workers: the error is the job's own
        (OpenEOError, a bug in a process, a task that kept killing healthy workers) and fails the
        job. Where the facts are unclear the answer is "lost": wrongly so costs a re-run (at most
        MAX_ATTEMPTS runs, and a genuine error comes back in the next one), while a wrong "own
        error" would fail a healthy job for good.
        """
        from distributed import KilledWorker
        from distributed.comm import CommClosedError

        chain = list(_exception_chain(exc))
        for error in chain:
            if isinstance(error, (concurrent.futures.CancelledError, CommClosedError)):
                why = getattr(error, "reason", None) or (str(error).splitlines() or [""])[0]
                return f"the Dask scheduler dropped its tasks ({type(error).__name__}: {why})"
        if (reason := self.watch()) is not None:
            return reason
        if self.client is not None and self.client.status != "running":
            return f"its client lost the Dask scheduler {self.address} ({self.client.status})"
        if probe_scheduler(self.address) is None:
            return f"the Dask scheduler {self.address} does not answer"
        if any(isinstance(error, (KilledWorker, OSError)) for error in chain):
            time.sleep(2.0)
            if (reason := self.watch()) is not None:
                return reason
            workers = probe_scheduler(self.address)
            if workers is None:
                return f"the Dask scheduler {self.address} stopped answering"
            if workers == 0:
                return f"the Dask cluster at {self.address} has no workers left"
        return None


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class _Heartbeat:
    """Reports progress to the store while the job runs; ends the process at once when the store
    says the job is no longer this attempt's (canceled, or taken over by another run), and gives the
    job back to the queue when ``watch`` says the compute infrastructure is gone."""

    def __init__(self, store: JobStore, job_id: str, attempt: str | None, interval: float,
                 watch: Callable[[], str | None], scratch: Path):
        self._store, self._job_id, self._attempt, self._interval = store, job_id, attempt, interval
        self._watch, self._scratch = watch, scratch
        self._stop = threading.Event()
        # Held while deciding to end the process: once stop() returned, the heartbeat ends nothing.
        self._lock = threading.Lock()
        self.progress = 0.0

    def start(self) -> None:
        threading.Thread(target=self._beat, daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            self._stop.set()

    def _beat(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(min(1.0, self._interval)):  # watch every second, beat every interval
            with self._lock:
                if self._stop.is_set():
                    return
                # Without an attempt no runner claimed the job: the store would match no run either (a
                # running job always has its runner's token), so this process is not the job's run.
                if self._attempt is None:
                    self._end(EXIT_NOT_OURS)
                reason = self._watch()
                if reason is not None:
                    try:
                        self._store.requeue(self._job_id, self._attempt, reason)
                    finally:  # the store unreachable too: the stale heartbeat re-queues the job
                        self._end(EXIT_REQUEUED)
                if time.monotonic() - last < self._interval:
                    continue
                last = time.monotonic()
                try:
                    ours = self._store.heartbeat(self._job_id, self._attempt, self.progress)
                except Exception as exc:  # a store that is briefly away: beat again next time
                    print(f"heartbeat failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                    continue
                if not ours:
                    self._end(EXIT_NOT_OURS)

    def _end(self, code: int) -> NoReturn:
        """End the process from this thread, whatever the main thread is doing; the attempt's
        folder goes with it (nothing of it becomes results)."""
        shutil.rmtree(self._scratch, ignore_errors=True)
        os._exit(code)


def run_job(settings: Settings, job_id: str, cluster_owner: int | None = None, *,
            services: Services | None = None, cluster: _Cluster | None = None) -> int:
    """Run the job; ``services`` and ``cluster`` (maybe connected already) are a standby's."""
    services = services or build_services(settings)
    store = services.jobs
    job = store.record(job_id)
    attempt = store.attempt(job_id)
    folder = JobFolder.of(settings, job_id)
    scratch = folder.scratch(attempt)
    shutil.rmtree(scratch, ignore_errors=True)
    if cluster is None and settings.dask_scheduler:
        cluster = _Cluster(settings.dask_scheduler, cluster_owner)
    heartbeat = _Heartbeat(store, job_id, attempt, min(5.0, settings.job_heartbeat_timeout_seconds / 4),
                           cluster.watch if cluster is not None else lambda: None, scratch)
    heartbeat.start()
    log = _JobLog(store, job_id, job.log_level)
    try:
        if cluster is not None and not cluster.connected():
            cluster.close()  # a standby's client that lost its scheduler meanwhile: connect anew
            cluster.connect()
        usage = _Usage(cluster.client if cluster is not None else None)
        with usage.measuring():
            files, values_read = _compute(services, job, scratch, heartbeat, log)
        heartbeat.stop()
        if store.attempt(job_id) != attempt or store.status(job_id) != "running":
            return EXIT_NOT_OURS  # canceled or taken over while writing: leave the job to its new owner
        store.set_usage(job_id, attempt, usage.document(values_read, files))
        folder.publish(scratch)
        if store.finish(job_id, "finished", attempt=attempt):
            log("info", f"Job finished: {len(files)} result file(s).", {"files": [f.name for f in files]})
        return 0
    except Exception as exc:
        heartbeat.stop()
        lost = cluster.lost(exc) if cluster is not None else None
        if lost is not None:
            if attempt is not None:
                store.requeue(job_id, attempt, lost)
            return EXIT_REQUEUED
        _record_failure(store, job_id, attempt, exc)
        return 1
    finally:
        heartbeat.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        if cluster is not None:
            cluster.close()


def _compute(services: Services, job: JobRecord, scratch: Path, heartbeat: _Heartbeat,
             log: _JobLog) -> tuple[list[Path], int]:
    """Evaluate the job's graph, write its results and their STAC description into ``scratch``;
    returns the files and the number of values its loads read."""
    log("info", "Job started.", {"scheduler": services.settings.dask_scheduler or "local threads"})
    env = process_env(services, job.user_id, work_dir=scratch, log=log)
    value = evaluate(services, job.process, env, "job", job.parameters)
    progress_meter.set(ProgressMeter(lambda pct: setattr(heartbeat, "progress", pct)))
    files = save_job_result(value, scratch, lambda level, message: log(level, message))
    media_type = getattr(value, "media_type", None) or (_COG if files[0].suffix == ".tif" else "application/json")
    write_stac(job, files, scratch, media_type)
    return files, sum(int(load["values"]) for load in env.loads)


class _Usage:
    """What one run used, in openEO's usage form (``{"name": {"value", "unit"}}``).

    - ``cpu``: CPU seconds of the job process (its own and its children's) plus, on a Dask cluster,
      the seconds the cluster's workers spent computing this run's tasks (from the scheduler's task
      stream): the workers are shared, so only this job's tasks count;
    - ``duration``: wall-clock seconds of evaluating and writing;
    - ``memory``: the peak resident memory of the job process in MB (blocks travel to it for
      writing; a cluster's workers are shared by jobs and not counted);
    - ``input_pixels``: values the graph's loads read; ``result_bytes``: bytes of the result files.
    """

    def __init__(self, client: Any):
        self._client = client
        self._tasks: list[dict[str, Any]] = []
        self._seconds = 0.0
        self._cpu = 0.0

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        started, cpu = time.perf_counter(), _process_cpu_seconds()
        stream: Any = None
        if self._client is not None:
            from distributed import get_task_stream

            stream = get_task_stream(self._client)
            stream.__enter__()
        try:
            yield
        finally:
            if stream is not None:
                try:
                    stream.__exit__(None, None, None)
                    self._tasks = list(stream.data)
                except Exception:  # the cluster went away: the job re-queues anyway
                    self._tasks = []
            self._seconds = time.perf_counter() - started
            self._cpu = _process_cpu_seconds() - cpu

    def document(self, values_read: int, files: list[Path]) -> dict[str, Any]:
        worker_seconds = sum(stop["stop"] - stop["start"] for task in self._tasks
                             for stop in task.get("startstops", ()) if stop.get("action") == "compute")
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "cpu": {"value": round(self._cpu + worker_seconds, 2), "unit": "cpu-seconds"},
            "duration": {"value": round(self._seconds, 2), "unit": "seconds"},
            "memory": {"value": round(peak_kb / 1024), "unit": "mb"},
            "input_pixels": {"value": values_read, "unit": "values"},
            "result_bytes": {"value": sum(f.stat().st_size for f in files if f.exists()), "unit": "bytes"},
        }


def _process_cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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


READY = b"ready\n"
"""What a standby writes to its ``--ready-fd`` once it is warm."""


def _warm_up() -> None:
    """Import what jobs import lazily (the evaluator pulls in the rest), so no job pays for it."""
    import distributed  # noqa: F401
    import pyproj  # noqa: F401
    import rasterio.shutil  # noqa: F401
    from pyproj import Transformer

    Transformer.from_crs(32632, 4326, always_xy=True)  # PROJ's database opened once


def standby(settings: Settings, cluster_owner: int | None = None, ready_fd: int | None = None,
            runner: int | None = None) -> int:
    """Get warm, wait for a job id on stdin, then run that job with its output in ``process.log``.

    Runs from the runner's start of the standby until it is handed a job; if its Dask client can't
    connect now, the job connects (and gives itself back to the queue if that fails too)."""
    began = time.monotonic()
    handed = threading.Event()
    threading.Thread(target=_exit_when_orphaned, args=(runner or os.getppid(), handed), daemon=True).start()
    _warm_up()
    services = build_services(settings)
    cluster = _Cluster(settings.dask_scheduler, cluster_owner) if settings.dask_scheduler else None
    if cluster is not None:
        try:
            cluster.connect()
        except Exception as exc:
            print(f"standby: could not connect to {cluster.address} yet: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            cluster.close()
            cluster.client = None
    warm = time.monotonic() - began
    if ready_fd is not None:
        try:
            os.write(ready_fd, READY)
        except OSError:  # the runner handed it a job before it was ready, and no longer listens
            pass
        os.close(ready_fd)
    line = sys.stdin.readline()
    job_id = line.strip()
    if not job_id:  # end of input: the runner stopped this standby, or is gone
        os._exit(0)  # nothing to clean up; the scheduler drops a client that went away
    handed.set()
    handed_at = time.monotonic()
    _redirect_output(JobFolder.of(settings, job_id).process_log)
    print(f"Standby job process {os.getpid()} (warm after {warm:.2f} s, waited {handed_at - began - warm:.2f} s) "
          f"runs job {job_id}.", flush=True)
    return run_job(settings, job_id, cluster_owner, services=services, cluster=cluster)


def _exit_when_orphaned(runner: int, handed: threading.Event) -> None:
    """A standby whose runner is gone (killed) exits, also while still importing or connecting."""
    while os.getppid() == runner:
        if handed.wait(0.2):
            return
    os._exit(0)


def _redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so that libraries and
    child processes follow) to the end of ``path``; stdin from /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    nothing = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        os.dup2(nothing, 0)
    finally:
        os.close(target)
        os.close(nothing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.jobs.execute", description="Run one batch job.")
    parser.add_argument("job_id", nargs="?")
    parser.add_argument("--standby", action="store_true",
                        help="get ready first, then run the job whose id comes as one line on stdin")
    parser.add_argument("--runner", type=int, metavar="PID", help="with --standby: exit when this process is gone")
    parser.add_argument("--ready-fd", type=int, metavar="FD", help="with --standby: where to write 'ready' when warm")
    parser.add_argument("--cluster-owner", type=int, metavar="PID",
                        help="the runner whose LocalCluster TERRACUBE_DASK_SCHEDULER is: the job gives itself back "
                             "to the queue when that process is gone")
    args = parser.parse_args(argv)
    if args.standby == (args.job_id is not None):
        parser.error("give either a job id or --standby")
    if args.standby:
        return standby(Settings.from_env(), args.cluster_owner, args.ready_fd, args.runner)
    return run_job(Settings.from_env(), args.job_id, args.cluster_owner)


if __name__ == "__main__":
    sys.exit(main())
