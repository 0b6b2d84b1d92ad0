"""Retention: the job runner removes results and jobs older than their retention period.

Never a request: a sweep walks the whole store, so it runs in the runner's loop every
``TERRACUBE_RETENTION_SWEEP_MINUTES`` (see ``backend.jobs.runner``). Ages count from a job's end
(``finished``, else its last change), so a job that is queued or running never expires:

- **results** (``TERRACUBE_RESULT_RETENTION_DAYS``, 90 by default): the job's folder goes, the job
  stays with ``results_removed`` set, so ``GET /jobs/{id}/results`` can say what happened;
- **jobs** (``TERRACUBE_JOB_RETENTION_DAYS``, 365 by default): the job's row, its logs and its folder;
- **orphan folders**: folders under ``<data dir>/jobs`` of no job (a deletion interrupted between the
  row and the folder), once they are a day old.

Several runners sharing a store may sweep at the same time: every step is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from backend.jobs.folder import JobFolder
from backend.jobs.store import ACTIVE, JobStore, jobs_table, logs_table, utcnow
from backend.settings import Settings

log = logging.getLogger(__name__)

ORPHAN_AFTER = dt.timedelta(days=1)
"""A folder of no job is removed once it is this old (a job's folder is made after its row)."""


@dataclass(frozen=True)
class Swept:
    """What one sweep removed."""

    results: list[str] = field(default_factory=list)
    """Jobs whose results were removed (the jobs stay)."""
    jobs: list[str] = field(default_factory=list)
    """Jobs removed with their logs and folders."""
    orphans: list[str] = field(default_factory=list)
    """Folders of no job that were removed."""


def sweep(settings: Settings, store: JobStore, now: dt.datetime | None = None) -> Swept:
    """Remove what is past its retention period; logs what it removed."""
    now = now or utcnow()
    ended = sa.func.coalesce(jobs_table.c.finished, jobs_table.c.updated)
    idle = jobs_table.c.status.not_in(ACTIVE)
    swept = Swept()
    if settings.job_retention_days > 0:
        cutoff = now - dt.timedelta(days=settings.job_retention_days)
        with store.engine.begin() as conn:
            expired = list(conn.execute(sa.select(jobs_table.c.id).where(idle, ended < cutoff)).scalars())
            if expired:
                conn.execute(logs_table.delete().where(logs_table.c.job_id.in_(expired)))
                conn.execute(jobs_table.delete().where(jobs_table.c.id.in_(expired), idle, ended < cutoff))
        for job_id in expired:
            JobFolder.of(settings, job_id).remove()
        swept.jobs.extend(expired)
    if settings.result_retention_days > 0:
        cutoff = now - dt.timedelta(days=settings.result_retention_days)
        with store.engine.connect() as conn:
            expired = list(conn.execute(sa.select(jobs_table.c.id).where(
                idle, ended < cutoff, jobs_table.c.results_removed.is_(None))).scalars())
        for job_id in expired:
            with store.engine.begin() as conn:  # only while it is still idle: a restart keeps its folder
                marked = conn.execute(jobs_table.update().where(
                    jobs_table.c.id == job_id, idle, ended < cutoff, jobs_table.c.results_removed.is_(None),
                ).values(results_removed=now)).rowcount
            if marked:
                JobFolder.of(settings, job_id).remove()
                swept.results.append(job_id)
    swept.orphans.extend(_remove_orphans(settings, store))
    if swept.jobs:
        log.info("retention: removed %d job(s) older than %d days: %s", len(swept.jobs),
                 settings.job_retention_days, ", ".join(swept.jobs))
    if swept.results:
        log.info("retention: removed the results of %d job(s) older than %d days: %s", len(swept.results),
                 settings.result_retention_days, ", ".join(swept.results))
    if swept.orphans:
        log.info("retention: removed %d folder(s) of no job: %s", len(swept.orphans), ", ".join(swept.orphans))
    return swept


def _remove_orphans(settings: Settings, store: JobStore) -> list[str]:
    root = settings.jobs_dir
    if not root.is_dir():
        return []
    with store.engine.connect() as conn:
        known = set(conn.execute(sa.select(jobs_table.c.id)).scalars())
    oldest = time.time() - ORPHAN_AFTER.total_seconds()
    removed = []
    for folder in root.iterdir():
        if folder.name in known or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            if folder.stat().st_mtime >= oldest:
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed
