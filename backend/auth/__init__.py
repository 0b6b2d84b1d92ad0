"""Accounts: who a request's user is.

- :mod:`~backend.auth.authenticator` reads the bearer token of a request and dispatches on its method;
- :mod:`~backend.auth.basic`: HTTP Basic at ``/credentials/basic`` and the tokens this back-end signs;
- :mod:`~backend.auth.providers`: the configured OpenID Connect providers (``GET /credentials/oidc``);
- :mod:`~backend.auth.oidc`: OpenID Connect access tokens (JWT against the JWKS, opaque at userinfo);
- :mod:`~backend.auth.provider_client`: the cached, back-off-guarded calls to a provider;
- :mod:`~backend.auth.identity`: the :class:`User` (id, name, roles) and how claims make one.
"""

from __future__ import annotations

from backend.auth.authenticator import Authenticator
from backend.auth.identity import User

__all__ = ["Authenticator", "User"]
