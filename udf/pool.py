"""Server side of the UDF runtime: a pool of long-lived, confined worker processes.

Strategy. Starting Python with numpy, xarray, pandas and openeo takes about a second, so workers
live long and serve many blocks. But a worker that has run one user's code must never run another
user's (the code could leave something behind: a patched library, a file, a global), so each
worker is bound to one key — (user, code) — the first time it is used. A request for a key takes
an idle worker of that key, else a blank one (started in advance), else starts one, else replaces
the least recently used idle worker of another key; it waits when all are busy.

Failure is contained per call: the server waits for an answer at most the wall-clock timeout and
then kills the worker's process group; a worker that dies (``os._exit``, segfault, CPU limit) is
detected by its closed socket. Either way the worker is replaced and the caller gets a
:class:`UdfError` that says what happened; other calls are unaffected.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from udf.protocol import (
    ProtocolError,
    array_from_memfd,
    array_to_memfd,
    checked_dtype,
    checked_shape,
    close_fds,
    recv_message,
    send_message,
)

log = logging.getLogger("terracube.udf")

MAX_ANSWER_BYTES = 16 << 20


class UdfError(Exception):
    """A UDF could not be run or failed; ``kind`` says why, ``str()`` is the message for the user.

    Kinds: ``user`` (the UDF raised or broke the contract), ``syntax``, ``timeout``, ``memory``,
    ``crash`` (the worker died), ``internal`` (the runtime failed).
    """

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class UdfLimits:
    """Limits of UDF workers; from ``TERRACUBE_UDF_*`` environment variables where set."""

    timeout_seconds: float = 300.0
    """Wall-clock time one block may take (``TERRACUBE_UDF_TIMEOUT``)."""
    cpu_seconds: int = 600
    """CPU seconds one block may take (``TERRACUBE_UDF_CPU_SECONDS``)."""
    memory_bytes: int = 4 << 30
    """Address space of a worker (``TERRACUBE_UDF_MEMORY_MB``)."""
    workers: int = field(default_factory=lambda: max(2, os.cpu_count() or 1))
    """Worker processes per server process (``TERRACUBE_UDF_WORKERS``)."""
    cpu_budget_seconds: int = 7200
    """CPU seconds a worker may use over its life before it is replaced."""
    max_file_bytes: int = 1 << 30
    """Largest file a UDF may write into its temporary folder."""
    landlock: bool = True
    """Confine the file system with Landlock where the kernel supports it."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> UdfLimits:
        limits = cls()
        updates: dict[str, Any] = {}
        if "TERRACUBE_UDF_TIMEOUT" in environ:
            updates["timeout_seconds"] = float(environ["TERRACUBE_UDF_TIMEOUT"])
        if "TERRACUBE_UDF_CPU_SECONDS" in environ:
            updates["cpu_seconds"] = int(environ["TERRACUBE_UDF_CPU_SECONDS"])
        if "TERRACUBE_UDF_MEMORY_MB" in environ:
            updates["memory_bytes"] = int(environ["TERRACUBE_UDF_MEMORY_MB"]) << 20
        if "TERRACUBE_UDF_WORKERS" in environ:
            updates["workers"] = max(1, int(environ["TERRACUBE_UDF_WORKERS"]))
        return cls(**{**asdict(limits), **updates})


def worker_environment(home: str) -> dict[str, str]:
    """The whole environment of a worker: nothing of the server's (no secrets, no paths)."""
    return {
        "PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMEXPR_MAX_THREADS": "1",
    }


