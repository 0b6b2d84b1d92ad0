"""Nobody reaches another user's resources: every route of the URL map that takes a resource id is walked
as a second user, with every method, and must answer 403 or 404.

The routes come from the app's URL map, so a new route is walked (or, if it takes an id this test does
not know, fails it) without anyone remembering to add it here.
"""

from __future__ import annotations

import base64
import re

import pytest

from backend.settings import API_PREFIX
from tests.api.test_services import ndvi_process

# Path parameters naming a resource a user owns: walked with the owner's resource as the second user.
OWNED = ("job_id", "process_graph_id", "path", "service_id")
# Path parameters of routes that own nothing, and why a second user may use them.
NOT_OWNED = {
    "collection_id": "collections and their items are public",
    "item_id": "collections and their items are public",
    "token": "a signed result link: the signature is the authority, not a login",
    "filename": "a file behind a signed result link, or a static file",
    "key": "an asset of a public collection's item (on map routes it comes with the walked service id)",
    "kind": "the web pages' static files",
    "name": "the web pages' static files, or a file of a public collection's asset",
    "package": "the web pages' static files",
}
UDP = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}},
       "parameters": []}
JOB = {"process": {"process_graph": UDP["process_graph"]}, "title": "the owner's job"}


def _headers(client, user: str, password: str) -> dict[str, str]:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    token = client.get(f"{API_PREFIX}/credentials/basic", headers={"Authorization": f"Basic {basic}"}).json
    return {"Authorization": f"Bearer basic//{token['access_token']}"}


@pytest.fixture
def owned(client, auth_headers) -> dict[str, str]:
    """One resource of each kind, owned by ``demo``: the value of each ``OWNED`` parameter."""
    job = client.post(f"{API_PREFIX}/jobs", json=JOB, headers=auth_headers)
    assert job.status_code == 201, job.json
    assert client.put(f"{API_PREFIX}/process_graphs/owners_udp", json=UDP, headers=auth_headers).status_code == 200
    assert client.put(f"{API_PREFIX}/files/owner/data.txt", data=b"the owner's file",
                      headers=auth_headers).status_code == 200
    service = client.post(f"{API_PREFIX}/services", json={"type": "XYZ", "process": ndvi_process()},
                          headers=auth_headers)
    assert service.status_code == 201, service.json
    return {"job_id": job.headers["OpenEO-Identifier"], "process_graph_id": "owners_udp",
            "path": "owner/data.txt", "service_id": service.headers["OpenEO-Identifier"]}


def _url(rule, values: dict[str, str]) -> str:
    """The rule's path with ``values`` for the owned parameters and a plain placeholder for the rest
    (a tile's key, zoom …: a second user does not have them either)."""
    def value(match: re.Match) -> str:
        name = match.group(1)
        return values.get(name, "0" if name in ("z", "x", "y", "col", "matrix") else "not-the-key")

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", value, rule.rule)


def test_every_route_with_a_resource_id_is_refused_to_another_user(app, client, auth_headers, owned):
    alice = _headers(client, "alice", "alice-secret")
    walked, unknown, leaks, puts = [], [], [], []
    for rule in app.url_map.iter_rules():
        names = set(rule.arguments)
        if not names & set(OWNED):
            uncovered = names - set(NOT_OWNED)
            if uncovered:
                unknown.append(f"{rule.rule} ({', '.join(sorted(uncovered))})")
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method == "PUT":  # creates the second user's own resource under that name: checked below
                puts.append((rule, method))
                continue
            response = client.open(_url(rule, owned), method=method, json={}, headers=alice)
            walked.append(f"{method} {rule.rule}")
            if response.status_code not in (403, 404):
                leaks.append(f"{method} {rule.rule} answered {response.status_code}")
    for rule, method in puts:
        client.open(_url(rule, owned), method=method, json=UDP, headers=alice)
        walked.append(f"{method} {rule.rule}")
    assert not unknown, ("routes take ids this test does not know; add them to OWNED (and the fixture) or "
                         f"NOT_OWNED: {unknown}")
    assert not leaks, leaks
    # what a second user's PUT made is theirs: the owner's resources are all there, unchanged
    assert client.get(f"{API_PREFIX}/files/{owned['path']}", headers=auth_headers).data == b"the owner's file"
    assert client.get(f"{API_PREFIX}/jobs/{owned['job_id']}", headers=auth_headers).json["title"] == JOB["title"]
    assert client.get(f"{API_PREFIX}/process_graphs/owners_udp", headers=auth_headers).status_code == 200
    assert client.get(f"{API_PREFIX}/services/{owned['service_id']}", headers=auth_headers).status_code == 200
    expected = {"GET /openeo/1.2/jobs/<job_id>", "DELETE /openeo/1.2/jobs/<job_id>/results",
                "GET /openeo/1.2/jobs/<job_id>/logs", "GET /openeo/1.2/jobs/<job_id>/estimate",
                "GET /openeo/1.2/process_graphs/<process_graph_id>", "DELETE /openeo/1.2/files/<path:path>",
                "PATCH /openeo/1.2/services/<service_id>", "GET /openeo/1.2/services/<service_id>/logs"}
    assert expected <= set(walked), expected - set(walked)
