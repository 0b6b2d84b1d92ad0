"""What users used: summed from the job store (jobs, their measured CPU seconds, costs) and from the
folders on disk (stored results, workspace files), for ``/me`` and ``terracube users``.

Stored bytes are measured on disk rather than taken from the jobs' recorded ``result_bytes``: a job's
results may have been replaced by a later run or removed by the retention sweep.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from backend.accounting.billing import job_costs
from backend.jobs.folder import JobFolder
from backend.jobs.store import JobStore
from backend.settings import Settings
from backend.workspace import Workspace


@dataclass(frozen=True)
class Usage:
    """One user's usage."""

    user_id: str
    jobs: int = 0
    """Batch jobs in the store."""
    statuses: dict[str, int] = field(default_factory=dict)
    """How many of them have each status."""
    cpu_seconds: float = 0.0
    """CPU seconds the jobs' last runs used (as each job reports in its ``usage``)."""
    result_bytes: int = 0
    """Bytes of the jobs' stored results."""
    workspace_bytes: int = 0
    """Bytes of the files in the user's workspace."""
    costs: float | None = None
    """The jobs' costs under the price list; None without one."""

    @property
    def running(self) -> int:
        return self.statuses.get("queued", 0) + self.statuses.get("running", 0)

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobs": self.jobs, "jobs_queued_or_running": self.running, "cpu_seconds": round(self.cpu_seconds, 2),
            "result_bytes": self.result_bytes, "workspace_bytes": self.workspace_bytes,
        }
        if self.costs is not None:
            body["costs"] = self.costs
        return body


def user_usage(settings: Settings, store: JobStore, user_id: str) -> Usage:
    return _summed(settings, user_id, store.usage_rows(user_id))


def all_usage(settings: Settings, store: JobStore) -> list[Usage]:
    """Everyone's usage: every user with jobs, plus the configured users, admins and anyone with files."""
    rows_by_user: dict[str, list[tuple[str, str, str, dict[str, Any] | None]]] = {}
    for row in store.usage_rows():
        rows_by_user.setdefault(row[1], []).append(row)
    users = set(rows_by_user) | set(settings.users) | set(settings.admins)
    return [_summed(settings, user_id, rows_by_user.get(user_id, [])) for user_id in sorted(users)]


def _summed(settings: Settings, user_id: str, rows: list[tuple[str, str, str, dict[str, Any] | None]]) -> Usage:
    cpu = 0.0
    costs = 0.0 if settings.prices else None
    for _job_id, _owner, _status, usage in rows:
        value = (usage or {}).get("cpu", {}).get("value") if isinstance((usage or {}).get("cpu"), dict) else None
        if isinstance(value, int | float):
            cpu += value
        cost = job_costs(settings.prices, usage)
        if costs is not None and cost is not None:
            costs += cost
    return Usage(
        user_id=user_id,
        jobs=len(rows),
        statuses=dict(Counter(status for _id, _owner, status, _usage in rows)),
        cpu_seconds=cpu,
        result_bytes=stored_result_bytes(settings, (job_id for job_id, *_ in rows)),
        workspace_bytes=Workspace(settings.workspaces_dir, user_id).used_bytes(),
        costs=round(costs, 6) if costs is not None else None,
    )


def stored_result_bytes(settings: Settings, job_ids: Iterable[str]) -> int:
    """Bytes of the files in these jobs' ``results`` folders."""
    total = 0
    for job_id in job_ids:
        folder = JobFolder.of(settings, job_id).results
        if not folder.is_dir():
            continue
        for root, _dirs, files in os.walk(folder):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except OSError:  # removed meanwhile
                    pass
    return total


def human_bytes(count: float) -> str:
    """``1.5 GiB``: a size for people."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
