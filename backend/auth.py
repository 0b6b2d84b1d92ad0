"""Authentication: HTTP Basic for ``/credentials/basic`` → signed bearer tokens (JWT, HS256).

openEO clients send the token back as ``Authorization: Bearer basic//<token>``. A token names the
user (``sub``) and expires (``exp``); it is signed with the back-end's secret, so any gunicorn worker
(or replica with the same secret) can verify it without shared state.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, overload

import jwt
from flask import Request

from backend.access_log import USER_KEY
from processes.core.errors import (
    AuthenticationRequired,
    AuthenticationSchemeInvalid,
    CredentialsInvalid,
    TokenInvalid,
)

BASIC_PREFIX = "basic//"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class User:
    user_id: str


class Authenticator:
    def __init__(self, users: Mapping[str, str], secret: str, token_ttl_seconds: int):
        self._users = dict(users)
        self._secret = secret
        self._ttl = token_ttl_seconds

    def issue_token(self, request: Request) -> tuple[str, int]:
        """Check HTTP Basic credentials; return ``(access_token, expires_in)``."""
        auth = request.authorization
        if auth is None or auth.type != "basic":
            raise AuthenticationRequired(
                "Send HTTP Basic credentials (Authorization: Basic base64(user:password)) to get a token."
            )
        expected = self._users.get(auth.username or "")
        if expected is None or not hmac.compare_digest(expected.encode(), (auth.password or "").encode()):
            raise CredentialsInvalid("Credentials are not correct: unknown user name or wrong password.")
        now = int(time.time())
        token = jwt.encode({"sub": auth.username, "iat": now, "exp": now + self._ttl}, self._secret, _ALGORITHM)
        return token, self._ttl

    # A required user is always there (or AuthenticationRequired is raised): only optional ones may be None.
    @overload
    def user_from_request(self, request: Request, *, required: Literal[True] = True) -> User: ...
    @overload
    def user_from_request(self, request: Request, *, required: bool) -> User | None: ...
    def user_from_request(self, request: Request, *, required: bool = True) -> User | None:
        header = request.headers.get("Authorization")
        if not header:
            if required:
                raise AuthenticationRequired(
                    "Unauthorized: this endpoint needs a bearer token. Log in with GET /credentials/basic "
                    "(e.g. connection.authenticate_basic(user, password) in the openEO Python client)."
                )
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationSchemeInvalid(
                f"Authentication method '{scheme}' is not supported; send 'Authorization: Bearer basic//<token>'."
            )
        if not value.startswith(BASIC_PREFIX):
            provider = value.split("/", 1)[0] if "/" in value else "?"
            raise AuthenticationSchemeInvalid(
                f"Bearer tokens of type '{provider}' are not supported; log in with HTTP Basic at /credentials/basic."
            )
        try:
            claims = jwt.decode(value[len(BASIC_PREFIX):], self._secret, algorithms=[_ALGORITHM])
        except jwt.ExpiredSignatureError:
            raise TokenInvalid("The bearer token has expired. Please authenticate again.") from None
        except jwt.InvalidTokenError:
            raise TokenInvalid("The bearer token is invalid. Please authenticate again.") from None
        user_id = claims.get("sub")
        if user_id not in self._users:
            raise TokenInvalid("The bearer token names a user that no longer exists. Please authenticate again.")
        request.environ[USER_KEY] = user_id  # for the access log
        return User(user_id)
