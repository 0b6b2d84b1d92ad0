"""Run the real server as a subprocess on a free port: for tests, conformance runs and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(settings_env: Mapping[str, str], log_path: Path, timeout: float = 120) -> Iterator[str]:
    """Start ``terracube serve`` with ``TERRACUBE_*`` variables; yields its root URL, stops it after."""
    port = int(settings_env.get("TERRACUBE_PORT") or free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERRACUBE_")}
    env.update(settings_env)
    env.update(TERRACUBE_HOST="127.0.0.1", TERRACUBE_PORT=str(port))
    root = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(root, process, log_path, timeout)
        yield root
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(root: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(f"{root}/.well-known/openeo", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server did not come up in {timeout} s:\n{log_path.read_text()[-4000:]}")
