"""OpenID Connect access tokens checked by :class:`backend.auth.oidc.OidcVerifier` against a real provider
(``tests/oidc``, npm ``oidc-provider``): JWTs against the JWKS, opaque tokens at userinfo, with caching,
key rotation and a provider that is down. Tokens are real: issued or signed by the provider."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.auth.identity import RolePolicy, oidc_user_id
from backend.auth.oidc import OidcVerifier
from backend.auth.providers import parse_providers
from backend.devserver import free_port
from backend.settings import SettingsError
from processes.core.errors import ServiceUnavailable, TokenInvalid
from tests.oidc_issuer import AUDIENCE, OidcIssuer, running_issuer


@pytest.fixture(scope="module")
def issuer(tmp_path_factory) -> Iterator[OidcIssuer]:
    with running_issuer(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture(scope="module")
def other_issuer(tmp_path_factory) -> Iterator[OidcIssuer]:
    with running_issuer(tmp_path_factory.mktemp("oidc-other"), "other-provider") as running:
        yield running


def make_verifier(*entries: dict, **options) -> OidcVerifier:
    return OidcVerifier(parse_providers(entries), RolePolicy("groups", "terracube-admins"), **options)


@pytest.fixture
def verifier(issuer: OidcIssuer) -> OidcVerifier:
    return make_verifier(issuer.provider_entry())


def now() -> int:
    return int(time.time())


def test_client_credentials_jwt_names_the_client_by_issuer_and_sub(issuer, verifier):
    user = verifier.user(f"local/{issuer.client_credentials_token('robot-a')}")
    assert user.user_id == oidc_user_id(issuer.url, "robot-a")
    assert user.user_id.startswith("oidc-") and user.user_id.replace("-", "").isalnum()
    assert user.name == "robot-a"
    assert user.roles == ("eo-users", "terracube-admins", "admin") and user.is_admin


def test_two_clients_are_two_users(issuer, verifier):
    a = verifier.user(f"local/{issuer.client_credentials_token('robot-a')}")
    b = verifier.user(f"local/{issuer.client_credentials_token('robot-b')}")
    assert a.user_id != b.user_id and not b.is_admin


def test_keys_are_fetched_once_for_many_tokens(issuer, verifier):
    before = issuer.requests_made()
    for _ in range(5):
        verifier.user(f"local/{issuer.client_credentials_token('robot-b')}")
    after = issuer.requests_made()
    assert after["jwks"] - before["jwks"] == 1 and after["discovery"] - before["discovery"] == 1


def test_opaque_token_is_checked_at_userinfo_and_cached(issuer, verifier):
    tokens = issuer.device_login("alice")
    assert "." not in tokens["access_token"] and tokens.get("refresh_token")
    before = issuer.requests_made()["userinfo"]
    users = [verifier.user(f"local/{tokens['access_token']}") for _ in range(3)]
    assert issuer.requests_made()["userinfo"] - before == 1
    assert users[0] == users[2]
    assert users[0].user_id == oidc_user_id(issuer.url, "alice") and users[0].name == "User alice"


def test_unknown_opaque_token_is_refused(verifier):
    with pytest.raises(TokenInvalid, match="does not accept the access token"):
        verifier.user("local/not-a-token-the-provider-ever-issued")


def test_forged_signature_is_refused(issuer, verifier):
    genuine = issuer.client_credentials_token("robot-a")
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({**claims, "sub": "robot-b"}, forger, "RS256", headers={"kid": kid})
    with pytest.raises(TokenInvalid, match="forged or altered"):
        verifier.user(f"local/{forged}")


def test_shared_secret_algorithm_is_refused(issuer, verifier):
    token = jwt.encode({"sub": "x", "iss": issuer.url, "exp": now() + 60}, "a" * 32, "HS256")
    with pytest.raises(TokenInvalid, match="algorithm 'HS256'"):
        verifier.user(f"local/{token}")


def test_expired_token_is_refused(issuer, verifier):
    token = issuer.sign({"sub": "robot-a", "iss": issuer.url, "iat": now() - 900, "exp": now() - 300})
    with pytest.raises(TokenInvalid, match="expired"):
        verifier.user(f"local/{token}")


def test_token_naming_another_issuer_is_refused(issuer, verifier):
    token = issuer.sign({"sub": "robot-a", "iss": "https://elsewhere.example", "exp": now() + 300})
    with pytest.raises(TokenInvalid, match="issued by 'https://elsewhere.example'"):
        verifier.user(f"local/{token}")


def test_token_of_another_provider_is_refused(other_issuer, verifier):
    with pytest.raises(TokenInvalid, match="does not publish"):
        verifier.user(f"local/{other_issuer.client_credentials_token('robot-a')}")


def test_unknown_provider_id_is_refused(issuer, verifier):
    with pytest.raises(TokenInvalid, match="'nope'.*it knows: local"):
        verifier.user(f"nope/{issuer.client_credentials_token('robot-a')}")


def test_audience_is_checked_where_configured(issuer):
    token = issuer.client_credentials_token("robot-a")
    assert make_verifier(issuer.provider_entry(audience=AUDIENCE)).user(f"local/{token}").name == "robot-a"
    with pytest.raises(TokenInvalid, match="not meant for this back-end"):
        make_verifier(issuer.provider_entry(audience="another-api")).user(f"local/{token}")


def test_made_up_key_ids_do_not_make_a_storm_of_jwks_requests(issuer, verifier):
    verifier.user(f"local/{issuer.client_credentials_token('robot-a')}")
    before = issuer.requests_made()["jwks"]
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for number in range(20):
        forged = jwt.encode({"sub": "x", "iss": issuer.url, "exp": now() + 60}, forger, "RS256",
                            headers={"kid": f"made-up-{number}"})
        with pytest.raises(TokenInvalid):
            verifier.user(f"local/{forged}")
    assert issuer.requests_made()["jwks"] - before <= 1


def test_rotated_keys_are_fetched_on_an_unknown_key_id(tmp_path):
    with running_issuer(tmp_path, "rotating-provider") as issuer:
        verifier = make_verifier(issuer.provider_entry(), jwks_refresh_seconds=0.2)
        verifier.user(f"local/{issuer.client_credentials_token('robot-a')}")
        issuer.restart()  # new signing key, new kid
        time.sleep(0.3)
        rotated = issuer.client_credentials_token("robot-a")
        assert verifier.user(f"local/{rotated}").name == "robot-a"
        assert issuer.requests_made()["jwks"] == 1  # counted since the restart: one refetch


def test_provider_down_answers_unavailable_fast(tmp_path):
    dead = make_verifier({"id": "local", "issuer": f"http://127.0.0.1:{free_port()}", "title": "Gone"})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="'local'.*unavailable.*Try again in"):
        dead.user("local/some-opaque-token")
    with pytest.raises(ServiceUnavailable):
        dead.user("local/another-opaque-token")
    assert time.monotonic() - started < 2


def test_a_burst_during_an_outage_asks_the_provider_once_and_recovers(issuer):
    verifier = make_verifier(issuer.provider_entry())
    token = issuer.client_credentials_token("robot-b")
    before = issuer.requests_made()
    issuer.outage(True)
    try:
        def attempt(_: int) -> str:
            try:
                verifier.user(f"local/{token}")
            except ServiceUnavailable as exc:
                return exc.message
            return "accepted"

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(attempt, range(64)))
        after = issuer.requests_made()
        assert all("unavailable" in answer for answer in answers)
        assert after["discovery"] - before["discovery"] == 1 and after["jwks"] == before["jwks"]
    finally:
        issuer.outage(False)
    time.sleep(2.1)  # the first back-off
    assert verifier.user(f"local/{token}").name == "robot-b"


def test_cached_keys_serve_through_an_outage(issuer, verifier):
    verifier.user(f"local/{issuer.client_credentials_token('robot-a')}")
    token = issuer.client_credentials_token("robot-b")
    issuer.outage(True)
    try:
        assert verifier.user(f"local/{token}").name == "robot-b"
    finally:
        issuer.outage(False)


def test_secrets_stay_out_of_error_messages(issuer, verifier):
    token = issuer.sign({"sub": "robot-a", "iss": issuer.url, "exp": now() - 300})
    with pytest.raises(TokenInvalid) as caught:
        verifier.user(f"local/{token}")
    assert token not in caught.value.message and token.split(".")[2] not in caught.value.message


@pytest.mark.parametrize("entry, fix", [
    ({"issuer": "https://x", "title": "X"}, "needs id"),
    ({"id": "bad id!", "issuer": "https://x", "title": "X"}, "letters, digits"),
    ({"id": "x", "issuer": "https://x", "title": "X", "scopes": ["email"]}, "'openid'"),
    ({"id": "x", "issuer": "https://x", "title": "X", "default_clients": [{"id": "c", "grant_types": ["magic"]}]},
     "unknown grant types"),
    ({"id": "x", "issuer": "https://x", "title": "X", "secret": "s"}, "unknown keys"),
])
def test_wrong_provider_entries_are_refused_with_the_fix(entry, fix):
    with pytest.raises(SettingsError, match=fix):
        parse_providers([entry])


def test_roles_claim_may_be_a_space_separated_string():
    assert RolePolicy("entitlements", "x").roles({"entitlements": "a x"}) == ("a", "x", "admin")


def test_user_ids_do_not_depend_on_a_trailing_slash_of_the_issuer():
    assert oidc_user_id("https://a.example/", "s") == oidc_user_id("https://a.example", "s")
    assert oidc_user_id("https://a.example", "s") != oidc_user_id("https://b.example", "s")


def test_provider_entry_publishes_no_audience(issuer):
    (provider,) = parse_providers([issuer.provider_entry(audience="secret-ish")])
    assert "audience" not in provider.public and provider.audience == "secret-ish"



def test_providers_setting_is_read_from_json_and_survives_the_round_trip_to_a_job_process():
    from backend.settings import Settings

    entry = {"id": "egi", "issuer": "https://aai.egi.eu/auth/realms/egi", "title": "EGI", "scopes": ["openid"]}
    settings = Settings.from_env({"TERRACUBE_OIDC_PROVIDERS": json.dumps([entry]),
                                  "TERRACUBE_OIDC_ROLES_CLAIM": "eduperson_entitlement"})
    assert settings.oidc_providers == (entry,) and settings.oidc_roles_claim == "eduperson_entitlement"
    assert Settings.from_env(settings.as_environment()).oidc_providers == (entry,)
    with pytest.raises(SettingsError, match="TERRACUBE_OIDC_PROVIDERS is invalid"):
        Settings.from_env({"TERRACUBE_OIDC_PROVIDERS": '{"id": "egi"}'})
