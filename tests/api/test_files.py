"""The user workspace over HTTP: upload, list, download, delete — private per user, paths confined."""

from __future__ import annotations

import requests


def _url(server, path: str) -> str:
    return f"{server.api}/files/{path}"


def test_upload_list_download_delete(live_server):
    headers = live_server.headers("demo")
    body = b'{"type": "FeatureCollection", "features": []}'
    put = requests.put(_url(live_server, "fields/empty.geojson"), data=body, headers=headers, timeout=10)
    assert put.status_code == 200
    assert put.json()["path"] == "fields/empty.geojson" and put.json()["size"] == len(body)
    listing = requests.get(f"{live_server.api}/files", headers=headers, timeout=10).json()
    assert {"path": "fields/empty.geojson", "size": len(body)}.items() <= next(
        f for f in listing["files"] if f["path"] == "fields/empty.geojson").items()
    got = requests.get(_url(live_server, "fields/empty.geojson"), headers=headers, timeout=10)
    assert got.status_code == 200 and got.content == body
    assert requests.delete(_url(live_server, "fields/empty.geojson"), headers=headers, timeout=10).status_code == 204
    missing = requests.get(_url(live_server, "fields/empty.geojson"), headers=headers, timeout=10)
    assert missing.status_code == 404 and missing.json()["code"] == "FileNotFound"
    listing = requests.get(f"{live_server.api}/files", headers=headers, timeout=10).json()
    assert all(not f["path"].startswith("fields/") for f in listing["files"])  # the empty folder went too


def test_files_are_private(live_server):
    requests.put(_url(live_server, "secret.txt"), data=b"mine", headers=live_server.headers("demo"), timeout=10)
    other = requests.get(_url(live_server, "secret.txt"), headers=live_server.headers("alice"), timeout=10)
    assert other.status_code == 404 and other.json()["code"] == "FileNotFound"
    listing = requests.get(f"{live_server.api}/files", headers=live_server.headers("alice"), timeout=10).json()
    assert "secret.txt" not in [f["path"] for f in listing["files"]]


def test_paths_cannot_leave_the_workspace(live_server):
    headers = live_server.headers("demo")
    for path in ("..%2F..%2Fsecret", "a/%2E%2E/%2E%2E/%2E%2E/etc/passwd", ".hidden"):
        response = requests.put(_url(live_server, path), data=b"x", headers=headers, timeout=10)
        assert response.status_code in (400, 404), path
        assert response.json()["code"] in ("FilePathInvalid", "NotFound"), path


def test_files_need_authentication(live_server):
    response = requests.get(f"{live_server.api}/files", timeout=10)
    assert response.status_code == 401 and response.json()["code"] == "AuthenticationRequired"
