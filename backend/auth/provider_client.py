"""What Terracube asks an OpenID Connect provider, cached: the discovery document, the signing keys
(JWKS) and the userinfo of opaque access tokens.

Strategy: a provider is asked as little as possible, and never in a storm.
- The discovery document and the JWKS are fetched once and kept for an hour; a key id that is not
  in the JWKS makes one refetch (a key rotation), at most once every ``jwks_refresh_seconds``, so
  tokens with made-up key ids cannot make the back-end hammer the provider.
- Userinfo answers are kept for ``userinfo_ttl_seconds`` under a digest of the token (the token itself
  is never kept); refusals are kept briefly too.
- Each kind of call is made by one thread at a time: a burst of requests waits for the one call.
- When the provider fails (refused connection, timeout, 5xx, no JSON) it is left alone for a while
  that doubles with each failure (2 s up to 60 s); meanwhile requests needing it fail at once with
  ``ServiceUnavailable`` (503) instead of each waiting for a timeout. A cached discovery document or
  JWKS keeps serving through an outage.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import jwt
import requests

from backend.auth.providers import OidcProvider
from processes.core.errors import OpenEOError, ServiceUnavailable, TokenInvalid

log = logging.getLogger(__name__)

METADATA_TTL_SECONDS = 3600.0
_TIMEOUT = (3.05, 5.0)  # connect, read
_BACKOFF_FIRST, _BACKOFF_MAX = 2.0, 60.0
_USERINFO_REFUSED_TTL = 10.0
_USERINFO_CACHE_SIZE = 10_000


class _Backoff:
    """When a failing provider may be asked again."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def waiting(self) -> float:
        return max(0.0, self.retry_at - time.monotonic())

    def failed(self) -> float:
        self.failures += 1
        wait = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (self.failures - 1))
        self.retry_at = time.monotonic() + wait
        return wait

    def succeeded(self) -> None:
        self.failures, self.retry_at = 0, 0.0


