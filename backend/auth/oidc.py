"""OpenID Connect bearer tokens (``oidc/<provider id>/<access token>``) → the user they name.

A JWT access token is verified locally against the provider's published keys (signature, ``exp``,
``iss``, and ``aud`` where the provider entry sets an audience); any other token is opaque and is
checked at the provider's userinfo endpoint. Both give claims, and the claims give the
:class:`~backend.auth.identity.User` (issuer + ``sub``). The provider conversations, with their caches
and back-off, live in :mod:`backend.auth.provider_client`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from backend.auth.identity import RolePolicy, User, user_from_claims
from backend.auth.provider_client import ProviderClient
from backend.auth.providers import OidcProvider, providers_document
from processes.core.errors import TokenInvalid

OIDC_PREFIX = "oidc/"
# Only public-key algorithms: a token must never be checked with a shared secret (algorithm confusion).
_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
LEEWAY_SECONDS = 30
"""Clock difference tolerated between the provider and this back-end."""


class OidcVerifier:
    """The configured providers, each with its cached :class:`ProviderClient`."""

    def __init__(self, providers: Sequence[OidcProvider], roles: RolePolicy, **client_options: Any):
        self.providers = tuple(providers)
        self._clients = {p.id: ProviderClient(p, **client_options) for p in self.providers}
        self._roles = roles

    def document(self, *, api_1_3: bool = True) -> dict[str, Any]:
        """The body of ``GET /credentials/oidc`` (``api_1_3=False``: in API 1.2's form)."""
        return providers_document(self.providers, api_1_3=api_1_3)

    def user(self, bearer: str) -> User:
        """The user of ``<provider id>/<access token>`` (the bearer value after ``oidc/``)."""
        provider_id, _, token = bearer.partition("/")
        client = self._clients.get(provider_id)
        if client is None:
            known = ", ".join(p.id for p in self.providers)
            raise TokenInvalid(f"The bearer token names OpenID Connect provider '{provider_id}', which this back-end "
                               f"does not know; it knows: {known}. Log in with one of GET /credentials/oidc.")
        if not token:
            raise TokenInvalid(f"The bearer token holds no access token; send 'oidc/{provider_id}/<access token>'.")
        header = _jwt_header(token)
        claims = self._verified_claims(client, token, header) if header is not None else client.userinfo(token)
        return user_from_claims(client.provider.issuer, claims, self._roles)

    def _verified_claims(self, client: ProviderClient, token: str, header: Mapping[str, Any]) -> Mapping[str, Any]:
        provider = client.provider
        algorithm = header.get("alg")
        if algorithm not in _ALGORITHMS:
            raise TokenInvalid(f"The access token is signed with algorithm {algorithm!r}; OpenID Connect access "
                               f"tokens must use one of {sorted(_ALGORITHMS)}.")
        kid = header.get("kid")
        key = client.signing_key(kid if isinstance(kid, str) else None)
        try:
            return jwt.decode(
                token, key.key, algorithms=[algorithm], leeway=LEEWAY_SECONDS,
                issuer=[provider.issuer, provider.issuer + "/"], audience=provider.audience,
                options={"require": ["exp", "iss", "sub"], "verify_aud": provider.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise TokenInvalid("The access token has expired. Log in again (the openEO clients refresh it "
                               "themselves when they hold a refresh token).") from None
        except jwt.InvalidIssuerError:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            raise TokenInvalid(f"The access token was issued by {issuer!r}, not by OpenID Connect provider "
                               f"'{provider.id}' ({provider.issuer}); send it with the id of its own provider.") from None
        except jwt.InvalidAudienceError:
            raise TokenInvalid(f"The access token is not meant for this back-end: its audience does not hold "
                               f"{provider.audience!r}. Ask the provider for a token with that audience.") from None
        except jwt.InvalidSignatureError:
            raise TokenInvalid(f"The access token's signature does not match the keys of OpenID Connect provider "
                               f"'{provider.id}': it was forged or altered. Log in again.") from None
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"The access token is invalid ({type(exc).__name__}). Log in again.") from None


def _jwt_header(token: str) -> Mapping[str, Any] | None:
    """The header of a JWT; None for an opaque token."""
    if token.count(".") != 2:
        return None
    try:
        return jwt.get_unverified_header(token)
    except jwt.DecodeError:
        return None
