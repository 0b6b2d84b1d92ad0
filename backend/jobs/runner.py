"""The job runner: takes queued jobs from the store and runs each in its own process.

One loop, woken when a job is queued or a job process ends (:mod:`backend.jobs.wakeup`), else once
a second: end the processes of jobs that were canceled, record jobs whose process
died without a word (out of memory, killed), re-queue jobs whose run vanished (see
``JobStore.recover``), and start queued jobs while fewer than ``max_running_jobs`` run. It also
says that it is alive (:mod:`backend.jobs.beacon`, read by ``/health``) and, every
``TERRACUBE_RETENTION_SWEEP_MINUTES``, removes expired results and jobs (:mod:`backend.jobs.retention`). Jobs compute
on a Dask cluster: the one at ``TERRACUBE_DASK_SCHEDULER``, or a LocalCluster the runner starts.
Run it with ``terracube worker``; ``terracube serve`` starts one unless ``TERRACUBE_EMBEDDED_RUNNER``
is false. Several runners may share one store: claiming a job is atomic.

A job starts warm: the runner keeps one *standby* job process (``backend.jobs.execute --standby``)
that has imported everything, built the services and connected to the cluster, and hands it the
next job it claims (then starts the next standby). The job still gets a process of its own: the
standby *becomes* the job's process, in its own session, with its pid recorded as always. Without
a living standby (the first job, several started at once) a job process is started for the job.

Who outlives whom: job processes run in their own session, so a signal to the server's process group
does not reach them. The LocalCluster's scheduler lives inside the runner, so a job process whose
runner is gone has lost its cluster and gives its job back to the queue (``backend.jobs.execute``);
on an external cluster it runs on and finishes. A runner whose server is gone takes no new jobs and
lets its running ones finish before it exits. A runner that starts re-queues at once the runs it can
prove dead (:func:`proven_gone`), the rest once their heartbeat is stale.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from backend.jobs import retention
from backend.jobs.beacon import RunnerBeacons
from backend.jobs.folder import JobFolder
from backend.jobs.store import JobStore, make_engine
from backend.jobs.wakeup import Wakeup
from backend.settings import Settings

if TYPE_CHECKING:
    from distributed import LocalCluster  # imported when started: the API workers never need it

log = logging.getLogger(__name__)

EXIT_REQUEUED = 75
"""The exit code of a job process that gave its job back to the queue (``EX_TEMPFAIL``)."""
POLL_SECONDS = 1.0
"""The loop's interval when nothing wakes it (runners of other hosts sharing a store, recovery)."""
STANDBY_AFTER_SECONDS = 1.0
"""How long after starting a job the runner waits before starting the next standby, unless the job
ended sooner: a standby's warm-up takes a core for a few seconds, which a job just started would
feel on a small machine."""


