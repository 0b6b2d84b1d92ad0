"""OpenID Connect end to end: the real openEO Python client logs in at a real provider (``tests/oidc``,
npm ``oidc-provider``) with client credentials, the device flow with PKCE, authorization code with PKCE
and refresh tokens, and works with the real server (gunicorn) as that user. Bad tokens get the API's
errors; a provider that is down gets a quick 503, and a burst of requests does not hammer it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.auth.identity import oidc_user_id
from backend.devserver import running_server
from tests.conftest import REPO, server_env
from tests.oidc_issuer import PUBLIC_CLIENT, ROBOTS, OidcIssuer, running_issuer

openeo = pytest.importorskip("openeo")

OPENAPI = REPO.parent / "shared" / "conformance" / "assets" / "openeo-api" / "openapi.yaml"


@dataclass(frozen=True)
class OidcServer:
    root: str
    issuer: OidcIssuer
    log_path: Path

    @property
    def api(self) -> str:
        return f"{self.root}/openeo/1.2"

    def get(self, path: str, token: str, provider: str = "local") -> requests.Response:
        return requests.get(f"{self.api}{path}", headers={"Authorization": f"Bearer oidc/{provider}/{token}"},
                            timeout=30)

    def robot(self, client_id: str = "robot-a"):
        return openeo.connect(self.root).authenticate_oidc_client_credentials(
            client_id=client_id, client_secret=ROBOTS[client_id], provider_id="local")


@pytest.fixture(scope="module")
def oidc_server(demo_data: Path, tmp_path_factory) -> Iterator[OidcServer]:
    work = tmp_path_factory.mktemp("oidc-server")
    with running_issuer(work) as issuer:
        env = server_env(work, TERRACUBE_OIDC_PROVIDERS=json.dumps([issuer.provider_entry()]),
                         TERRACUBE_OIDC_ADMIN_ROLE="terracube-admins", TERRACUBE_DEMO="false",
                         TERRACUBE_STAC=str(demo_data / "demo" / "catalog.json"))
        with running_server(env, work / "server.log") as root:
            yield OidcServer(root, issuer, work / "server.log")


@pytest.fixture
def own_refresh_token_store(tmp_path, monkeypatch):
    """The Python client keeps refresh tokens under XDG_DATA_HOME: a temporary one, not the user's."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def approving_display(issuer: OidcIssuer, login: str):
    """The device flow's ``display``: a person who reads the URL and approves it in a browser meanwhile."""
    def display(text: str, end: str = "\n") -> None:
        match = re.search(r"Visit (\S+) to authenticate", text)
        if match:
            threading.Thread(target=issuer.approve, args=(match.group(1), login), daemon=True).start()
    return display


def test_providers_document_has_the_api_form(oidc_server):
    body = requests.get(f"{oidc_server.api}/credentials/oidc", timeout=10).json()
    assert body == {"providers": [oidc_server.issuer.provider_entry()]}
    if OPENAPI.exists():
        yaml = pytest.importorskip("yaml")
        jsonschema = pytest.importorskip("jsonschema")
        operation = yaml.safe_load(OPENAPI.read_text())["paths"]["/credentials/oidc"]["get"]
        jsonschema.validate(body, operation["responses"]["200"]["content"]["application/json"]["schema"])


def test_capabilities_list_the_oidc_endpoint(oidc_server):
    endpoints = requests.get(f"{oidc_server.api}/", timeout=10).json()["endpoints"]
    assert {"path": "/credentials/oidc", "methods": ["GET"]} in endpoints


def test_without_providers_there_is_no_oidc_endpoint(client):
    endpoints = client.get("/openeo/1.2/").json["endpoints"]
    assert all(e["path"] != "/credentials/oidc" for e in endpoints)
    assert client.get("/openeo/1.2/credentials/oidc").status_code == 404


def test_client_credentials_login_works_with_jobs_and_names_the_user(oidc_server):
    connection = oidc_server.robot("robot-a")
    me = connection.describe_account()
    assert me["user_id"] == oidc_user_id(oidc_server.issuer.url, "robot-a")
    assert me["name"] == "robot-a" and "admin" in me["roles"]
    job = connection.datacube_from_process("add", x=1, y=2).create_job(title="robot job", out_format="JSON")
    assert job.job_id in [j["id"] for j in connection.list_jobs()]


def test_two_oidc_users_do_not_see_each_others_jobs(oidc_server):
    job = oidc_server.robot("robot-a").datacube_from_process("add", x=3, y=4).create_job(title="a's job", out_format="JSON")
    other = oidc_server.robot("robot-b")
    assert job.job_id not in [j["id"] for j in other.list_jobs()]
    with pytest.raises(openeo.rest.OpenEoApiError) as caught:
        other.job(job.job_id).describe()
    assert caught.value.http_status_code == 404


