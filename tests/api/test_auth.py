"""Authentication through the Flask app: tokens are signed, expire and name their user."""

from __future__ import annotations

import base64
import time

import jwt

from tests.conftest import TEST_SECRET

API = "/openeo/1.2"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_credentials_give_a_bearer_token(client):
    response = client.get(f"{API}/credentials/basic", headers=basic("alice", "alice-secret"))
    assert response.status_code == 200
    token = response.json["access_token"]
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["exp"] > time.time()


def test_token_gives_access_to_me(client, auth_headers):
    assert client.get(f"{API}/me", headers=auth_headers).json["user_id"] == "demo"


def test_expired_token_is_rejected(client):
    now = int(time.time())
    token = jwt.encode({"sub": "demo", "iat": now - 100, "exp": now - 10}, TEST_SECRET, "HS256")
    response = client.get(f"{API}/me", headers={"Authorization": f"Bearer basic//{token}"})
    assert response.status_code == 403
    assert response.json["code"] == "TokenInvalid" and "expired" in response.json["message"]


def test_token_signed_with_another_secret_is_rejected(client):
    token = jwt.encode({"sub": "demo", "exp": int(time.time()) + 60}, "another-secret-that-is-at-least-32-bytes", "HS256")
    response = client.get(f"{API}/me", headers={"Authorization": f"Bearer basic//{token}"})
    assert response.json["code"] == "TokenInvalid"


def test_oidc_tokens_are_not_accepted(client):
    response = client.get(f"{API}/me", headers={"Authorization": "Bearer oidc/egi/abc"})
    assert response.status_code == 403
    assert response.json["code"] == "AuthenticationSchemeInvalid"


def test_unknown_user(client):
    response = client.get(f"{API}/credentials/basic", headers=basic("mallory", "x"))
    assert response.status_code == 403 and response.json["code"] == "CredentialsInvalid"


def test_credentials_endpoint_without_basic_auth(client):
    response = client.get(f"{API}/credentials/basic")
    assert response.status_code == 401 and response.json["code"] == "AuthenticationRequired"