def _signal_name(returncode: int | None) -> str:
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class Worker:
    """One confined worker process and the server's end of its socket."""

    def __init__(self, limits: UdfLimits):
        self.limits = limits
        self.key: str | None = None
        self.last_used = time.monotonic()
        self.home = tempfile.mkdtemp(prefix="terracube-udf-")
        os.chmod(self.home, 0o700)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {
            "memory_bytes": limits.memory_bytes, "cpu_budget_seconds": limits.cpu_budget_seconds,
            "cpu_seconds": limits.cpu_seconds, "max_file_bytes": limits.max_file_bytes, "landlock": limits.landlock,
        }
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-B", "-m", "udf.worker", str(theirs.fileno()), json.dumps(config)],
                pass_fds=[theirs.fileno()], cwd=self.home, env=worker_environment(self.home),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.info = self._answer(timeout=60)[0]
        if not self.info.get("ok"):
            self.kill()
            raise UdfError("internal", f"A UDF worker could not start: {self.info.get('message')}")
        _warn_once_without_landlock(self.info.get("landlock_abi", 0), limits.landlock)

    @property
    def pid(self) -> int:
        return self.process.pid

    def request(self, message: dict[str, Any], fds: list[int] | tuple[int, ...] = (),
                timeout: float | None = None):
        """Send one request and wait for its answer; a worker that fails is killed and UdfError raised."""
        timeout = self.limits.timeout_seconds if timeout is None else timeout
        self.last_used = time.monotonic()
        try:
            self.sock.settimeout(timeout)
            send_message(self.sock, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL), fds)
        except OSError:
            self.kill()
            raise self._death_error() from None
        return self._answer(timeout)

    def _answer(self, timeout: float) -> tuple[dict[str, Any], list[int]]:
        try:
            self.sock.settimeout(timeout)
            payload, fds = recv_message(self.sock, MAX_ANSWER_BYTES)
        except TimeoutError:
            self.kill()
            raise UdfError(
                "timeout",
                f"The UDF did not finish within {timeout:g} s (wall clock) and was stopped. Make it faster, "
                "or process less data per request (smaller extent, fewer dates).",
            ) from None
        except (ProtocolError, OSError):
            self.kill()
            raise self._death_error() from None
        try:
            answer = json.loads(payload)
            if not isinstance(answer, dict):
                raise ValueError("not an object")
        except ValueError:
            close_fds(fds)
            self.kill()
            raise UdfError("internal", "The UDF worker sent a malformed answer.") from None
        return answer, fds

    def _death_error(self) -> UdfError:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        how = _signal_name(code)
        if code is not None and -code == signal.SIGXCPU:
            return UdfError("timeout", f"The UDF used more than its {self.limits.cpu_seconds} s of CPU time and "
                                       "was stopped.")
        if code is not None and -code == signal.SIGKILL:
            return UdfError("memory", "The UDF worker was killed (SIGKILL), most likely for using too much "
                                      "memory. Process less data per request.")
        return UdfError("crash", f"The UDF's process ended unexpectedly ({how}) while running the UDF, e.g. "
                                 "by os._exit(), sys.exit() in a thread, or a crash in native code.")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        import shutil

        shutil.rmtree(self.home, ignore_errors=True)


_warned = False


def _warn_once_without_landlock(abi: int, wanted: bool) -> None:
    global _warned
    if abi < 1 and wanted and not _warned:
        _warned = True
        log.warning("Landlock is not available (kernel, LSM list or seccomp): UDF workers run with resource limits, "
                    "a clean environment and a private folder, but can read every file the server's user can read.")


def worker_key(user_id: str | None, code: str) -> str:
    return hashlib.sha256(f"{user_id or ''}\0{code}".encode()).hexdigest()


