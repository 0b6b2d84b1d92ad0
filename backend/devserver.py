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
        wait_until_answering(f"{root}/.well-known/openeo", process, log_path, "the server", timeout)
        yield root
    finally:
        stop(process, 20)


def wait_until_answering(url: str, process: subprocess.Popen, log_path: Path, what: str, timeout: float) -> None:
    """Wait until ``url`` answers 200; ``RuntimeError`` with the end of the log when ``process`` exits or
    ``timeout`` seconds pass first. For every server the tests and benchmarks start."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout} s:\n{log_path.read_text()[-4000:]}")


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate ``process``, killing it when it has not exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
