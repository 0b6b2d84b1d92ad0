"""Roles and per-user limits, and the checks that refuse with a clear 4xx error (never a silent queue).

Every user has the role ``user``; the user ids in ``TERRACUBE_ADMINS`` also ``admin``; an identity
provider may add roles of its own (``User.roles``, from a token claim such as ``entitlements``).
``TERRACUBE_LIMITS`` gives limits per role; a user gets, for each limit, the most generous value of
their roles (``None``: unlimited). Roles without an entry there give nothing.

The checks and where they run:

- ``running_jobs``: ``POST /jobs/{id}/results`` counts the user's queued and running jobs in the same
  transaction that queues the job (``JobStore.queue``) → ``ConcurrentJobLimit`` (400);
- ``result_mb``: a job does not start while the user's stored results fill the quota →
  ``StorageQuotaExceeded`` (400);
- ``workspace_mb``: an upload that would take the workspace over its quota → ``StorageQuotaExceeded``
  (400), before the body is read when its length is given, else as soon as it passes (``backend.workspace``);
- ``sync_pixels``: what one ``load_collection`` of ``/result`` may load (``backend.sync_processing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.accounting.usage import human_bytes, stored_result_bytes
from backend.jobs.store import JobStore
from backend.settings import Settings
from processes.core.errors import StorageQuotaExceeded

MIB = 2**20


@dataclass(frozen=True)
class UserLimits:
    """The limits in force for one user (``None``: unlimited)."""

    running_jobs: int | None
    """Batch jobs queued or running at once."""
    result_bytes: int | None
    """Bytes of stored batch job results."""
    workspace_bytes: int | None
    """Bytes of files in the workspace (``/files``)."""
    sync_pixels: int
    """Values one ``load_collection`` of a synchronous request may give."""

    def document(self) -> dict[str, Any]:
        """The limits as ``/me`` shows them (bytes, counts)."""
        return {"running_jobs": self.running_jobs, "result_bytes": self.result_bytes,
                "workspace_bytes": self.workspace_bytes, "sync_pixels": self.sync_pixels}


def roles_of(settings: Settings, user: Any) -> tuple[str, ...]:
    """The user's roles: ``user``, ``admin`` if listed in ``TERRACUBE_ADMINS``, then the identity
    provider's (``User.roles``, where the authentication gives them)."""
    roles = ["user"]
    if user.user_id in settings.admins:
        roles.append("admin")
    roles.extend(role for role in getattr(user, "roles", ()) if role not in roles)
    return tuple(roles)


def limits_of(settings: Settings, roles: tuple[str, ...]) -> UserLimits:
    """The most generous value of each limit over ``roles``."""
    configured = [settings.limits[role] for role in roles if role in settings.limits]

    def most(name: str, scale: int = 1) -> int | None:
        values = [limits[name] for limits in configured if name in limits]
        counted = [value for value in values if value is not None]
        if not values or len(counted) < len(values):
            return None
        return max(counted) * scale

    sync = [limits.get("sync_pixels") or settings.sync_max_pixels for limits in configured if "sync_pixels" in limits]
    return UserLimits(
        running_jobs=most("running_jobs"),
        result_bytes=most("result_mb", MIB),
        workspace_bytes=most("workspace_mb", MIB),
        sync_pixels=max(sync) if sync else settings.sync_max_pixels,
    )


def user_limits(settings: Settings, user: Any) -> UserLimits:
    return limits_of(settings, roles_of(settings, user))


def check_result_storage(settings: Settings, store: JobStore, user_id: str, limits: UserLimits) -> None:
    """Refuse to start a job while the user's stored results fill their quota."""
    if limits.result_bytes is None:
        return
    used = stored_result_bytes(settings, (job_id for job_id, *_ in store.usage_rows(user_id)))
    if used >= limits.result_bytes:
        raise StorageQuotaExceeded(
            f"Job was not started: your stored batch job results take {human_bytes(used)}, your quota is "
            f"{human_bytes(limits.result_bytes)}. Delete jobs whose results you no longer need "
            "(DELETE /jobs/{job_id}; job.delete() in the Python client), then start it again. Results are also "
            f"removed {settings.result_retention_days} days after their job finished."
        )

