"""A throwaway PostgreSQL server for the tests that need a real one (Debian's package, installed by .ci/run).

Runs from a fresh cluster folder on a free port, as the ``postgres`` user when the tests run as root;
skips the test with the reason where PostgreSQL is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from backend.devserver import free_port

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


@contextmanager
def throwaway_postgres() -> Iterator[tuple[int, Callable[[], None]]]:
    """Yields the server's port and a function that stops it at once (it is stopped and removed after)."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("needs a PostgreSQL server installation (Debian package postgresql; .ci/run installs it)")
    # not under pytest's tmp folders: the postgres user must be able to reach it
    folder = Path(tempfile.mkdtemp(prefix="terracube-pg-"))
    data, sockets = folder / "data", folder / "sock"
    sockets.mkdir()
    run_as = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "start",
                    "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)

    try:
        yield port, stop
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)
