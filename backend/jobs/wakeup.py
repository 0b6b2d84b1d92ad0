"""Waking the job runners when there is something to do, instead of waiting for their next poll.

Every runner binds a UNIX datagram socket ``<data dir>/runners/<host>-<pid>.sock``
(:class:`Wakeup`) and waits on it with its poll interval as the timeout. Whoever queued a job (an
API worker: :func:`wake_runners`) sends a one-byte datagram to every socket there: best effort and
non-blocking — a runner that is busy has a datagram waiting for its next wait; a socket whose
runner is gone refuses it (and is removed, if it belongs to a dead process of this host); a full
socket buffer drops it (its runner is going to look anyway). Runners on other hosts sharing a
PostgreSQL store have no socket here and still find jobs by polling.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".sock"


def runners_dir(data_dir: Path) -> Path:
    return data_dir.resolve() / "runners"


def _socket_name(host: str, pid: int) -> str:
    return f"{host}-{pid}{SUFFIX}"


class Wakeup:
    """The socket one runner waits on; ``close()`` removes it."""

    def __init__(self, data_dir: Path, host: str | None = None, pid: int | None = None):
        self.directory = runners_dir(data_dir)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = host or socket.gethostname()
        self.path = self.directory / _socket_name(self.host, pid or os.getpid())
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket of an earlier process with our pid
        self._socket.bind(str(self._bind_path()))
        self._remove_stale()

    def _bind_path(self) -> Path | str:
        # a UNIX socket path is at most 107 bytes: bind a long one through a relative path
        if len(str(self.path).encode()) < 100:
            return self.path
        return os.path.relpath(self.path)

    def fileno(self) -> int:
        return self._socket.fileno()

    def wait(self, timeout: float, also: Iterable[int] = ()) -> bool:
        """Wait until woken, something to read on one of the file descriptors ``also``, or
        ``timeout`` seconds passed; True when woken by a datagram (all of those waiting are read)."""
        try:
            ready, _, _ = select.select([self._socket.fileno(), *also], [], [], max(0.0, timeout))
        except (InterruptedError, ValueError, OSError):  # a closed descriptor among ``also``
            return False
        return self._socket.fileno() in ready and self.drain()

    def drain(self) -> bool:
        woken = False
        while True:
            try:
                self._socket.recv(64)
            except (BlockingIOError, InterruptedError):
                return woken
            except OSError:
                return woken
            woken = True

    def wake(self) -> None:
        """Wake this runner from within (its own loop, a signal handler)."""
        _send(self.path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _remove_stale(self) -> None:
        """Remove the sockets of runners of this host that no longer exist (killed with -9)."""
        for path in self.directory.glob(f"*{SUFFIX}"):
            host, _, pid = path.name[: -len(SUFFIX)].rpartition("-")
            if host == self.host and pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    path.unlink()


def wake_runners(data_dir: Path) -> int:
    """Send a wake-up to every runner socket under ``data_dir``; never raises, never blocks.
    Returns how many took it."""
    try:
        paths = list(runners_dir(data_dir).glob(f"*{SUFFIX}"))
    except OSError:
        return 0
    woken = 0
    for path in paths:
        try:
            woken += _send(path)
        except Exception:  # best effort: queueing a job never fails because of a wake-up
            log.debug("could not wake the runner at %s", path, exc_info=True)
    return woken


def _send(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        target = str(path) if len(str(path).encode()) < 100 else os.path.relpath(path)
        try:
            sender.sendto(b"!", target)
            return True
        except (BlockingIOError, InterruptedError):  # its buffer is full: it has wake-ups waiting
            return True
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:  # nobody bound to it: a runner that is gone
                _remove_if_dead(path)
            return False


def _remove_if_dead(path: Path) -> None:
    host, _, pid = path.name[: -len(SUFFIX)].rpartition("-")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
