"""The retention sweep: expired results and jobs go, fresh and running ones stay, and the runner runs it."""

from __future__ import annotations

import datetime as dt
import os
import time

import pytest
import sqlalchemy as sa

from backend.jobs.folder import JobFolder
from backend.jobs.retention import sweep
from backend.jobs.store import JobStore, jobs_table, make_engine, utcnow
from backend.settings import Settings

PROCESS = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, demo=False, result_retention_days=90, job_retention_days=365)


@pytest.fixture
def store(settings) -> JobStore:
    return JobStore(make_engine(settings.job_store_url))


def finished_job(store: JobStore, settings: Settings, days_ago: float, status: str = "finished") -> str:
    """A job that ended ``days_ago`` days ago, with a result file in its folder."""
    job = store.create("alice", PROCESS)
    ended = utcnow() - dt.timedelta(days=days_ago)
    with store.engine.begin() as conn:
        conn.execute(jobs_table.update().where(jobs_table.c.id == job.id).values(
            status=status, finished=ended if status != "running" else None, updated=ended))
    store.log(job.id, "info", "Job finished.")
    results = JobFolder.of(settings, job.id).results
    results.mkdir(parents=True)
    (results / "result.tif").write_bytes(b"x" * 100)
    return job.id


def test_results_past_their_retention_are_removed_and_the_job_says_so(store, settings):
    old = finished_job(store, settings, days_ago=91)
    swept = sweep(settings, store)
    assert swept.results == [old]
    assert not JobFolder.of(settings, old).root.exists()
    job = store.get("alice", old)
    assert job.status == "finished" and job.results_removed is not None
    assert store.logs(old)  # the job's metadata and logs stay


def test_fresh_results_and_running_jobs_are_kept(store, settings):
    fresh = finished_job(store, settings, days_ago=89)
    running = finished_job(store, settings, days_ago=400, status="running")
    swept = sweep(settings, store)
    assert swept.results == [] and swept.jobs == []
    for job_id in (fresh, running):
        assert (JobFolder.of(settings, job_id).results / "result.tif").exists()
        assert store.get("alice", job_id).results_removed is None


def test_jobs_past_their_retention_are_removed_with_logs_and_folder(store, settings):
    old = finished_job(store, settings, days_ago=366)
    kept = finished_job(store, settings, days_ago=200, status="error")
    swept = sweep(settings, store)
    assert swept.jobs == [old]
    assert [job.id for job in store.list("alice")] == [kept]
    assert store.logs(old) == []
    assert not JobFolder.of(settings, old).root.exists()
    assert swept.results == [kept]  # past the result retention, within the job retention


def test_a_job_started_again_gets_its_results_back(store, settings):
    old = finished_job(store, settings, days_ago=91)
    sweep(settings, store)
    assert store.queue("alice", old).results_removed is None


def test_zero_days_keeps_everything(store, tmp_path):
    settings = Settings(data_dir=tmp_path, demo=False, result_retention_days=0, job_retention_days=0)
    old = finished_job(store, settings, days_ago=4000)
    swept = sweep(settings, store)
    assert swept.results == [] and swept.jobs == []
    assert (JobFolder.of(settings, old).results / "result.tif").exists()


def test_folders_of_no_job_are_removed_once_a_day_old(store, settings):
    stale, recent = settings.jobs_dir / "j-gone", settings.jobs_dir / "j-just-made"
    for folder in (stale, recent):
        (folder / "results").mkdir(parents=True)
    day_ago = time.time() - 2 * 86400
    os.utime(stale, (day_ago, day_ago))
    swept = sweep(settings, store)
    assert swept.orphans == ["j-gone"]
    assert not stale.exists() and recent.exists()


def test_the_runner_sweeps_and_reports_its_heartbeat(store, settings, caplog):
    from backend.jobs.beacon import RunnerBeacons
    from backend.jobs.runner import JobRunner

    old = finished_job(store, settings, days_ago=91)
    runner = JobRunner(settings, store)
    runner.use_standby = False
    with caplog.at_level("INFO", logger="backend.jobs.retention"):
        runner.tick()
    assert store.get("alice", old).results_removed is not None
    assert any("removed the results of 1 job" in record.getMessage() and old in record.getMessage()
               for record in caplog.records)
    assert RunnerBeacons(store.engine).state(dt.timedelta(seconds=60)).alive == 1
    runner.shutdown()
    assert RunnerBeacons(store.engine).state(dt.timedelta(seconds=60)).alive == 0


def test_an_older_store_gets_the_results_removed_column(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE jobs (id VARCHAR(64) PRIMARY KEY, user_id VARCHAR(255) NOT NULL, "
                             "title TEXT, description TEXT, process TEXT NOT NULL, plan VARCHAR(255), budget FLOAT, "
                             "log_level VARCHAR(16) NOT NULL, status VARCHAR(16) NOT NULL, progress FLOAT, "
                             "error TEXT, attempts INTEGER NOT NULL, created DATETIME NOT NULL, "
                             "updated DATETIME NOT NULL, queued DATETIME, started DATETIME, finished DATETIME, "
                             "heartbeat DATETIME, runner VARCHAR(255), pid INTEGER)"))
    store = JobStore(engine)
    assert store.create("alice", PROCESS).results_removed is None
