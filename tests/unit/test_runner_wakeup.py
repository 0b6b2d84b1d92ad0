"""Waking the job runner: a datagram on its socket ends its wait at once; stale sockets go away."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

from backend.jobs.wakeup import SUFFIX, Wakeup, runners_dir, wake_runners


def test_a_datagram_wakes_the_runners_wait(tmp_path):
    wakeup = Wakeup(tmp_path)
    try:
        assert wakeup.path.exists() and wakeup.path.parent == runners_dir(tmp_path)
        assert wakeup.wait(0.0) is False  # nothing sent: the timeout ends the wait
        woken = threading.Event()

        def waiter() -> None:
            if wakeup.wait(60.0):
                woken.set()

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        assert wake_runners(tmp_path) == 1
        thread.join(60.0)
        assert woken.is_set()
        # several wake-ups while busy: one wait takes them all, the next one times out
        for _ in range(5):
            wake_runners(tmp_path)
        assert wakeup.wait(0.0) is True
        assert wakeup.wait(0.0) is False
    finally:
        wakeup.close()
    assert not wakeup.path.exists()


def test_a_readable_descriptor_ends_the_wait_too(tmp_path):
    wakeup = Wakeup(tmp_path)
    read, write = os.pipe()
    try:
        os.write(write, b"ready\n")
        assert wakeup.wait(60.0, [read]) is False  # returned for the pipe, not for a datagram
        assert os.read(read, 16) == b"ready\n"
    finally:
        os.close(read)
        os.close(write)
        wakeup.close()


def test_waking_never_fails_and_sockets_of_dead_runners_are_removed(tmp_path):
    assert wake_runners(tmp_path) == 0  # no runners directory at all
    directory = runners_dir(tmp_path)
    directory.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    stale = directory / f"{socket.gethostname()}-{int(dead.stdout)}{SUFFIX}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as orphan:
        orphan.bind(str(stale))  # bound, then closed: nobody listens any more
    (directory / f"other-host-1{SUFFIX}").touch()  # not a socket, of another host: left alone
    assert wake_runners(tmp_path) == 0
    assert not stale.exists()
    assert (directory / f"other-host-1{SUFFIX}").exists()
    live = Wakeup(tmp_path)
    try:
        assert wake_runners(tmp_path) == 1
        assert live.wait(10.0)
    finally:
        live.close()


def test_a_stopping_runner_wakes_itself(tmp_path):
    wakeup = Wakeup(tmp_path)
    try:
        timer = threading.Timer(0.05, wakeup.wake)
        timer.start()
        assert wakeup.wait(60.0)
    finally:
        wakeup.close()
