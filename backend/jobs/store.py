"""The job store: batch jobs and their logs in SQL (SQLAlchemy Core), the source of truth.

SQLite in the data dir by default (WAL mode, so the API workers and the job runner can share it),
PostgreSQL by URL. Every query that reads or changes a job names its owner, so one user can never
see or touch another's job: a job of someone else is "not found", exactly like a missing one.

Status transitions follow the openEO API: ``created → queued → running → finished | error |
canceled``; a finished, failed or canceled job can be queued again. A job counts as alive while its
process refreshes ``heartbeat``; :meth:`JobStore.recover` re-queues (or fails) jobs whose run died, and
:meth:`JobStore.requeue` is how a run that lost its compute infrastructure gives its job back.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from processes.core.errors import BadRequest, ConcurrentJobLimit, JobLocked, JobNotFound, PropertyNotEditable

STATUSES = ("created", "queued", "running", "canceled", "finished", "error")
ACTIVE = ("queued", "running")
MAX_ATTEMPTS = 3
LOG_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}

metadata = sa.MetaData()
jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False, index=True),
    sa.Column("title", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("process", sa.Text, nullable=False),  # JSON
    sa.Column("parameters", sa.Text),  # JSON: the processing parameters the job was created with
    sa.Column("plan", sa.String(255)),
    sa.Column("budget", sa.Float),
    sa.Column("log_level", sa.String(16), nullable=False, default="info"),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("progress", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.Column("queued", sa.DateTime),
    sa.Column("started", sa.DateTime),
    sa.Column("finished", sa.DateTime),
    sa.Column("heartbeat", sa.DateTime),
    sa.Column("runner", sa.String(255)),  # the current attempt: "<runner host:pid>#<token>"
    sa.Column("pid", sa.Integer),  # the current attempt's job process, on its runner's host
    sa.Column("usage", sa.Text),  # JSON: what the finished run used (openEO's usage object)
    sa.Column("results_removed", sa.DateTime),  # when the retention sweep removed the results (backend/jobs/retention.py)
)
logs_table = sa.Table(
    "job_logs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(64), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("code", sa.String(255)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.Text),  # JSON
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class JobRecord:
    id: str
    user_id: str
    title: str | None
    description: str | None
    process: dict[str, Any]
    parameters: dict[str, Any]
    """The processing parameters given when the job was created (or changed)."""
    plan: str | None
    budget: float | None
    log_level: str
    status: str
    progress: float | None
    error: str | None
    attempts: int
    created: dt.datetime
    updated: dt.datetime
    queued: dt.datetime | None
    started: dt.datetime | None
    finished: dt.datetime | None
    usage: dict[str, Any] | None = None
    """What the run that finished used: ``{"cpu": {"value", "unit"}, "duration": …}`` (openEO's form)."""
    results_removed: dt.datetime | None = None
    """When the results were removed because they were older than the retention period."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> JobRecord:
        # Any keys: SQLAlchemy's RowMapping is keyed by column names or Column objects (and a
        # Mapping's key type is invariant), while we only ever look names up.
        values = {name: row[name] for name in cls.__dataclass_fields__
                  if name not in ("process", "parameters", "usage")}
        usage = json.loads(row["usage"]) if row.get("usage") else None
        return cls(process=json.loads(row["process"]), parameters=json.loads(row["parameters"] or "{}"),
                   usage=usage, **values)


@dataclass(frozen=True)
class LogEntry:
    id: str
    time: dt.datetime
    level: str
    code: str | None
    message: str
    data: Any


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a store was created (``create_all`` makes missing tables, not columns)."""
    present = {column["name"] for column in sa.inspect(engine).get_columns(jobs_table.name)}
    with engine.begin() as conn:
        for column in jobs_table.columns:
            if column.name not in present and column.nullable:
                conn.execute(sa.text(f"ALTER TABLE {jobs_table.name} ADD COLUMN {column.name} "
                                     f"{column.type.compile(engine.dialect)}"))


def read_logs(engine: Engine, table: sa.Table, owner: sa.Column, owner_id: str, offset: str | None,
              level: str, limit: int | None, what: str) -> list[LogEntry]:
    """Log entries of one job or service (``owner`` = ``owner_id``) at or above ``level``, after the
    entry ``offset``, oldest first; an ``offset`` that is no entry id is a ``BadRequest``."""
    if level not in LOG_LEVELS:
        raise BadRequest(f"level '{level}' is not a log level; use one of {', '.join(LOG_LEVELS)} (the minimum "
                         "severity of the entries to list).")
    minimum = LOG_LEVELS[level]
    levels = [name for name, rank in LOG_LEVELS.items() if rank >= minimum]
    query = sa.select(table).where(owner == owner_id, table.c.level.in_(levels))
    if offset:
        try:
            query = query.where(table.c.seq > int(offset))
        except ValueError:
            raise BadRequest(f"offset '{offset}' is not a log entry id of this {what}.") from None
    query = query.order_by(table.c.seq)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [
            LogEntry(str(r["seq"]), r["time"], r["level"], r["code"], r["message"],
                     json.loads(r["data"]) if r["data"] else None)
            for r in conn.execute(query).mappings()
        ]


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)
        _add_missing_columns(engine)

    # --- users' operations --------------------------------------------------------------------
    def create(self, user_id: str, process: Mapping[str, Any], *, title: str | None = None,
               description: str | None = None, plan: str | None = None, budget: float | None = None,
               log_level: str = "info", parameters: Mapping[str, Any] | None = None) -> JobRecord:
        now = utcnow()
        job_id = "j-" + uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(jobs_table.insert().values(
                id=job_id, user_id=user_id, title=title, description=description, process=json.dumps(process),
                parameters=json.dumps(dict(parameters or {})),
                plan=plan, budget=budget, log_level=log_level, status="created", progress=None, attempts=0,
                created=now, updated=now,
            ))
        return self.get(user_id, job_id)

    def get(self, user_id: str, job_id: str) -> JobRecord:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.user_id == user_id)
            ).mappings().first()
        if row is None:
            raise JobNotFound(f"The batch job '{job_id}' does not exist.")
        return JobRecord.from_row(row)

    def record(self, job_id: str) -> JobRecord:
        """A job by id regardless of its owner (for the runner, never for API views)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).mappings().first()
        if row is None:
            raise JobNotFound(f"The batch job '{job_id}' does not exist.")
        return JobRecord.from_row(row)

    def list(self, user_id: str, limit: int | None = None) -> list[JobRecord]:
        query = sa.select(jobs_table).where(jobs_table.c.user_id == user_id).order_by(jobs_table.c.created.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [JobRecord.from_row(row) for row in conn.execute(query).mappings()]

    def update(self, user_id: str, job_id: str, changes: Mapping[str, Any]) -> JobRecord:
        editable = {"title", "description", "process", "plan", "budget", "log_level", "parameters"}
        bad = set(changes) - editable
        if bad:
            raise PropertyNotEditable(f"The job properties {sorted(bad)} are read-only; editable: {sorted(editable)}.")
        values = {k: (json.dumps(v) if k in ("process", "parameters") else v) for k, v in changes.items()}
        with self.engine.begin() as conn:
            job = self._locked(conn, user_id, job_id)
            if job["status"] in ACTIVE:
                raise JobLocked(f"Batch job '{job_id}' is {job['status']}: cancel it before changing it.")
            conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(**values, updated=utcnow()))
        return self.get(user_id, job_id)

    def delete(self, user_id: str, job_id: str) -> None:
        with self.engine.begin() as conn:
            self._locked(conn, user_id, job_id)
            conn.execute(logs_table.delete().where(logs_table.c.job_id == job_id))
            conn.execute(jobs_table.delete().where(jobs_table.c.id == job_id))

    def queue(self, user_id: str, job_id: str, max_active: int | None = None) -> JobRecord:
        """Start the job: queue it unless it is queued or running already. With ``max_active``, a user
        who has that many jobs queued or running already gets ``ConcurrentJobLimit`` instead."""
        now = utcnow()
        with self.engine.begin() as conn:
            job = self._locked(conn, user_id, job_id)
            if job["status"] not in ACTIVE:
                if max_active is not None:
                    active = conn.execute(sa.select(sa.func.count()).where(
                        jobs_table.c.user_id == user_id, jobs_table.c.status.in_(ACTIVE))).scalar() or 0
                    if active >= max_active:
                        raise ConcurrentJobLimit(
                            f"Job was not started: you have {active} batch job(s) queued or running, the most "
                            f"your account may have at once ({max_active}). Start it again when one has finished, "
                            "or cancel one first (DELETE /jobs/{job_id}/results; job.stop() in the Python client)."
                        )
                conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(
                    status="queued", progress=0.0, error=None, queued=now, started=None, finished=None,
                    updated=now, attempts=0, heartbeat=None, runner=None, pid=None, results_removed=None,
                ))
        self.log(job_id, "info", "Job queued.")
        return self.get(user_id, job_id)

    def cancel(self, user_id: str, job_id: str) -> JobRecord:
        now = utcnow()
        with self.engine.begin() as conn:
            job = self._locked(conn, user_id, job_id)
            if job["status"] in ACTIVE:
                conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(
                    status="canceled", updated=now, finished=now,
                ))
        if job["status"] in ACTIVE:
            self.log(job_id, "warning", "Job canceled by the user.")
        return self.get(user_id, job_id)

    # ``builtins.list`` in the annotations below: inside this class body ``list`` is the method above.
    def usage_rows(self, user_id: str | None = None) -> builtins.list[tuple[str, str, str, dict[str, Any] | None]]:
        """``(job id, user id, status, usage)`` of every job (of one user, if given): what accounting sums."""
        query = sa.select(jobs_table.c.id, jobs_table.c.user_id, jobs_table.c.status, jobs_table.c.usage)
        if user_id is not None:
            query = query.where(jobs_table.c.user_id == user_id)
        with self.engine.connect() as conn:
            return [(job_id, owner, status, json.loads(usage) if usage else None)
                    for job_id, owner, status, usage in conn.execute(query).all()]

    def logs(self, job_id: str, offset: str | None = None, level: str = "debug", limit: int | None = None
             ) -> builtins.list[LogEntry]:
        return read_logs(self.engine, logs_table, logs_table.c.job_id, job_id, offset, level, limit, "job")

    # --- the runner's operations ----------------------------------------------------------------
    def log(self, job_id: str, level: str, message: str, data: Any = None, code: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(logs_table.insert().values(
                job_id=job_id, time=utcnow(), level=level, code=code, message=message,
                data=json.dumps(data, default=str) if data is not None else None,
            ))

    def claim_next(self, runner: str) -> JobRecord | None:
        """Atomically take the next queued job: the user with the fewest running jobs goes first."""
        with self.engine.begin() as conn:
            running: dict[str, int] = dict(conn.execute(
                sa.select(jobs_table.c.user_id, sa.func.count()).where(jobs_table.c.status == "running")
                .group_by(jobs_table.c.user_id)
            ).all())
            queued = conn.execute(
                sa.select(jobs_table.c.id, jobs_table.c.user_id).where(jobs_table.c.status == "queued")
                .order_by(jobs_table.c.queued, jobs_table.c.created)
            ).all()
            for job_id, _owner in sorted(queued, key=lambda row: running.get(row[1], 0)):
                now = utcnow()
                claimed = conn.execute(
                    jobs_table.update()
                    .where(jobs_table.c.id == job_id, jobs_table.c.status == "queued")
                    .values(status="running", started=now, updated=now, heartbeat=now, pid=None,
                            runner=f"{runner}#{uuid.uuid4().hex[:12]}", attempts=jobs_table.c.attempts + 1)
                ).rowcount
                if claimed:
                    row = conn.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).mappings().first()
                    # Just updated in this same transaction, so the row is there.
                    assert row is not None
                    return JobRecord.from_row(row)
        return None

    def status(self, job_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(jobs_table.c.status).where(jobs_table.c.id == job_id)).scalar()

    def attempt(self, job_id: str) -> str | None:
        """The token of the job's current run (set when a runner claims it)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(jobs_table.c.runner).where(jobs_table.c.id == job_id)).scalar()

    def heartbeat(self, job_id: str, attempt: str, progress: float | None = None) -> bool:
        """Refresh the heartbeat of this run of the job; False if the run is over (canceled, re-queued)."""
        values: dict[str, Any] = {"heartbeat": utcnow()}
        if progress is not None:
            values["progress"] = round(float(progress), 1)
        with self.engine.begin() as conn:
            return bool(conn.execute(jobs_table.update().where(
                jobs_table.c.id == job_id, jobs_table.c.status == "running", jobs_table.c.runner == attempt,
            ).values(**values)).rowcount)

    def finish(self, job_id: str, status: str, error: str | None = None, attempt: str | None = None) -> bool:
        """Record the end of a running job (of this run, if given); False if it was canceled meanwhile."""
        assert status in ("finished", "error")
        now = utcnow()
        values: dict[str, Any] = {"status": status, "error": error, "finished": now, "updated": now}
        if status == "finished":
            values["progress"] = 100.0
        condition = [jobs_table.c.id == job_id, jobs_table.c.status == "running"]
        if attempt is not None:
            condition.append(jobs_table.c.runner == attempt)
        with self.engine.begin() as conn:
            return bool(conn.execute(jobs_table.update().where(*condition).values(**values)).rowcount)

    def set_usage(self, job_id: str, attempt: str | None, usage: Mapping[str, Any]) -> bool:
        """Record what a run used, while it is still the job's current run."""
        with self.engine.begin() as conn:
            return bool(conn.execute(jobs_table.update().where(
                jobs_table.c.id == job_id, jobs_table.c.runner == attempt,
            ).values(usage=json.dumps(dict(usage)))).rowcount)

    def set_pid(self, job_id: str, attempt: str, pid: int) -> bool:
        """Record the process that runs this attempt of the job (so that :meth:`recover` can tell
        when it is gone); False if the attempt is no longer the job's current run."""
        with self.engine.begin() as conn:
            return bool(conn.execute(jobs_table.update().where(
                jobs_table.c.id == job_id, jobs_table.c.status == "running", jobs_table.c.runner == attempt,
            ).values(pid=pid)).rowcount)

    def requeue(self, job_id: str, attempt: str, reason: str) -> str | None:
        """Give a running job back to the queue because this attempt was interrupted (its Dask
        cluster or its runner went away), not because the job failed.

        Only while ``attempt`` is still the job's current run: returns the job's new status —
        ``queued``, or ``error`` once it was interrupted :data:`MAX_ATTEMPTS` times, exactly as
        :meth:`recover` counts — or None when the attempt lost the job already (canceled, finished,
        re-queued, taken over by another run). ``reason`` goes into the job's log."""
        with self.engine.begin() as conn:
            attempts = conn.execute(sa.select(jobs_table.c.attempts).where(
                jobs_table.c.id == job_id, jobs_table.c.status == "running", jobs_table.c.runner == attempt,
            )).scalar()
            if attempts is None:
                return None
            values = self._interrupted(attempts, reason)
            changed = conn.execute(jobs_table.update().where(
                jobs_table.c.id == job_id, jobs_table.c.status == "running", jobs_table.c.runner == attempt,
            ).values(**values)).rowcount
        if not changed:
            return None
        self._log_interruption(job_id, values["status"], reason)
        return values["status"]

    def recover(self, stale_after: dt.timedelta, gone: Callable[[str, int | None], bool] | None = None
                ) -> builtins.list[tuple[str, str]]:
        """Running jobs whose run ended without a word: re-queue them, or fail them after
        :data:`MAX_ATTEMPTS` interrupted attempts.

        A run has ended when its heartbeat is older than ``stale_after`` — or at once when
        ``gone(attempt, pid)`` proves that both its runner and its job process no longer exist (the
        runner passes a check of process ids on its own host; see ``backend.jobs.runner``). A run
        whose heartbeat is fresh is never touched unless ``gone`` proves it dead."""
        limit = utcnow() - stale_after
        stale = sa.or_(jobs_table.c.heartbeat.is_(None), jobs_table.c.heartbeat < limit)
        recovered = []
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(
                jobs_table.c.id, jobs_table.c.attempts, jobs_table.c.runner, jobs_table.c.pid,
                jobs_table.c.heartbeat,
            ).where(jobs_table.c.status == "running")).all()
            for job_id, attempts, attempt, pid, heartbeat in rows:
                condition = [jobs_table.c.id == job_id, jobs_table.c.status == "running",
                             jobs_table.c.runner.is_(None) if attempt is None else jobs_table.c.runner == attempt]
                if attempt is not None and gone is not None and gone(attempt, pid):
                    reason = f"its runner ({attempt.rsplit('#', 1)[0]}) and its process ({pid}) are gone"
                elif heartbeat is None or heartbeat < limit:
                    reason = "its runner stopped (server restart?)"
                    condition.append(stale)  # unless a heartbeat came in meanwhile
                else:
                    continue
                values = self._interrupted(attempts, reason)
                if conn.execute(jobs_table.update().where(*condition).values(**values)).rowcount:
                    recovered.append((job_id, values["status"], reason))
        for job_id, status, reason in recovered:
            self._log_interruption(job_id, status, reason)
        return [(job_id, status) for job_id, status, _ in recovered]

    @staticmethod
    def _interrupted(attempts: int, reason: str) -> dict[str, Any]:
        """The changes that end an interrupted attempt: queued again, or failed after MAX_ATTEMPTS."""
        now = utcnow()
        if attempts >= MAX_ATTEMPTS:
            return {"status": "error", "finished": now, "updated": now, "heartbeat": None, "pid": None,
                    "error": f"The job was interrupted {attempts} times (last: {reason}); giving up."}
        return {"status": "queued", "queued": now, "updated": now, "progress": 0.0, "runner": None, "heartbeat": None,
                "pid": None}

    def _log_interruption(self, job_id: str, status: str, reason: str) -> None:
        self.log(job_id, "warning", f"The job's run was interrupted: {reason}; "
                 + ("the job was queued again." if status == "queued" else "the job failed."), {"reason": reason})

    def ids_with_status(self, statuses: Iterable[str]) -> builtins.list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(jobs_table.c.id).where(jobs_table.c.status.in_(list(statuses)))).scalars())

    @staticmethod
    def _locked(conn, user_id: str, job_id: str) -> Mapping[str, Any]:
        row = conn.execute(
            sa.select(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.user_id == user_id)
        ).mappings().first()
        if row is None:
            raise JobNotFound(f"The batch job '{job_id}' does not exist.")
        return row
