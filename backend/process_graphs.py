"""User-defined processes (``/process_graphs``): stored per user in the job store's database.

A stored process is the openEO process JSON (``id``, ``parameters``, ``returns``, ``process_graph``,
…). Graphs call them by id (namespace ``user``, or none when no predefined process has that id);
the evaluator finds them through :meth:`UdpStore.lookup` bound to the requesting user.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from backend.jobs.store import metadata, utcnow
from processes.core.errors import (
    BadRequest,
    PredefinedProcessExists,
    ProcessGraphMissing,
    ProcessGraphNotFound,
)
from processes.core.graph import parse_process_graph

udps_table = sa.Table(
    "user_processes",
    metadata,
    sa.Column("user_id", sa.String(255), primary_key=True),
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),  # JSON
    sa.Column("updated", sa.DateTime, nullable=False),
)

_ID = re.compile(r"^\w+$")


class UdpStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def put(self, user_id: str, process_id: str, definition: dict[str, Any], predefined: set[str]) -> None:
        if not _ID.match(process_id):
            raise BadRequest(f"'{process_id}' is not a valid process id: use letters, digits and underscores.")
        if process_id in predefined:
            raise PredefinedProcessExists(f"A predefined process '{process_id}' exists; choose another id.")
        if not isinstance(definition, dict) or "process_graph" not in definition:
            raise ProcessGraphMissing("The body must be a process with a 'process_graph'.")
        parse_process_graph(definition)
        document = {**definition, "id": process_id}
        with self.engine.begin() as conn:
            conn.execute(udps_table.delete().where(udps_table.c.user_id == user_id, udps_table.c.id == process_id))
            conn.execute(udps_table.insert().values(user_id=user_id, id=process_id, definition=json.dumps(document),
                                                    updated=utcnow()))

    def get(self, user_id: str, process_id: str) -> dict[str, Any]:
        found = self.lookup(user_id, process_id)
        if found is None:
            raise ProcessGraphNotFound(f"User-defined process '{process_id}' does not exist.")
        return found

    def lookup(self, user_id: str | None, process_id: str) -> dict[str, Any] | None:
        if user_id is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(udps_table.c.definition).where(
                udps_table.c.user_id == user_id, udps_table.c.id == process_id)).scalar()
        return json.loads(row) if row else None

    def list(self, user_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(udps_table.c.definition).where(udps_table.c.user_id == user_id)
                                .order_by(udps_table.c.id)).scalars()
            return [json.loads(r) for r in rows]

    def delete(self, user_id: str, process_id: str) -> None:
        with self.engine.begin() as conn:
            deleted = conn.execute(udps_table.delete().where(
                udps_table.c.user_id == user_id, udps_table.c.id == process_id)).rowcount
        if not deleted:
            raise ProcessGraphNotFound(f"User-defined process '{process_id}' does not exist.")