def test_device_flow_with_pkce_then_refresh_token(oidc_server, own_refresh_token_store):
    issuer = oidc_server.issuer
    connection = openeo.connect(oidc_server.root).authenticate_oidc_device(
        provider_id="local", store_refresh_token=True, max_poll_time=60,
        display=approving_display(issuer, "dora"))
    me = connection.describe_account()
    assert me["user_id"] == oidc_user_id(issuer.url, "dora") and me["name"] == "User dora"
    # a new session without a person: the stored refresh token gives a fresh access token
    before = issuer.requests_made()["token"]
    again = openeo.connect(oidc_server.root).authenticate_oidc_refresh_token(
        client_id=PUBLIC_CLIENT, provider_id="local")
    assert issuer.requests_made()["token"] == before + 1
    assert again.describe_account()["user_id"] == me["user_id"]


def test_authorization_code_with_pkce(oidc_server, own_refresh_token_store):
    issuer = oidc_server.issuer
    connection = openeo.connect(oidc_server.root).authenticate_oidc_authorization_code(
        client_id=PUBLIC_CLIENT, provider_id="local", timeout=30,
        webbrowser_open=lambda url: issuer.approve(url, "erin"))
    assert connection.describe_account()["user_id"] == oidc_user_id(issuer.url, "erin")


def test_basic_login_still_works_next_to_oidc(oidc_server):
    token = requests.get(f"{oidc_server.api}/credentials/basic", auth=("demo", "demo"), timeout=10).json()
    me = requests.get(f"{oidc_server.api}/me", headers={"Authorization": f"Bearer basic//{token['access_token']}"},
                      timeout=10).json()
    assert me["user_id"] == "demo"


def _assert_refused(response: requests.Response, fragment: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "TokenInvalid" and fragment in response.json()["message"]


def test_forged_signature_is_refused(oidc_server):
    genuine = oidc_server.issuer.client_credentials_token("robot-b")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "sub": "robot-a"}, forger, "RS256",
                        headers={"kid": jwt.get_unverified_header(genuine)["kid"]})
    _assert_refused(oidc_server.get("/jobs", forged), "forged or altered")


def test_expired_token_is_refused(oidc_server):
    issuer = oidc_server.issuer
    expired = issuer.sign({"sub": "robot-a", "iss": issuer.url, "exp": int(time.time()) - 300})
    _assert_refused(oidc_server.get("/jobs", expired), "expired")


def test_token_of_another_issuer_is_refused(oidc_server):
    issuer = oidc_server.issuer
    token = issuer.sign({"sub": "robot-a", "iss": "https://elsewhere.example", "exp": int(time.time()) + 300})
    _assert_refused(oidc_server.get("/jobs", token), "issued by 'https://elsewhere.example'")


def test_unknown_provider_is_refused(oidc_server):
    token = oidc_server.issuer.client_credentials_token("robot-a")
    _assert_refused(oidc_server.get("/jobs", token, provider="egi"), "does not know")


def test_missing_token_says_how_to_log_in(oidc_server):
    response = requests.get(f"{oidc_server.api}/jobs", timeout=10)
    assert response.status_code == 401 and response.json()["code"] == "AuthenticationRequired"
    assert "/credentials/oidc" in response.json()["message"]


def test_provider_outage_gives_a_quick_503_without_a_storm(oidc_server):
    issuer = oidc_server.issuer
    opaque = issuer.device_login("frank")["access_token"]  # never seen by the server: it must ask userinfo
    before = issuer.requests_made()["userinfo"]
    issuer.outage(True)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: oidc_server.get("/me", opaque), range(24)))
        elapsed = time.monotonic() - started
        asked = issuer.requests_made()["userinfo"] - before
    finally:
        issuer.outage(False)
    assert {a.status_code for a in answers} == {503}
    assert {a.json()["code"] for a in answers} == {"ServiceUnavailable"}
    assert "unavailable" in answers[0].json()["message"] and opaque not in answers[0].text
    assert elapsed < 5
    assert asked <= 2  # one per gunicorn worker, then each waits out its back-off
    time.sleep(2.1)
    assert oidc_server.get("/me", opaque).json()["name"] == "User frank"


def test_log_names_users_and_never_tokens(oidc_server):
    token = oidc_server.issuer.client_credentials_token("robot-b")
    assert oidc_server.get("/me", token).status_code == 200
    time.sleep(0.2)
    log = oidc_server.log_path.read_text()
    assert f"user={oidc_user_id(oidc_server.issuer.url, 'robot-b')}" in log
    assert token not in log and token.split(".")[2] not in log
