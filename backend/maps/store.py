"""Secondary web services (``/services``) and their logs, in the job store's database.

Every query that reads or changes a service names its owner, so one user can never see or touch
another's service (it is "not found", like a missing one). The tile URL carries a random key stored
with the service (:func:`new_key`); :meth:`ServiceStore.for_tiles` finds a service by id and key
(compared in constant time) regardless of its owner, for the public tile route only. ``revision``
grows with every change, so tiles cached for an older revision are never served again.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backend.jobs.store import LogEntry, metadata, read_logs, utcnow
from processes.core.errors import PropertyNotEditable, ServiceNotFound

services_table = sa.Table(
    "services",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(255), nullable=False, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("title", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("process", sa.Text, nullable=False),  # JSON
    sa.Column("configuration", sa.Text, nullable=False),  # JSON
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("plan", sa.String(255)),
    sa.Column("budget", sa.Float),
    sa.Column("key", sa.String(64), nullable=False),  # the secret part of the tile URL
    sa.Column("revision", sa.Integer, nullable=False, default=1),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
)
service_logs_table = sa.Table(
    "service_logs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("service_id", sa.String(64), sa.ForeignKey("services.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("time", sa.DateTime, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("code", sa.String(255)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("data", sa.Text),  # JSON
)

EDITABLE = frozenset({"title", "description", "process", "configuration", "enabled", "plan", "budget"})
MAX_LOG_ENTRIES = 1000
"""Log entries kept per service (the oldest go first): a broken graph under a busy map logs every tile."""


def new_key() -> str:
    """An unguessable key for a tile URL (192 random bits)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ServiceRecord:
    id: str
    user_id: str
    type: str
    title: str | None
    description: str | None
    process: dict[str, Any]
    configuration: dict[str, Any]
    enabled: bool
    plan: str | None
    budget: float | None
    key: str
    revision: int
    created: dt.datetime
    updated: dt.datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ServiceRecord:
        values = {name: row[name] for name in cls.__dataclass_fields__ if name not in ("process", "configuration")}
        values["enabled"] = bool(values["enabled"])
        return cls(process=json.loads(row["process"]), configuration=json.loads(row["configuration"]), **values)


class ServiceStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)  # adds the services tables to an existing job store

    def create(self, user_id: str, type: str, process: dict[str, Any], configuration: Mapping[str, Any], *,
               title: str | None = None, description: str | None = None, enabled: bool = True,
               plan: str | None = None, budget: float | None = None) -> ServiceRecord:
        now = utcnow()
        service_id = "s-" + uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(services_table.insert().values(
                id=service_id, user_id=user_id, type=type, title=title, description=description,
                process=json.dumps(process), configuration=json.dumps(dict(configuration)), enabled=enabled,
                plan=plan, budget=budget, key=new_key(), revision=1, created=now, updated=now,
            ))
        return self.get(user_id, service_id)

    def get(self, user_id: str, service_id: str) -> ServiceRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(services_table).where(
                services_table.c.id == service_id, services_table.c.user_id == user_id)).mappings().first()
        if row is None:
            raise ServiceNotFound(f"Service '{service_id}' does not exist.")
        return ServiceRecord.from_row(row)

    def list(self, user_id: str, limit: int | None = None) -> list[ServiceRecord]:
        query = (sa.select(services_table).where(services_table.c.user_id == user_id)
                 .order_by(services_table.c.created.desc(), services_table.c.id))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [ServiceRecord.from_row(row) for row in conn.execute(query).mappings()]

    def update(self, user_id: str, service_id: str, changes: Mapping[str, Any]) -> ServiceRecord:
        bad = set(changes) - EDITABLE
        if bad:
            raise PropertyNotEditable(f"The service properties {sorted(bad)} can't be changed; editable: "
                                      f"{sorted(EDITABLE)}.")
        values = {k: (json.dumps(v) if k in ("process", "configuration") else v) for k, v in changes.items()}
        with self.engine.begin() as conn:
            changed = conn.execute(services_table.update().where(
                services_table.c.id == service_id, services_table.c.user_id == user_id,
            ).values(**values, updated=utcnow(), revision=services_table.c.revision + 1)).rowcount
        if not changed:
            raise ServiceNotFound(f"Service '{service_id}' does not exist.")
        return self.get(user_id, service_id)

    def delete(self, user_id: str, service_id: str) -> None:
        with self.engine.begin() as conn:
            owned = conn.execute(sa.select(services_table.c.id).where(
                services_table.c.id == service_id, services_table.c.user_id == user_id)).scalar()
            if owned is None:
                raise ServiceNotFound(f"Service '{service_id}' does not exist.")
            conn.execute(service_logs_table.delete().where(service_logs_table.c.service_id == service_id))
            conn.execute(services_table.delete().where(
                services_table.c.id == service_id, services_table.c.user_id == user_id))

    def for_tiles(self, service_id: str, key: str) -> ServiceRecord | None:
        """The service a tile URL names, whoever owns it, if the key is its key (constant-time
        comparison) and it is enabled; None otherwise (unknown, deleted, disabled, wrong key)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(services_table).where(services_table.c.id == service_id)).mappings().first()
        stored = row["key"] if row is not None else new_key()  # compare anyway: same time either way
        if not hmac.compare_digest(stored.encode(), key.encode()) or row is None or not row["enabled"]:
            return None
        return ServiceRecord.from_row(row)

    # --- logs ------------------------------------------------------------------------------------
    def log(self, service_id: str, level: str, message: str, data: Any = None, code: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(service_logs_table.insert().values(
                service_id=service_id, time=utcnow(), level=level, code=code, message=message,
                data=json.dumps(data, default=str) if data is not None else None,
            ))
            oldest_kept = conn.execute(
                sa.select(service_logs_table.c.seq).where(service_logs_table.c.service_id == service_id)
                .order_by(service_logs_table.c.seq.desc()).offset(MAX_LOG_ENTRIES - 1).limit(1)).scalar()
            if oldest_kept is not None:
                conn.execute(service_logs_table.delete().where(service_logs_table.c.service_id == service_id,
                                                               service_logs_table.c.seq < oldest_kept))

    def logs(self, service_id: str, offset: str | None = None, level: str = "debug", limit: int | None = None
             ) -> builtins.list[LogEntry]:
        return read_logs(self.engine, service_logs_table, service_logs_table.c.service_id, service_id, offset,
                         level, limit, "service")