@dataclass
class _Running:
    job_id: str
    attempt: str | None
    process: subprocess.Popen
    output: Path
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Standby:
    process: subprocess.Popen
    key: tuple
    """What it was started with (command and environment): a standby of other settings is replaced."""
    ready_fd: int | None
    """Where it says "ready" (the reading end of a pipe); None once read or closed."""
    ready: bool = False
    started: float = field(default_factory=time.monotonic)

    def close_ready_fd(self) -> None:
        if self.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.ready_fd)
            self.ready_fd = None


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
        self._wakeup: Wakeup | None = None
        self._standby: _Standby | None = None
        self.use_standby = True
        self._beacons = RunnerBeacons(self.store.engine)
        self._beat_every = min(10.0, settings.job_heartbeat_timeout_seconds / 4)
        self._last_beat: float | None = None
        self._last_sweep: float | None = None

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
        self._wakeup = Wakeup(self.settings.data_dir)
        self._wake_on_child_exit()
        for job_id, status in self.store.recover(self._stale_after, proven_gone):
            log.warning("job %s: its run is gone, now %s", job_id, status)
        try:
            while not self._stop.is_set():
                if parent_pid is not None and os.getppid() != parent_pid:
                    log.warning("job runner: the server is gone; finishing running jobs, taking no new ones")
                    self._stop_standby()
                    self._drain()
                    return
                self.tick()
                self._keep_standby()
                self.wait(POLL_SECONDS)
        finally:
            self.shutdown()

    def wait(self, timeout: float) -> None:
        """Until woken (a job queued, a job process ended, a standby got ready, stop()) or ``timeout``."""
        if self._stop.is_set():
            return
        if self._wakeup is None:
            self._stop.wait(timeout)
            return
        standby = self._standby
        listen = [standby.ready_fd] if standby is not None and standby.ready_fd is not None else []
        if standby is None and self.use_standby and self._running and self._free_slots():
            # the next standby is due soon: wake up for it
            latest = max(running.started for running in self._running.values())
            timeout = min(timeout, max(0.0, latest + STANDBY_AFTER_SECONDS - time.monotonic()))
        self._wakeup.wait(timeout, listen)
        self._check_ready()

    def _wake_on_child_exit(self) -> None:
        """A job process that ends wakes the loop (SIGCHLD), so the next queued job starts at once."""
        wakeup = self._wakeup
        if wakeup is None:
            return
        with contextlib.suppress(ValueError):  # not the main thread: the loop's poll notices instead
            signal.signal(signal.SIGCHLD, lambda *_: wakeup.wake())

    def tick(self) -> None:
        self._housekeeping()
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

    def _housekeeping(self) -> None:
        """The runner's heartbeat and, when due, the retention sweep; neither may stop the loop."""
        now = time.monotonic()
        if self._last_beat is None or now - self._last_beat >= self._beat_every:
            try:
                self._beacons.beat(self.name)
                self._last_beat = now
            except Exception:
                log.exception("job runner: cannot record its heartbeat in the job store")
        if self._last_sweep is None or now - self._last_sweep >= self.settings.retention_sweep_minutes * 60:
            self._last_sweep = now
            try:
                retention.sweep(self.settings, self.store)
            except Exception:
                log.exception("job runner: the retention sweep failed; it runs again in %d minutes",
                              self.settings.retention_sweep_minutes)

    def stop(self) -> None:
        self._stop.set()
        if self._wakeup is not None:
            self._wakeup.wake()

    def shutdown(self) -> None:
        self._stop_standby()
        for running in list(self._running.values()):
            self._kill(running)
            if running.attempt is not None:
                self.store.requeue(running.job_id, running.attempt, "the job runner stopped")
        self._running.clear()
        with contextlib.suppress(Exception):  # the store may be what went away
            self._beacons.remove(self.name)
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._wakeup is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            self._wakeup.close()
            self._wakeup = None

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

    def _job_command(self, *arguments: str) -> tuple[list[str], dict[str, str]]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERRACUBE_")}
        env.update(self.settings.as_environment())
        command = [sys.executable, "-m", "backend.jobs.execute", *arguments]
        if self._cluster is not None:  # the job's cluster lives and dies with this process
            command += ["--cluster-owner", str(os.getpid())]
        return command, env

    def _launch(self, job_id: str) -> None:
        folder = JobFolder.of(self.settings, job_id)
        folder.root.mkdir(parents=True, exist_ok=True)
        output = folder.process_log
        attempt = self.store.attempt(job_id)
        with open(output, "wb") as handle:
            process = self._hand_to_standby(job_id)
            how = "in the standby process"
            if process is None:
                command, env = self._job_command(job_id)
                process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                           start_new_session=True)
                how = "in a new process"
        if attempt is not None:
            self.store.set_pid(job_id, attempt, process.pid)
        self._running[job_id] = _Running(job_id, attempt, process, output)
        log.info("job %s: started %s (pid %s)", job_id, how, process.pid)

    # --- the standby job process ------------------------------------------------------------------
    def _hand_to_standby(self, job_id: str) -> subprocess.Popen | None:
        """Give the job to the standby: it runs it once warm (if it is not yet, it is still ahead of
        a process started now). None when there is no living standby of the current settings."""
        standby, self._standby = self._standby, None
        if standby is None:
            return None
        process = standby.process
        if process.poll() is not None or standby.key != self._standby_key() or process.stdin is None:
            self._end_standby(standby)
            return None
        try:
            process.stdin.write(f"{job_id}\n".encode())
            process.stdin.close()  # the job is all it reads
        except OSError:  # it died just now
            self._end_standby(standby)
            return None
        standby.close_ready_fd()
        log.debug("job %s: handed to the standby (pid %s, %s)", job_id, process.pid,
                  "ready" if standby.ready else f"warming up for {time.monotonic() - standby.started:.1f} s")
        return process

    def _standby_key(self) -> tuple:
        command, env = self._job_command("--standby")
        return tuple(command), tuple(sorted(env.items()))

    def _free_slots(self) -> bool:
        return len(self._running) < self.settings.max_running_jobs

    def _keep_standby(self) -> None:
        """One standby while jobs can start: replace one that died or has other settings; a new one
        once the last handed-over job has had its first second (or ended)."""
        if not self.use_standby or self._stop.is_set():
            return
        standby = self._standby
        if standby is not None:
            if standby.process.poll() is None and standby.key == self._standby_key():
                return
            log.warning("job runner: the standby job process (pid %s) %s; starting another", standby.process.pid,
                        "ended" if standby.process.poll() is not None else "has old settings")
            self._end_standby(standby)
            self._standby = None
        if not self._free_slots():
            return
        recent = [r for r in self._running.values() if time.monotonic() - r.started < STANDBY_AFTER_SECONDS]
        if recent:
            return
        command, env = self._job_command("--standby")
        ready_read, ready_write = os.pipe()
        try:
            # its output goes where the runner's goes until it has a job (then to the job's process.log)
            process = subprocess.Popen([*command, "--ready-fd", str(ready_write), "--runner", str(os.getpid())],
                                       env=env, stdin=subprocess.PIPE,
                                       pass_fds=(ready_write,), start_new_session=True)
        except BaseException:
            os.close(ready_read)
            raise
        finally:
            os.close(ready_write)
        self._standby = _Standby(process, self._standby_key(), ready_read)
        log.debug("job runner: standby job process started (pid %s)", process.pid)

    def _check_ready(self) -> None:
        standby = self._standby
        if standby is None or standby.ready_fd is None or not select.select([standby.ready_fd], [], [], 0)[0]:
            return
        said = os.read(standby.ready_fd, 64)
        standby.close_ready_fd()  # said it (or ended: then the loop replaces it)
        if said:
            standby.ready = True
            log.info("job runner: standby job process %s ready after %.1f s", standby.process.pid,
                      time.monotonic() - standby.started)

    def _stop_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None:
            self._end_standby(standby)

    @staticmethod
    def _end_standby(standby: _Standby) -> None:
        process = standby.process
        standby.close_ready_fd()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # end of input: a waiting standby exits by itself
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

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
            self.wait(POLL_SECONDS)

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
