"""The configured OpenID Connect providers (``TERRACUBE_OIDC_PROVIDERS``) and their ``GET /credentials/oidc`` form.

Each provider is given in the form the openEO API publishes (``id``, ``issuer``, ``title``,
``scopes``, ``description``, ``default_clients``, and API 1.3's ``authorization_parameters``: the
parameters clients must add to the provider's authorization request, e.g. ``{"prompt": "consent"}``),
optionally with an ``audience`` that its JWT access tokens must name; the audience is checked, never
published. ``authorization_parameters`` are published to 1.3 clients only (1.2 does not have them). A wrong entry stops the server at start
with a message naming the entry and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backend.settings import SettingsError

_VAR = "TERRACUBE_OIDC_PROVIDERS"
_ID = re.compile(r"^[\w]{1,20}$")
_GRANT_TYPES = {"implicit", "authorization_code", "authorization_code+pkce",
                "urn:ietf:params:oauth:grant-type:device_code",
                "urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"}
_PUBLISHED = ("id", "issuer", "title", "description", "scopes", "default_clients", "authorization_parameters")
_SINCE_1_3 = ("authorization_parameters",)


@dataclass(frozen=True)
class OidcProvider:
    id: str
    """The prefix of its bearer tokens: ``oidc/<id>/<access token>``."""
    issuer: str
    """Issuer URL without a trailing slash; ``<issuer>/.well-known/openid-configuration`` is its discovery document."""
    audience: str | None
    """When set, JWT access tokens must carry it in ``aud``."""
    public: Mapping[str, Any]
    """The entry of ``GET /credentials/oidc``."""


def parse_providers(entries: Sequence[Mapping[str, Any]]) -> tuple[OidcProvider, ...]:
    providers: list[OidcProvider] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{_VAR}: provider {number} ({entry.get('id', 'without id')!r})"
        missing = [key for key in ("id", "issuer", "title") if not isinstance(entry.get(key), str) or not entry[key]]
        if missing:
            raise SettingsError(f"{where} needs {', '.join(missing)} (strings), as in GET /credentials/oidc.")
        if not _ID.match(entry["id"]):
            raise SettingsError(f"{where}: the id must be 1 to 20 letters, digits or '_'.")
        if any(p.id == entry["id"] for p in providers):
            raise SettingsError(f"{where}: the id is used twice; give every provider its own id.")
        unknown = set(entry) - set(_PUBLISHED) - {"audience"}
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}; known: {[*_PUBLISHED, 'audience']}.")
        scopes = entry.get("scopes")
        if scopes is not None and (not isinstance(scopes, list) or "openid" not in scopes):
            raise SettingsError(f"{where}: scopes must be a list that holds 'openid'.")
        for client in entry.get("default_clients") or []:
            grants = client.get("grant_types") if isinstance(client, Mapping) else None
            if not isinstance(client, Mapping) or not client.get("id") or not isinstance(grants, list) or not grants:
                raise SettingsError(f"{where}: every default client needs an id and a list of grant_types.")
            if set(grants) - _GRANT_TYPES:
                raise SettingsError(f"{where}: unknown grant types {sorted(set(grants) - _GRANT_TYPES)}; "
                                    f"known: {sorted(_GRANT_TYPES)}.")
        parameters = entry.get("authorization_parameters")
        if parameters is not None and (not isinstance(parameters, Mapping)
                                       or not all(isinstance(v, str) for v in parameters.values())):
            raise SettingsError(f"{where}: authorization_parameters must be an object of strings, "
                                'e.g. {"prompt": "consent"}.')
        public = {key: entry[key] for key in _PUBLISHED if key in entry}
        public["issuer"] = entry["issuer"].rstrip("/")
        providers.append(OidcProvider(entry["id"], public["issuer"], entry.get("audience"), public))
    return tuple(providers)


def providers_document(providers: Sequence[OidcProvider], *, api_1_3: bool = True) -> dict[str, Any]:
    """The body of ``GET /credentials/oidc``; the first provider is the default one. ``api_1_3=False``
    leaves out what API 1.2 does not have."""
    return {"providers": [{k: v for k, v in p.public.items() if api_1_3 or k not in _SINCE_1_3}
                          for p in providers]}