class WorkerPool:
    """Up to ``limits.workers`` workers of this server process, each bound to one (user, code).

    One more, blank, is kept ready when there is room, so a new UDF rarely waits for a start.
    """

    def __init__(self, limits: UdfLimits | None = None):
        self.limits = limits or UdfLimits.from_environ()
        self._idle: list[Worker] = []
        self._count = 0  # idle + busy + being started
        self._cond = threading.Condition()
        self._closed = False
        self.pid = os.getpid()

    # -- taking and giving back workers ------------------------------------------------------------
    def _acquire(self, key: str, code: str) -> Worker:
        worker: Worker | None  # None: a slot was reserved, the worker is started outside the lock
        with self._cond:
            while True:
                if self._closed:
                    raise UdfError("internal", "The UDF runtime is shutting down.")
                same = [w for w in self._idle if w.key == key]
                blank = [w for w in self._idle if w.key is None]
                if same or blank:
                    worker = (same or blank)[0]
                    self._idle.remove(worker)
                    break
                if self._count < self.limits.workers or self._idle:
                    stale = None
                    if self._count >= self.limits.workers:
                        stale = min(self._idle, key=lambda w: w.last_used)
                        self._idle.remove(stale)
                        self._count -= 1
                    self._count += 1
                    worker = None
                    break
                self._cond.wait()
        if worker is None:
            if stale is not None:
                stale.kill()
            try:
                worker = Worker(self.limits)
            except BaseException:
                self._forget()
                raise
        if worker.key is None:
            worker.key = key
            self._start_spare()
            try:
                answer, fds = worker.request({"op": "load", "code": code})
                close_fds(fds)
            except BaseException:
                self._forget()
                raise
            if not answer.get("ok"):
                worker.kill()  # its namespace is unusable; a new attempt starts afresh
                self._forget()
                raise UdfError(answer.get("kind", "user"), answer.get("message", "the UDF could not be loaded"))
        return worker

    def release(self, worker: Worker) -> None:
        if not worker.alive:
            worker.kill()
            self._forget()
            return
        with self._cond:
            if self._closed:
                worker.kill()
                self._count -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def _forget(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify()

    def prewarm(self, count: int = 1) -> None:
        """Start up to ``count`` blank workers now (so the first UDF does not wait for one)."""
        for _ in range(count):
            with self._cond:
                if self._count >= self.limits.workers:
                    return
                self._count += 1
            try:
                worker = Worker(self.limits)
            except BaseException:
                self._forget()
                raise
            self.release(worker)

    def _start_spare(self) -> None:
        """Start a blank worker in the background, so the next new UDF does not wait a second for one."""
        with self._cond:
            if self._closed or any(w.key is None for w in self._idle) or self._count > self.limits.workers:
                return
            self._count += 1

        def start() -> None:
            try:
                worker = Worker(self.limits)
            except BaseException:  # noqa: BLE001 - a spare is an optimisation; the next request retries
                log.exception("could not start a spare UDF worker")
                self._forget()
                return
            self.release(worker)

        threading.Thread(target=start, name="udf-spare", daemon=True).start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()

    # -- the three requests ------------------------------------------------------------------------
    def _call(self, key: str, code: str, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()):
        worker = self._acquire(key, code)
        try:
            answer, out_fds = worker.request(message, fds)
        except UdfError:
            self._forget()
            raise
        except BaseException:
            worker.kill()
            self._forget()
            raise
        if answer.get("retire"):
            worker.kill()
            self._forget()
        else:
            self.release(worker)
        if not answer.get("ok"):
            close_fds(out_fds)
            kind = answer.get("kind", "internal")
            message_text = str(answer.get("message", ""))
            if kind == "memory":
                message_text = (f"{message_text}\nThe memory limit of a UDF is {self.limits.memory_bytes >> 20} MiB; "
                                "process less data per request or use less memory.")
            raise UdfError(kind, message_text)
        return answer, out_fds

    def load(self, key: str, code: str) -> None:
        """Make sure a worker has loaded ``code`` (its module-level errors surface here)."""
        worker = self._acquire(key, code)
        self.release(worker)

    def band_labels(self, key: str, code: str, dims: list[dict[str, Any]], context: Any) -> list[str] | None:
        answer, fds = self._call(key, code, {"op": "metadata", "dims": dims, "context": context})
        close_fds(fds)
        labels = answer.get("band_labels")
        if labels is not None and (not isinstance(labels, list) or not all(isinstance(b, str) for b in labels)):
            raise UdfError("user", "apply_metadata must give band labels as strings.")
        return labels

    def run(
        self, key: str, code: str, data: np.ndarray, dims: list[str], coords: dict[str, np.ndarray],
        context: Any, name: str | None = None,
    ) -> tuple[np.ndarray, list[str], dict[str, list[str]], str]:
        """Run the UDF on one block: ``(values, dims, labels per dim, printed output)``."""
        fd = array_to_memfd(data, "udf-block", seal=False)
        fds = [fd] if fd is not None else []
        message = {"op": "run", "shape": list(data.shape), "dtype": data.dtype.str, "dims": list(dims),
                   "coords": coords, "context": context, "name": name}
        try:
            answer, out_fds = self._call(key, code, message, fds)
        finally:
            close_fds(fds)
        try:
            shape = checked_shape(answer.get("shape"))
            dtype = checked_dtype(answer.get("dtype"))
            out_dims = answer.get("dims")
            if not isinstance(out_dims, list) or len(out_dims) != len(shape) or \
                    not all(isinstance(d, str) for d in out_dims):
                raise ProtocolError(f"invalid dimensions {out_dims!r}")
            if len(out_fds) > 1:
                raise ProtocolError("too many descriptors")
            values = array_from_memfd(out_fds[0] if out_fds else None, shape, dtype, require_seals=True)
            out_fds = []
        except ProtocolError as exc:
            close_fds(out_fds)
            raise UdfError("internal", f"The UDF worker sent an invalid result: {exc}") from None
        labels = answer.get("labels") if isinstance(answer.get("labels"), dict) else {}
        output = answer.get("output") if isinstance(answer.get("output"), str) else ""
        return values, out_dims, labels, output


_default_pool: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The pool of this process (a forked child gets its own)."""
    global _default_pool
    with _default_lock:
        if _default_pool is None or _default_pool.pid != os.getpid():
            _default_pool = WorkerPool()
            atexit.register(_default_pool.close)  # stop the workers and remove their folders
        return _default_pool
