"""The job store on SQLite and on a real PostgreSQL server (started by the test where installed)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from backend.jobs.runner import proven_gone
from backend.jobs.store import MAX_ATTEMPTS, JobStore, make_engine
from processes.core.errors import BadRequest, JobLocked, JobNotFound, PropertyNotEditable
from tests.postgres_server import throwaway_postgres

PROCESS = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


@pytest.fixture(scope="module")
def postgres_url():
    with throwaway_postgres() as (port, _):
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


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


def running_job(store, runner: str = "r") -> tuple[str, str]:
    job = store.create("alice", PROCESS)
    store.queue("alice", job.id)
    assert store.claim_next(runner).id == job.id
    return job.id, store.attempt(job.id)


def test_a_run_that_lost_its_cluster_gives_its_job_back(store):
    job_id, attempt = running_job(store)
    assert store.requeue(job_id, "r#someone-else", "no") is None
    assert store.status(job_id) == "running"

    assert store.requeue(job_id, attempt, "the Dask scheduler tcp://x:8786 does not answer") == "queued"
    assert (store.status(job_id), store.attempt(job_id)) == ("queued", None)
    [entry] = [e for e in store.logs(job_id) if e.level == "warning"]
    assert "the Dask scheduler tcp://x:8786 does not answer" in entry.message and "queued again" in entry.message
    assert entry.data == {"reason": "the Dask scheduler tcp://x:8786 does not answer"}
    # only once, and the old run can no longer report
    assert store.requeue(job_id, attempt, "again") is None
    assert len(store.logs(job_id, level="warning")) == 1
    assert not store.heartbeat(job_id, attempt)
    assert not store.finish(job_id, "error", "old run", attempt=attempt)
    # the next run takes it, as any queued job
    assert store.claim_next("r2").id == job_id
    assert store.finish(job_id, "finished", attempt=store.attempt(job_id))
    assert store.record(job_id).attempts == 2


def test_interrupted_attempts_count_like_recovered_ones(store):
    job_id, attempt = running_job(store)
    for n in range(1, MAX_ATTEMPTS):
        assert store.requeue(job_id, attempt, f"lost {n}") == "queued"
        assert store.claim_next("r").id == job_id
        attempt = store.attempt(job_id)
    assert store.requeue(job_id, attempt, "lost again") == "error"
    failed = store.record(job_id)
    assert (failed.status, failed.attempts) == ("error", MAX_ATTEMPTS)
    assert "interrupted 3 times" in failed.error and "lost again" in failed.error
    assert store.logs(job_id)[-1].message.endswith("the job failed.")


def test_requeue_leaves_a_canceled_or_finished_job_alone(store):
    canceled, attempt = running_job(store)
    store.cancel("alice", canceled)
    assert store.requeue(canceled, attempt, "lost") is None
    assert store.status(canceled) == "canceled"
    finished, attempt = running_job(store)
    assert store.finish(finished, "finished", attempt=attempt)
    assert store.requeue(finished, attempt, "lost") is None
    assert store.status(finished) == "finished"


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_recover_requeues_at_once_a_run_whose_runner_and_process_are_gone(store):
    here = socket.gethostname()
    # a runner of this host that died, and the job's process, a real one that still runs
    job_id, attempt = running_job(store, f"{here}:{dead_pid()}")
    job_process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert store.set_pid(job_id, attempt, job_process.pid)
        hour = dt.timedelta(hours=1)  # no heartbeat goes stale in this test
        assert store.recover(hour, proven_gone) == []  # its process is alive: never touched
        job_process.kill()
        job_process.wait()
        assert store.recover(hour, proven_gone) == [(job_id, "queued")]
        assert "are gone" in store.logs(job_id, level="warning")[-1].message
        store.cancel("alice", job_id)
    finally:
        job_process.kill()
        job_process.wait()

    # what cannot be proven waits for the heartbeat: a live runner (it reaps its own processes),
    # a runner of another host, a process that was never recorded
    alive_runner, attempt = running_job(store, f"{here}:{os.getpid()}")
    store.set_pid(alive_runner, attempt, dead_pid())
    elsewhere, attempt = running_job(store, f"another-{here}:{dead_pid()}")
    store.set_pid(elsewhere, attempt, dead_pid())
    unrecorded, _ = running_job(store, f"{here}:{dead_pid()}")
    assert store.recover(dt.timedelta(hours=1), proven_gone) == []
    assert {store.status(j) for j in (alive_runner, elsewhere, unrecorded)} == {"running"}


def test_the_pid_of_a_run_is_recorded_only_for_its_own_attempt(store):
    job_id, attempt = running_job(store)
    assert not store.set_pid(job_id, "r#not-this-one", 123)
    assert store.set_pid(job_id, attempt, 123)
    store.requeue(job_id, attempt, "lost")
    assert not store.set_pid(job_id, attempt, 456)


def test_logs_filter_by_level_and_offset(store):
    job = store.create("alice", PROCESS)
    store.log(job.id, "debug", "detail")
    store.log(job.id, "error", "boom", {"node_id": "n1"})
    entries = store.logs(job.id)
    assert [e.message for e in entries] == ["detail", "boom"]
    assert [e.message for e in store.logs(job.id, level="error")] == ["boom"]
    assert [e.message for e in store.logs(job.id, offset=entries[0].id)] == ["boom"]
    assert entries[1].data == {"node_id": "n1"}


@pytest.mark.parametrize("level", ["", "fatal", "ERROR "])
def test_a_level_that_is_no_log_level_is_a_bad_request(store, level):
    job = store.create("alice", PROCESS)
    with pytest.raises(BadRequest, match="is not a log level"):
        store.logs(job.id, level=level)
