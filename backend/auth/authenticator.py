"""Who sent a request: the ``Authorization: Bearer`` header → :class:`~backend.auth.identity.User`.

The bearer value names its method, as the openEO API asks: ``basic//<token>`` for tokens of
``/credentials/basic`` (:mod:`backend.auth.basic`), ``oidc/<provider id>/<access token>`` for OpenID
Connect (:mod:`backend.auth.oidc`). The user id is left in the request's WSGI environ for the access
log; tokens never reach a log line or an error message.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from flask import Request

from backend.access_log import USER_KEY
from backend.auth.basic import BASIC_PREFIX, BasicLogin
from backend.auth.identity import RolePolicy, User
from backend.auth.oidc import OIDC_PREFIX, OidcVerifier
from backend.auth.providers import parse_providers
from backend.settings import Settings
from processes.core.errors import AuthenticationRequired, AuthenticationSchemeInvalid


class Authenticator:
    def __init__(self, basic: BasicLogin, oidc: OidcVerifier | None = None):
        self._basic = basic
        self.oidc = oidc
        """The OpenID Connect providers; None when none are configured."""

    @classmethod
    def from_settings(cls, settings: Settings, **oidc_options: Any) -> Authenticator:
        basic = BasicLogin(settings.users, settings.token_secret(), settings.token_ttl_seconds)
        providers = parse_providers(settings.oidc_providers)
        roles = RolePolicy(settings.oidc_roles_claim, settings.oidc_admin_role)
        return cls(basic, OidcVerifier(providers, roles, **oidc_options) if providers else None)

    def issue_token(self, request: Request) -> tuple[str, int]:
        """Check HTTP Basic credentials; return ``(access_token, expires_in)``."""
        return self._basic.issue_token(request)

    # A required user is always there (or AuthenticationRequired is raised): only optional ones may be None.
    @overload
    def user_from_request(self, request: Request, *, required: Literal[True] = True) -> User: ...
    @overload
    def user_from_request(self, request: Request, *, required: bool) -> User | None: ...
    def user_from_request(self, request: Request, *, required: bool = True) -> User | None:
        header = request.headers.get("Authorization")
        if not header:
            if required:
                raise AuthenticationRequired(f"Unauthorized: this endpoint needs a bearer token. {self._how_to_log_in()}")
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationSchemeInvalid(
                f"Authentication method '{scheme}' is not supported; send 'Authorization: Bearer <token>'. "
                f"{self._how_to_log_in()}")
        value = value.strip()
        if value.startswith(BASIC_PREFIX):
            user = self._basic.user(value[len(BASIC_PREFIX):])
        elif value.startswith(OIDC_PREFIX) and self.oidc is not None:
            user = self.oidc.user(value[len(OIDC_PREFIX):])
        else:
            method = value.split("/", 1)[0] if "/" in value else "?"
            raise AuthenticationSchemeInvalid(
                f"Bearer tokens of type '{method}' are not supported. {self._how_to_log_in()}")
        request.environ[USER_KEY] = user.user_id  # for the access log
        return user

    def _how_to_log_in(self) -> str:
        basic = ("Log in with HTTP Basic at GET /credentials/basic (connection.authenticate_basic(user, password) "
                 "in the openEO Python client) and send 'Bearer basic//<token>'")
        if self.oidc is None:
            return basic + "."
        return (basic + ", or with OpenID Connect (GET /credentials/oidc lists the providers; "
                "connection.authenticate_oidc()) and send 'Bearer oidc/<provider id>/<access token>'.")
