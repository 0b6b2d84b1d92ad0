"""The memory ceiling of one API worker (``TERRACUBE_WORKER_MAX_MB``): a worker past it is recycled.

``terracube serve`` starts :func:`start_watchdog` in every gunicorn worker right after the fork. A
daemon thread reads the worker's resident memory (``/proc/self/statm``: one small read, no parsing
of ``smaps``) every :data:`INTERVAL_SECONDS`; when it passes the ceiling, the thread logs one line
naming the worker, its memory and the ceiling, and ends the process at once with ``os._exit``
(:data:`EXIT_CODE`). The requests in flight in that worker fail (their connections close); the
gunicorn master starts a fresh worker and the others keep answering. The machine never runs out of
memory because of one request: that is the guarantee, not a graceful answer to the request.

Resident memory is what the kernel counts against the machine. It includes the pages a worker still
shares with the master (the imported libraries): a fresh worker starts at about 170 MB on the demo
set-up, the master at about 290 MB. :func:`check_ceiling` refuses, at start-up, a ceiling less than
128 MB above the master's size, which a worker could pass before serving anything (and so be
recycled again and again).

Between two samples a request can still allocate quickly (numpy fills about 2–3 GB/s per thread),
and the watchdog needs the GIL, which C code such as ``json.loads`` of a large body holds throughout.
A backstop limit on the worker's data segment (``RLIMIT_DATA``: private writable memory, i.e. the heap
and anonymous mappings, not the libraries' code or reserved-but-unused address space) at
:func:`data_limit_bytes` makes such an allocation fail with ``MemoryError`` (the request fails, the
worker lives) instead of overshooting by gigabytes. Measured on the demo data: a worker's data
segment is its resident memory plus 150–300 MB, from a fresh worker (170 MB resident) to a year of
seven bands (1.4 GB). It is a soft limit (the hard limit is left as it was). Processes an API
worker starts (the UDF workers) inherit it, so keep it above ``TERRACUBE_UDF_MEMORY_MB``.

The address-space limit (``RLIMIT_AS``) is not used: the address space of a worker is 0.7–0.9 GB
above its resident memory on two cores already, and grows with the machine rather than with the
work (glibc reserves a 64 MB malloc arena per thread, Dask starts a thread per core, GDAL maps its
caches), so a limit tight enough to matter would fail normal requests on bigger machines.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

MIB = 1 << 20
INTERVAL_SECONDS = 0.25
"""How often the watchdog samples the worker's resident memory."""
EXIT_CODE = 75
"""Exit status of a recycled worker (gunicorn logs it; not 3 or 4, which would halt gunicorn's master)."""
DATA_LIMIT_FACTOR = 1.25
DATA_LIMIT_MARGIN_MB = 512
"""The backstop: ``RLIMIT_DATA`` = ceiling × factor + margin (see :func:`data_limit_bytes`)."""
STARTUP_HEADROOM_MB = 128
"""A ceiling must leave at least this much above the master's resident memory."""

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident memory of this process, in bytes (``/proc/self/statm``; psutil where there is no /proc)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def check_ceiling(limit_mb: int) -> None:
    """Refuse a ceiling that a freshly forked worker (at most this process's size) could already pass.

    Raises ``SettingsError`` naming ``TERRACUBE_WORKER_MAX_MB`` and the size measured.
    """
    from backend.settings import SettingsError

    current_mb = rss_bytes() / MIB
    if limit_mb < current_mb + STARTUP_HEADROOM_MB:
        raise SettingsError(
            f"TERRACUBE_WORKER_MAX_MB={limit_mb} is too low: the server holds {current_mb:.0f} MB before it "
            f"starts its workers, which begin at up to that size; give at least "
            f"{current_mb + STARTUP_HEADROOM_MB:.0f} MB."
        )


def data_limit_bytes(limit_mb: int) -> int:
    """The ``RLIMIT_DATA`` backstop for a ceiling of ``limit_mb``."""
    return int((limit_mb * DATA_LIMIT_FACTOR + DATA_LIMIT_MARGIN_MB) * MIB)


def set_data_backstop(limit_mb: int) -> None:
    """Lower this process's soft ``RLIMIT_DATA`` to the backstop (never raises it; hard limit untouched)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    wanted = data_limit_bytes(limit_mb)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(resource.RLIMIT_DATA, (wanted, hard))


def _recycle(pid: int, rss: int, limit: int) -> None:
    """Say why, then end the worker at once. The line is written straight to stderr, in the log's
    format, without the logging module's locks: a thread stuck holding one must not keep the worker alive."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f",{int(time.time() * 1000) % 1000:03d}"
    line = (f"{stamp} ERROR {__name__}: worker {pid} uses {rss / MIB:.0f} MB, past its ceiling of "
            f"{limit / MIB:.0f} MB (TERRACUBE_WORKER_MAX_MB): recycling it; the requests it was serving fail\n")
    try:
        os.write(2, line.encode())
    finally:
        os._exit(EXIT_CODE)


def start_watchdog(limit_mb: int, interval: float = INTERVAL_SECONDS,
                   on_exceed: Callable[[int, int, int], None] = _recycle) -> threading.Thread:
    """Watch this process's resident memory from a daemon thread; call ``on_exceed(pid, rss, limit)``
    (by default: log and end the process) the first time it passes ``limit_mb``."""
    limit = limit_mb * MIB
    pid = os.getpid()

    def watch() -> None:
        while True:
            rss = rss_bytes()
            if rss > limit:
                on_exceed(pid, rss, limit)
                return
            time.sleep(interval)

    thread = threading.Thread(target=watch, name="terracube-memory-ceiling", daemon=True)
    thread.start()
    return thread


def guard_worker(limit_mb: int) -> None:
    """What a gunicorn worker does right after the fork: the backstop limit, then the watchdog."""
    set_data_backstop(limit_mb)
    start_watchdog(limit_mb)
    log.info("worker %s: memory ceiling %d MB (TERRACUBE_WORKER_MAX_MB), data segment limit %d MB",
             os.getpid(), limit_mb, data_limit_bytes(limit_mb) // MIB)
