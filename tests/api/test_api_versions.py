"""openEO API 1.3 next to 1.2: both listed at ``/.well-known/openeo``, each under its own prefix with links
back into it, 1.3's additions under 1.3 only, and 1.2 answering as before."""

from __future__ import annotations

import base64

import pytest
import requests

from backend.app import create_app
from backend.services import EXTENSION_KEY
from backend.settings import Settings
from tests.conftest import TEST_SECRET, USERS

V12, V13 = "/openeo/1.2", "/openeo/1.3"
ADD = {"process": {"process_graph": {"add": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}


def _headers(client, prefix: str) -> dict[str, str]:
    basic = base64.b64encode(b"demo:demo").decode()
    token = client.get(f"{prefix}/credentials/basic", headers={"Authorization": f"Basic {basic}"}).json["access_token"]
    return {"Authorization": f"Bearer basic//{token}"}


def test_well_known_lists_both_versions_each_under_its_prefix(client):
    versions = client.get("/.well-known/openeo").json["versions"]
    assert [(v["api_version"], v["url"]) for v in versions] == [
        ("1.2.0", f"http://localhost{V12}/"), ("1.3.0", f"http://localhost{V13}/")]
    assert all(v["production"] is False for v in versions)


@pytest.mark.parametrize(("prefix", "number"), [(V12, "1.2.0"), (V13, "1.3.0")])
def test_capabilities_name_their_version_and_link_into_their_prefix(client, prefix, number):
    caps = client.get(f"{prefix}/").json
    assert caps["api_version"] == number
    assert caps["conformsTo"] == client.get(f"{prefix}/conformance").json["conformsTo"]
    assert f"https://api.openeo.org/{number}" in caps["conformsTo"]
    for link in caps["links"]:
        if link["rel"] in ("self", "data", "conformance"):
            assert link["href"].startswith(f"http://localhost{prefix}/"), link


def test_both_versions_offer_the_same_endpoints(client):
    assert client.get(f"{V12}/").json["endpoints"] == client.get(f"{V13}/").json["endpoints"]


def test_conformance_claims_only_the_openeo_api_and_the_extensions_implemented(client):
    assert client.get(f"{V12}/conformance").json["conformsTo"] == [
        "https://api.openeo.org/1.2.0", "https://api.openeo.org/extensions/processing-parameters/0.1.0"]


def test_only_1_3_links_the_web_editor_connected_to_this_back_end(client):
    def editor(prefix):
        return [link["href"] for link in client.get(f"{prefix}/").json["links"] if link["rel"] == "web-editor"]

    assert editor(V12) == []
    assert editor(V13) == ["https://editor.openeo.org/?server=http%3A%2F%2Flocalhost%2Fopeneo%2F1.3&discover=1"]


def test_result_has_an_openeo_identifier_under_1_3_only(client):
    with_id = client.post(f"{V13}/result", json=ADD, headers=_headers(client, V13))
    assert with_id.json == 3
    assert with_id.headers["OpenEO-Identifier"] == with_id.headers["X-Request-Id"]
    without = client.post(f"{V12}/result", json=ADD, headers=_headers(client, V12))
    assert without.json == 3 and "OpenEO-Identifier" not in without.headers


@pytest.mark.parametrize("prefix", [V12, V13])
def test_created_jobs_and_their_log_pages_link_into_the_request_s_prefix(app, client, prefix):
    headers = _headers(client, prefix)
    created = client.post(f"{prefix}/jobs", json=ADD, headers=headers)
    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"http://localhost{prefix}/jobs/")
    job_id = created.headers["OpenEO-Identifier"]
    for other in (V12, V13):  # one job store behind both versions
        assert client.get(f"{other}/jobs/{job_id}", headers=headers).status_code == 200
    store = app.extensions[EXTENSION_KEY].jobs
    store.log(job_id, "info", "first")
    store.log(job_id, "info", "second")
    logs = client.get(f"{prefix}/jobs/{job_id}/logs?limit=1", headers=headers).json
    (link,) = logs["links"]
    assert link["rel"] == "next" and link["href"].startswith(f"http://localhost{prefix}/jobs/{job_id}/logs?")


def test_collections_link_into_the_prefix_and_name_their_providers(client):
    for prefix in (V12, V13):
        for collection in client.get(f"{prefix}/collections").json["collections"]:
            assert collection["deprecated"] is False
            hosts = [p for p in collection["providers"] if "host" in p["roles"]]
            assert hosts == [{"name": "Terracube", "roles": ["host"], "url": f"http://localhost{prefix}/",
                              "description": "The openEO back-end that serves this collection."}]
            self_link = next(link["href"] for link in collection["links"] if link["rel"] == "self")
            assert self_link.startswith(f"http://localhost{prefix}/collections/")


def test_processes_keep_the_experimental_flag_of_their_spec(client):
    processes = {p["id"]: p for p in client.get(f"{V13}/processes").json["processes"]}
    assert processes["load_stac"]["experimental"] is True
    assert all(isinstance(p.get("experimental", False), bool) and isinstance(p.get("deprecated", False), bool)
               for p in processes.values())


def test_oidc_authorization_parameters_are_published_to_1_3_clients_only(tmp_path):
    provider = {"id": "egi", "issuer": "https://aai.example/realms/egi", "title": "EGI", "scopes": ["openid"],
                "authorization_parameters": {"prompt": "consent"}}
    app = create_app(Settings(data_dir=tmp_path, users=USERS, secret=TEST_SECRET, demo=False,
                              oidc_providers=(provider,)))
    client = app.test_client()
    assert client.get(f"{V13}/credentials/oidc").json["providers"][0]["authorization_parameters"] == {
        "prompt": "consent"}
    assert "authorization_parameters" not in client.get(f"{V12}/credentials/oidc").json["providers"][0]


def test_authorization_parameters_must_be_strings(tmp_path):
    from backend.settings import SettingsError

    provider = {"id": "egi", "issuer": "https://aai.example", "title": "EGI", "authorization_parameters": ["x"]}
    with pytest.raises(SettingsError, match="authorization_parameters must be an object of strings"):
        create_app(Settings(data_dir=tmp_path, users=USERS, secret=TEST_SECRET, demo=False, oidc_providers=(provider,)))


# --- the real Python client ---------------------------------------------------------------------------------
def test_python_client_connects_to_1_3_and_runs_result(live_server, tmp_path):
    openeo = pytest.importorskip("openeo")
    connection = openeo.connect(f"{live_server.root}{V13}").authenticate_basic("demo", "demo")
    assert connection.capabilities().api_version() == "1.3.0"
    assert connection.datacube_from_process("add", x=1, y=2).execute() == 3
    cube = connection.load_collection("DEMO_SENTINEL2_L2A", temporal_extent=["2023-05-01", "2023-06-01"],
                                      spatial_extent={"west": 601000, "south": 5036000, "east": 601500,
                                                      "north": 5036500, "crs": 32632}, bands=["B04"])
    cube.reduce_dimension(dimension="t", reducer="max").download(tmp_path / "max.tif", format="GTiff")
    assert (tmp_path / "max.tif").stat().st_size > 0


def test_python_client_discovers_1_3_and_a_1_2_url_stays_1_2(live_server):
    openeo = pytest.importorskip("openeo")
    assert openeo.connect(live_server.root).capabilities().api_version() == "1.3.0"  # the newest listed
    pinned = openeo.connect(f"{live_server.root}{V12}").authenticate_basic("demo", "demo")
    assert pinned.capabilities().api_version() == "1.2.0"
    assert pinned.datacube_from_process("add", x=1, y=2).execute() == 3
    assert requests.get(f"{live_server.root}{V12}/health", timeout=10).status_code in (200, 503)
    assert requests.get(f"{live_server.root}{V13}/health", timeout=10).status_code in (200, 503)
