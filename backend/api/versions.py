"""The openEO API versions the back-end serves, each under its own prefix, and which one a request is in.

The same blueprints are mounted once per version (``backend.app``): ``/openeo/1.2`` keeps the names
it always had (``jobs``, ``secondary_services``, …), ``/openeo/1.3`` gets them with a suffix
(``jobs_v1_3``). Views never name a blueprint: they link with ``url_for(".view")`` (the blueprint of
the request) and :func:`backend.api.base_url`, so every link points back into the version the client
speaks. What differs between the versions is asked of :func:`current_version` (``since("1.3")``).

1.3 (2026) adds, as far as this back-end has them: the ``web-editor`` link in ``GET /``,
``authorization_parameters`` of OpenID Connect providers, the ``OpenEO-Identifier`` header of
``POST /result``, its own conformance class; the Processing Parameters extension is served under both.
Everything else answers the same under both prefixes, so a 1.2 client sees no change.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import has_request_context, request

from backend.settings import API_PREFIX, API_VERSION


@dataclass(frozen=True)
class ApiVersion:
    number: str
    """The full version, e.g. ``1.3.0`` (``api_version`` in ``GET /`` and ``/.well-known/openeo``)."""
    prefix: str
    """Where it is mounted, e.g. ``/openeo/1.3``."""
    blueprint_suffix: str
    """Appended to every blueprint's name when mounted for this version; empty for the first one."""

    def since(self, number: str) -> bool:
        """Whether this version is ``number`` (``"1.3"``) or later."""
        return _as_tuple(self.number) >= _as_tuple(number)

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


def _as_tuple(number: str) -> tuple[int, ...]:
    return tuple(int(part) for part in number.split("."))


API_VERSIONS: tuple[ApiVersion, ...] = (
    ApiVersion(API_VERSION, API_PREFIX, ""),
    ApiVersion("1.3.0", "/openeo/1.3", "_v1_3"),
)
"""Oldest first; the first is the default (links made outside a versioned request, the CLI's banner)."""


def current_version() -> ApiVersion:
    """The version of the request being served (by its path); the default one outside the API prefixes."""
    if has_request_context():
        for version in API_VERSIONS:
            if version.owns(request.path):
                return version
    return API_VERSIONS[0]
