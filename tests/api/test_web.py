"""The web pages' routes: the map viewer at ``/viewer``, its own files under ``/web/js`` and
``/web/css``, and the libraries' dist files under ``/web/vendor``, nothing else of backend/web."""

from __future__ import annotations

import shutil

import pytest

from backend.api import web
from backend.api.web import WEB_DIR, libraries_installed


@pytest.fixture
def installed() -> None:
    if not libraries_installed():
        pytest.skip("the map viewer's libraries are not installed (needs npm; `make install` runs `npm ci` in "
                    "backend/web)")


def test_the_viewer_page_loads_its_modules_and_styles(client, installed):
    response = client.get("/viewer?tiles=x")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<script type="module" src="web/js/viewer.js">' in page
    for path in ("/web/js/viewer.js", "/web/js/query.js", "/web/js/map.js", "/web/js/status.js",
                 "/web/vendor/leaflet/leaflet-src.esm.js"):
        assert client.get(path).mimetype == "text/javascript", path  # browsers run modules of this type only
    assert client.get("/web/css/viewer.css").mimetype == "text/css"
    assert client.get("/web/vendor/leaflet/leaflet.css").mimetype == "text/css"
    assert client.get("/web/vendor/leaflet/images/layers.png").mimetype == "image/png"


def test_the_viewer_with_a_trailing_slash_is_sent_to_its_address_with_the_query(client, installed):
    response = client.get("/viewer/?tiles=a%7Bz%7D&bounds=1,2,3,4")
    assert response.status_code == 308
    assert response.headers["Location"] == "/viewer?tiles=a%7Bz%7D&bounds=1,2,3,4"


def test_without_its_libraries_the_viewer_says_how_to_install_them(client, monkeypatch, tmp_path):
    bare = tmp_path / "web"
    shutil.copytree(WEB_DIR, bare, ignore=shutil.ignore_patterns("node_modules"))
    monkeypatch.setattr(web, "WEB_DIR", bare)  # a real copy of backend/web, as a fresh clone has it
    response = client.get("/viewer")
    assert response.status_code == 503
    assert "make install" in response.get_data(as_text=True) and "npm ci" in response.get_data(as_text=True)
    missing = client.get("/web/vendor/leaflet/leaflet.css")
    assert missing.status_code == 404 and "make install" in missing.json["message"]


@pytest.mark.parametrize("path", [
    "/web/vendor/leaflet/../package.json",  # the package, outside its dist folder
    "/web/vendor/leaflet/%2e%2e/package.json",
    "/web/vendor/leaflet/..%2f..%2f..%2fpackage-lock.json",
    "/web/vendor/leaflet/%2fetc%2fpasswd",
    "/web/js/../viewer.html",
    "/web/js/..%2f..%2fapi%2fweb.py",
    "/web/css/%2e%2e/package.json",
    "/web/node_modules/leaflet/package.json",
    "/web/package.json",
])
def test_nothing_outside_the_page_files_and_the_dist_folders_is_served(client, installed, path):
    response = client.get(path, follow_redirects=True)  # werkzeug first merges doubled slashes
    assert response.status_code == 404, path
    assert response.json["code"] == "NotFound"


def test_only_the_listed_libraries_are_served(client, installed):
    response = client.get("/web/vendor/axios/dist/axios.js")
    assert response.status_code == 404
    assert response.json["message"] == "'axios' is not a library of the web pages; they use leaflet."


def test_the_pages_stay_out_of_the_openeo_api(client):
    endpoints = {e["path"] for e in client.get("/openeo/1.2/").json["endpoints"]}
    assert not any(path.startswith(("/viewer", "/web")) for path in endpoints)
    assert client.get("/.well-known/openeo").json["versions"][0]["url"].endswith("/openeo/1.2/")
