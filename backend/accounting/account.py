"""One user's account as ``GET /me`` shows it.

The openEO fields (``user_id``, ``name``, ``default_plan`` when there is billing, ``storage`` = the
workspace's ``{free, quota}`` when it has a quota, ``links``) plus three documented extras:
``roles``, ``limits`` (those in force, :class:`backend.accounting.limits.UserLimits`) and ``usage``
(summed over the user's jobs and folders, :class:`backend.accounting.usage.Usage`).
"""

from __future__ import annotations

from typing import Any

from backend.accounting.billing import plan_name
from backend.accounting.limits import roles_of, user_limits
from backend.accounting.usage import user_usage
from backend.jobs.store import JobStore
from backend.settings import Settings


def account_document(settings: Settings, store: JobStore, user: Any) -> dict[str, Any]:
    limits = user_limits(settings, user)
    usage = user_usage(settings, store, user.user_id)
    body: dict[str, Any] = {"user_id": user.user_id, "name": getattr(user, "name", None) or user.user_id}
    if settings.prices:
        body["default_plan"] = plan_name(settings.prices)
    if limits.workspace_bytes is not None:
        body["storage"] = {"free": max(0, limits.workspace_bytes - usage.workspace_bytes),
                           "quota": limits.workspace_bytes}
    body.update(roles=list(roles_of(settings, user)), limits=limits.document(), usage=usage.document(), links=[])
    return body
