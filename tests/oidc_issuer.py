"""A real OpenID Connect provider for the tests: ``tests/oidc/provider.mjs`` (the certified npm package
``oidc-provider``, installed from ``tests/oidc/package-lock.json`` with ``npm ci``) run with node.

:func:`running_issuer` starts one on a free port and stops it after; :class:`OidcIssuer` gets tokens
from it the ways the clients do (client credentials; device code and authorization code, with the
login and consent pages filled in over HTTP as a person would in a browser), restarts it with new
signing keys (a key rotation) and reads the counters of the requests Terracube made to it. Tests skip,
saying why, where node or npm are missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from backend.devserver import free_port, stop, wait_until_answering

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
ROBOTS = {"robot-a": "robot-a-secret-for-tests-only", "robot-b": "robot-b-secret-for-tests-only"}
"""Confidential clients (client credentials; JWT access tokens) and their secrets, as in provider.mjs."""
ROBOT_GROUPS = {"robot-a": ["eo-users", "terracube-admins"], "robot-b": ["eo-users"]}
PUBLIC_CLIENT = "terracube"
"""The public client: authorization code + PKCE, device code + PKCE, refresh tokens; opaque access tokens."""
AUDIENCE = "terracube"
PUBLIC_GRANTS = ["authorization_code+pkce", "urn:ietf:params:oauth:grant-type:device_code+pkce", "refresh_token"]


def install_provider() -> None:
    """``npm ci`` in tests/oidc once; skips the test when node or npm are missing or the install fails."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("needs node and npm to run the OpenID Connect provider (tests/oidc, npm oidc-provider)")
    if (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=OIDC_DIR, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"npm could not install oidc-provider in {OIDC_DIR}: {done.stderr[-400:]}")


@dataclass
class OidcIssuer:
    port: int
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def provider_entry(self, provider_id: str = "local", **extra: Any) -> dict[str, Any]:
        """The provider's entry of ``TERRACUBE_OIDC_PROVIDERS``."""
        return {"id": provider_id, "issuer": self.url, "title": f"Test provider {provider_id}",
                "scopes": ["openid"], "default_clients": [{"id": PUBLIC_CLIENT, "grant_types": PUBLIC_GRANTS}],
                **extra}

    # --- life -------------------------------------------------------------------------------------
    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(["node", "provider.mjs", str(self.port)], cwd=OIDC_DIR, stdout=log,
                                            stderr=subprocess.STDOUT)
        # the test routes are not counted, the discovery document is: wait on a test route
        wait_until_answering(f"{self.url}/test/requests", self.process, self.log_path,
                             "the OpenID Connect provider", 30)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def restart(self) -> None:
        """Stop and start on the same port: new signing keys (a key rotation), tokens issued before stay valid
        at Terracube only while their key is cached (they are JWTs; the provider forgot them)."""
        self.stop()
        self.start()

    # --- test routes ------------------------------------------------------------------------------
    def requests_made(self) -> dict[str, int]:
        """How often discovery, JWKS, userinfo and token were asked since the provider started."""
        return requests.get(f"{self.url}/test/requests", timeout=5).json()

    def outage(self, on: bool) -> None:
        """Make discovery, JWKS and userinfo answer 503 (still counted) or answer again."""
        requests.post(f"{self.url}/test/outage", params={"on": "1" if on else "0"}, timeout=5).raise_for_status()

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT with these claims, signed with the provider's current key."""
        response = requests.post(f"{self.url}/test/sign", data=json.dumps(claims), timeout=5)
        response.raise_for_status()
        return response.json()["token"]

    # --- tokens the ways clients get them ---------------------------------------------------------
    def client_credentials_token(self, client_id: str = "robot-a") -> str:
        response = requests.post(f"{self.url}/token", timeout=10, data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": ROBOTS[client_id],
            "scope": "openid"})
        response.raise_for_status()
        return response.json()["access_token"]

    def device_login(self, login: str) -> dict[str, Any]:
        """Tokens of the public client by the device flow with PKCE, approved at once by ``login``
        (opaque access token, refresh token)."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        started = requests.post(f"{self.url}/device/auth", timeout=10, data={
            "client_id": PUBLIC_CLIENT, "scope": "openid offline_access", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        started.raise_for_status()
        self.approve(started.json()["verification_uri_complete"], login)
        response = requests.post(f"{self.url}/token", timeout=10, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": PUBLIC_CLIENT,
            "device_code": started.json()["device_code"], "code_verifier": verifier})
        response.raise_for_status()
        return response.json()

    def approve(self, verification_url: str, login: str) -> None:
        """What a person does in the browser at a verification or authorization URL: confirm the code, log
        in (oidc-provider's development login takes any name and password) and consent. Stops at a redirect
        to a loopback callback (where the client listens), which it then calls like the browser would."""
        session = requests.Session()
        page = session.get(verification_url, timeout=10, allow_redirects=False)
        for _ in range(12):
            if page.is_redirect:
                target = urljoin(page.url, page.headers["Location"])
                if not target.startswith(self.url):  # the client's redirect catcher: hand over the code
                    requests.get(target, timeout=10)
                    return
                page = session.get(target, timeout=10, allow_redirects=False)
                continue
            forms = _Forms()
            forms.feed(page.text)
            if not forms.found:
                if "Success" in page.text:
                    return
                raise RuntimeError(f"unexpected page at {page.url}: {page.text[:500]}")
            form = forms.found[0]
            data = dict(form.inputs)
            if "confirm" in form.buttons:
                data["confirm"] = form.buttons["confirm"]
            if "login" in data:
                data.update(login=login, password="any")
            page = session.post(urljoin(page.url, form.action), data=data, timeout=10, allow_redirects=False)
        raise RuntimeError("the login pages did not end in success or a redirect")


@dataclass
class _Form:
    action: str
    inputs: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    """The forms of a page with their named inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.found.append(_Form(attributes.get("action") or ""))
        elif self.found and attributes.get("name") and tag in ("input", "button"):
            target = self.found[-1].inputs if tag == "input" else self.found[-1].buttons
            target[attributes["name"] or ""] = attributes.get("value") or ""


@contextmanager
def running_issuer(log_dir: Path, name: str = "oidc-provider") -> Iterator[OidcIssuer]:
    """A provider on a free port, stopped after."""
    install_provider()
    issuer = OidcIssuer(free_port(), log_dir / f"{name}.log")
    issuer.start()
    try:
        yield issuer
    finally:
        issuer.stop()