class ProviderClient:
    """The cached view of one provider; safe to share between a worker's threads."""

    def __init__(self, provider: OidcProvider, *, jwks_refresh_seconds: float = 10.0,
                 userinfo_ttl_seconds: float = 60.0, session: requests.Session | None = None):
        self.provider = provider
        self._jwks_refresh = jwks_refresh_seconds
        self._userinfo_ttl = userinfo_ttl_seconds
        self._http = session or requests.Session()
        self._backoff = _Backoff()
        self._metadata: Mapping[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_at = float("-inf")
        self._userinfo: OrderedDict[str, tuple[float, Mapping[str, Any] | None]] = OrderedDict()
        self._metadata_lock = threading.Lock()
        self._keys_lock = threading.Lock()
        self._userinfo_lock = threading.Lock()

    # --- discovery --------------------------------------------------------------------------------
    def metadata(self) -> Mapping[str, Any]:
        """The discovery document (``<issuer>/.well-known/openid-configuration``)."""
        if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL_SECONDS:
            return self._metadata
        with self._metadata_lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL_SECONDS:
                return self._metadata
            try:
                document = self._get_json(f"{self.provider.issuer}/.well-known/openid-configuration",
                                          "discovery document")
            except ServiceUnavailable:
                if self._metadata is not None:  # an outage: the document we have still holds
                    return self._metadata
                raise
            if str(document.get("issuer", "")).rstrip("/") != self.provider.issuer or "jwks_uri" not in document:
                raise self._unavailable(
                    f"its discovery document names issuer {document.get('issuer')!r}, not {self.provider.issuer!r}, "
                    "or lacks jwks_uri; the back-end's operator should correct the issuer in TERRACUBE_OIDC_PROVIDERS",
                    self._backoff.failed())
            self._metadata, self._metadata_at = document, time.monotonic()
            return document

    # --- signing keys -----------------------------------------------------------------------------
    def signing_key(self, kid: str | None) -> jwt.PyJWK:
        """The provider's public key ``kid`` (the only key when the token names none)."""
        key = self._known_key(kid)
        if key is not None and time.monotonic() - self._keys_at < METADATA_TTL_SECONDS:
            return key
        with self._keys_lock:
            key = self._known_key(kid)
            since = time.monotonic() - self._keys_at
            if key is None and since >= self._jwks_refresh or key is not None and since >= METADATA_TTL_SECONDS:
                try:
                    self._load_keys()
                except ServiceUnavailable:
                    if key is None:
                        raise
                key = self._known_key(kid)
        if key is None:
            raise TokenInvalid(
                f"The access token is signed with a key that OpenID Connect provider '{self.provider.id}' "
                f"({self.provider.issuer}) does not publish: it was issued by another provider or forged. "
                "Log in again with this provider.")
        return key

    def _known_key(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _load_keys(self) -> None:
        document = self._get_json(str(self.metadata()["jwks_uri"]), "JWKS")
        keys: dict[str, jwt.PyJWK] = {}
        for number, entry in enumerate(document.get("keys") or []):
            if entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError):  # a key type we cannot use: others may do
                continue
            keys[str(entry.get("kid", f"#{number}"))] = key
        self._keys, self._keys_at = keys, time.monotonic()

    # --- userinfo ---------------------------------------------------------------------------------
    def userinfo(self, access_token: str) -> Mapping[str, Any]:
        """The claims the userinfo endpoint gives for an (opaque) access token; ``TokenInvalid`` when refused."""
        digest = hashlib.sha256(access_token.encode()).hexdigest()
        cached = self._cached_userinfo(digest)
        if cached is None:
            with self._userinfo_lock:
                cached = self._cached_userinfo(digest)
                if cached is None:
                    cached = self._ask_userinfo(access_token)
                    self._remember(digest, cached)
        claims = cached[1]
        if claims is None:
            raise TokenInvalid(
                f"OpenID Connect provider '{self.provider.id}' does not accept the access token (it expired, was "
                "revoked or is not one of its tokens). Log in again.")
        return claims

    def _cached_userinfo(self, digest: str) -> tuple[float, Mapping[str, Any] | None] | None:
        entry = self._userinfo.get(digest)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry

    def _remember(self, digest: str, entry: tuple[float, Mapping[str, Any] | None]) -> None:
        self._userinfo[digest] = entry
        self._userinfo.move_to_end(digest)
        while len(self._userinfo) > _USERINFO_CACHE_SIZE:
            self._userinfo.popitem(last=False)

    def _ask_userinfo(self, access_token: str) -> tuple[float, Mapping[str, Any] | None]:
        endpoint = self.metadata().get("userinfo_endpoint")
        if not endpoint:
            raise TokenInvalid(f"The access token is not a JWT, and OpenID Connect provider '{self.provider.id}' "
                               "has no userinfo endpoint to check it; use a JWT access token.")
        response = self._request(str(endpoint), "userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code in (400, 401, 403):
            self._backoff.succeeded()
            return time.monotonic() + _USERINFO_REFUSED_TTL, None
        claims = self._json(response, "userinfo")
        if not isinstance(claims.get("sub"), str):
            raise self._unavailable("its userinfo answer has no 'sub'", self._backoff.failed())
        return time.monotonic() + self._userinfo_ttl, claims

    # --- HTTP -------------------------------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> Mapping[str, Any]:
        return self._json(self._request(url, what), what)

    def _request(self, url: str, what: str, headers: Mapping[str, str] | None = None) -> requests.Response:
        waiting = self._backoff.waiting()
        if waiting:
            raise self._unavailable("it failed a moment ago", waiting, logged=False)
        try:
            response = self._http.get(url, headers=headers, timeout=_TIMEOUT)
        except requests.Timeout:
            raise self._unavailable(f"its {what} did not answer in time", self._backoff.failed()) from None
        except requests.RequestException as exc:
            raise self._unavailable(f"its {what} cannot be reached ({type(exc).__name__})",
                                    self._backoff.failed()) from None
        if response.status_code >= 500:
            raise self._unavailable(f"its {what} answers HTTP {response.status_code}", self._backoff.failed())
        return response

    def _json(self, response: requests.Response, what: str) -> Mapping[str, Any]:
        try:
            document = response.json() if response.status_code == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise self._unavailable(f"its {what} answers HTTP {response.status_code} without a JSON object",
                                    self._backoff.failed())
        self._backoff.succeeded()
        return document

    def _unavailable(self, reason: str, retry_in: float, *, logged: bool = True) -> OpenEOError:
        if logged:  # once per failure, not once per request turned away meanwhile
            log.warning("OpenID Connect provider %r (%s): %s; not asked again for %.0f s",
                        self.provider.id, self.provider.issuer, reason, retry_in)
        return ServiceUnavailable(
            f"Cannot check the access token: OpenID Connect provider '{self.provider.id}' "
            f"({self.provider.issuer}) is unavailable ({reason}). Try again in {max(1, round(retry_in))} s; "
            "if it persists, tell the back-end's operator.")
