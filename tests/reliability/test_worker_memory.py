"""The pieces of the worker memory ceiling (backend/worker_memory.py), without a server."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from backend import worker_memory
from backend.settings import SettingsError
from tests.conftest import REPO


def test_resident_memory_is_read_from_the_process():
    import psutil

    assert abs(worker_memory.rss_bytes() - psutil.Process().memory_info().rss) < 64 * 2**20


def test_a_ceiling_below_a_fresh_worker_is_refused_with_the_variable_named():
    current_mb = worker_memory.rss_bytes() // 2**20
    with pytest.raises(SettingsError, match="TERRACUBE_WORKER_MAX_MB"):
        worker_memory.check_ceiling(int(current_mb))
    worker_memory.check_ceiling(int(current_mb) + worker_memory.STARTUP_HEADROOM_MB + 64)


def test_the_watchdog_reports_the_first_sample_past_the_ceiling():
    seen: list[tuple[int, int, int]] = []
    done = threading.Event()

    def exceeded(pid: int, rss: int, limit: int) -> None:
        seen.append((pid, rss, limit))
        done.set()

    thread = worker_memory.start_watchdog(1, interval=0.01, on_exceed=exceeded)  # 1 MB: already past
    assert done.wait(5)
    thread.join(5)
    assert not thread.is_alive() and len(seen) == 1
    assert seen[0][2] == 2**20 and seen[0][1] > seen[0][2]


def test_the_data_backstop_only_ever_lowers_the_soft_limit():
    code = (
        "import resource\n"
        "from backend import worker_memory as w\n"
        "w.set_data_backstop(1000)\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_DATA)\n"
        "assert soft == w.data_limit_bytes(1000), soft\n"
        "w.set_data_backstop(100000)\n"
        "assert resource.getrlimit(resource.RLIMIT_DATA) == (soft, hard)\n"
        "try:\n"
        "    bytearray(2 * w.data_limit_bytes(1000))\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"


def test_a_recycled_worker_does_not_use_gunicorns_halting_exit_codes():
    from gunicorn.arbiter import Arbiter

    assert worker_memory.EXIT_CODE not in (Arbiter.WORKER_BOOT_ERROR, Arbiter.APP_LOAD_ERROR, 0)
