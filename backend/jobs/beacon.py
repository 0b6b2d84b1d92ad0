"""The job runners' heartbeats: each runner says it is alive in the job store, ``/health`` reads it.

Runners may live in the server (``TERRACUBE_EMBEDDED_RUNNER``) or run as their own processes on
other machines (``terracube worker``), so only the shared store can tell an API replica whether any
runner is taking jobs. Each runner keeps one row (``<host>:<pid>``) whose ``heartbeat`` it refreshes
from its loop and removes when it stops; rows of runners that died without a word are pruned after a
day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backend.jobs.store import utcnow

metadata = sa.MetaData()
runners_table = sa.Table(
    "job_runners",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),  # "<host>:<pid>", as in the jobs' "runner" column
    sa.Column("started", sa.DateTime, nullable=False),
    sa.Column("heartbeat", sa.DateTime, nullable=False),
)
FORGET_AFTER = dt.timedelta(days=1)
"""Rows of runners silent for this long are removed (a runner killed with SIGKILL leaves its row)."""


@dataclass(frozen=True)
class RunnerState:
    alive: int
    """Runners whose last heartbeat is within the timeout."""
    latest: dt.datetime | None
    """The most recent heartbeat of any runner (UTC, naive as the store keeps times), or None."""


class RunnerBeacons:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def beat(self, name: str) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            updated = conn.execute(runners_table.update().where(runners_table.c.name == name)
                                   .values(heartbeat=now)).rowcount
            if not updated:
                conn.execute(runners_table.insert().values(name=name, started=now, heartbeat=now))
            conn.execute(runners_table.delete().where(runners_table.c.heartbeat < now - FORGET_AFTER))

    def remove(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(runners_table.delete().where(runners_table.c.name == name))

    def state(self, timeout: dt.timedelta) -> RunnerState:
        limit = utcnow() - timeout
        with self.engine.connect() as conn:
            alive = conn.execute(sa.select(sa.func.count()).where(runners_table.c.heartbeat >= limit)).scalar()
            latest = conn.execute(sa.select(sa.func.max(runners_table.c.heartbeat))).scalar()
        return RunnerState(int(alive or 0), latest)
