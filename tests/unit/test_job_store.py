"""The job store on SQLite and on a real PostgreSQL server (started by the test where installed)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from backend.devserver import free_port
from backend.jobs.store import JobStore, make_engine
from processes.core.errors import JobLocked, JobNotFound, PropertyNotEditable

PROCESS = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL cluster on a free port (as the postgres user when run as root)."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("needs a PostgreSQL server installation (Debian package postgresql)")
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
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> JobStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    store = JobStore(engine)
    yield store
    if request.param == "postgresql":
        from backend.jobs.store import metadata

        metadata.drop_all(engine)
    engine.dispose()


def test_a_job_belongs_to_its_user(store):
    job = store.create("alice", PROCESS, title="mine")
    assert store.get("alice", job.id).title == "mine"
    with pytest.raises(JobNotFound):
        store.get("bob", job.id)
    assert [j.id for j in store.list("bob")] == []


def test_status_transitions(store):
    job = store.create("alice", PROCESS)
    assert store.queue("alice", job.id).status == "queued"
    claimed = store.claim_next("runner-1")
    assert claimed.id == job.id and claimed.status == "running"
    attempt = store.attempt(job.id)
    assert store.heartbeat(job.id, attempt, progress=42.0)
    assert store.finish(job.id, "finished", attempt=attempt)
    done = store.get("alice", job.id)
    assert (done.status, done.progress) == ("finished", 100.0)
    assert done.queued and done.started and done.finished


def test_a_queued_job_cannot_be_edited_but_canceled(store):
    job = store.create("alice", PROCESS)
    store.queue("alice", job.id)
    with pytest.raises(JobLocked):
        store.update("alice", job.id, {"title": "new"})
    with pytest.raises(PropertyNotEditable):
        store.update("alice", job.id, {"status": "finished"})
    assert store.cancel("alice", job.id).status == "canceled"
    assert store.update("alice", job.id, {"title": "new"}).title == "new"


def test_concurrent_claims_never_take_a_job_twice(store):
    ids = set()
    for _ in range(12):
        job = store.create("alice", PROCESS)
        store.queue("alice", job.id)
        ids.add(job.id)
    claimed: list[str] = []
    lock = threading.Lock()

    def runner(name: str) -> None:
        while (job := store.claim_next(name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=runner, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(ids)


def test_the_user_with_fewer_running_jobs_goes_first(store):
    for _ in range(2):
        store.queue("alice", store.create("alice", PROCESS).id)
    store.claim_next("r")  # alice now runs one job
    bob = store.create("bob", PROCESS)
    store.queue("bob", bob.id)
    assert store.claim_next("r").user_id == "bob"


def test_a_run_that_lost_its_job_cannot_report(store):
    job = store.create("alice", PROCESS)
    store.queue("alice", job.id)
    store.claim_next("r")
    old_attempt = store.attempt(job.id)
    time.sleep(2.1)  # times are stored to the second
    assert store.recover(dt.timedelta(seconds=1)) == [(job.id, "queued")]
    store.claim_next("r")
    assert not store.heartbeat(job.id, old_attempt)
    assert not store.finish(job.id, "error", "old run", attempt=old_attempt)
    assert store.finish(job.id, "finished", attempt=store.attempt(job.id))


def test_logs_filter_by_level_and_offset(store):
    job = store.create("alice", PROCESS)
    store.log(job.id, "debug", "detail")
    store.log(job.id, "error", "boom", {"node_id": "n1"})
    entries = store.logs(job.id)
    assert [e.message for e in entries] == ["detail", "boom"]
    assert [e.message for e in store.logs(job.id, level="error")] == ["boom"]
    assert [e.message for e in store.logs(job.id, offset=entries[0].id)] == ["boom"]
    assert entries[1].data == {"node_id": "n1"}
