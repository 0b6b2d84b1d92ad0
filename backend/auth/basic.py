"""HTTP Basic for ``/credentials/basic`` → signed bearer tokens (JWT, HS256).

openEO clients send the token back as ``Authorization: Bearer basic//<token>``. A token names the
user (``sub``) and expires (``exp``); it is signed with the back-end's secret, so any gunicorn worker
(or replica with the same secret) can verify it without shared state. Passwords are compared in
constant time.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping

import jwt
from flask import Request

from backend.auth.identity import User
from processes.core.errors import AuthenticationRequired, CredentialsInvalid, TokenInvalid

BASIC_PREFIX = "basic//"
_ALGORITHM = "HS256"


class BasicLogin:
    """The configured user names and passwords, and the bearer tokens issued for them."""

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

    def user(self, token: str) -> User:
        """The user of a token this back-end issued (without the ``basic//`` prefix)."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM])
        except jwt.ExpiredSignatureError:
            raise TokenInvalid("The bearer token has expired. Please authenticate again.") from None
        except jwt.InvalidTokenError:
            raise TokenInvalid("The bearer token is invalid. Please authenticate again.") from None
        user_id = claims.get("sub")
        if user_id not in self._users:
            raise TokenInvalid("The bearer token names a user that no longer exists. Please authenticate again.")
        return User(user_id)
