"""Who a request's user is: the :class:`User` every view works with, and how OpenID Connect claims make one.

A user of HTTP Basic is named by the configured user name. A user of OpenID Connect is named by the
issuer and the ``sub`` claim together (never by an e-mail address, which can change hands): the
``user_id`` is a short digest of both, stable across logins and safe as a folder name (it names the
user's workspace and job folders), and the readable name comes from the ``name`` or
``preferred_username`` claims.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ADMIN_ROLE = "admin"
"""The role of an administrator, whatever the provider's claim calls it (``TERRACUBE_OIDC_ADMIN_ROLE``)."""


@dataclass(frozen=True)
class User:
    user_id: str
    """Stable, path-safe id: the owner of jobs, files, process graphs and services."""
    name: str = ""
    """Readable name for ``/me`` and pages; the ``user_id`` when no better one is known."""
    roles: tuple[str, ...] = ()
    """Roles from the provider's roles claim (``TERRACUBE_OIDC_ROLES_CLAIM``), plus ``admin`` for holders
    of the configured admin role."""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.user_id)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def oidc_user_id(issuer: str, subject: str) -> str:
    """The user id of ``subject`` at ``issuer``: ``oidc-`` and 24 hex digits of a SHA-256 of both."""
    digest = hashlib.sha256(f"{issuer.rstrip('/')}\n{subject}".encode()).hexdigest()
    return f"oidc-{digest[:24]}"


@dataclass(frozen=True)
class RolePolicy:
    """Reads roles off verified claims."""

    claim: str = "groups"
    """The claim that lists the roles (a list of strings, or one space-separated string)."""
    admin_value: str | None = None
    """A value of that claim that grants :data:`ADMIN_ROLE`."""

    def roles(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        raw = claims.get(self.claim)
        values = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        roles = [str(v) for v in values if isinstance(v, str | int)]
        if self.admin_value is not None and self.admin_value in roles and ADMIN_ROLE not in roles:
            roles.append(ADMIN_ROLE)
        return tuple(roles)


def user_from_claims(issuer: str, claims: Mapping[str, Any], policy: RolePolicy) -> User:
    """The user named by verified claims (from an access token or the userinfo endpoint)."""
    subject = str(claims["sub"])
    name = claims.get("name") or claims.get("preferred_username") or subject
    return User(oidc_user_id(issuer, subject), str(name), policy.roles(claims))
