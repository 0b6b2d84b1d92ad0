"""The openEO JavaScript client — the library of the openEO web editor — against the live server:
the editor's general calls (``client_check.js``) and those of its "Web Services" tab (``services_check.js``).

Needs Node.js and npm (the package comes from the npm registry, installed once into tests/js by its package-lock.json);
skipped with the reason where they are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "js"


@pytest.fixture(scope="module")
def js_client() -> Path:
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("needs node and npm for the openEO JavaScript client")
    if not (JS / "node_modules" / "@openeo" / "js-client").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=JS,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"npm could not install @openeo/js-client: {done.stderr[-300:]}")
    return JS / "client_check.js"


# at the root, the client discovers the newest version /.well-known/openeo lists; a 1.2 URL stays 1.2
@pytest.mark.parametrize(("path", "api_version"), [("", "1.3.0"), ("/openeo/1.2", "1.2.0")])
def test_the_web_editors_client_library_works_unchanged(js_client, live_server, path, api_version):
    done = subprocess.run(["node", str(js_client), live_server.root + path, "demo", "demo"], capture_output=True,
                          text=True, timeout=300)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in seen, seen
    assert seen["api"] == api_version
    assert all(seen["features"].values()), seen["features"]
    assert "DEMO_SENTINEL2_L2A" in seen["collections"]
    assert seen["user"] == "demo"
    assert seen["processing_parameters"] == ["aggregate_spatial_pixels"]  # the editor's job/sync dialogs list it
    assert seen["result"]["type"].startswith("image/tiff") and seen["result"]["bytes"] > 1000
    assert seen["validation_errors"] == 0
    assert seen["job_status"] == "created"


def services_check(js_client: Path, live_server, service_type: str) -> dict:
    """What the web editor's "Web Services" tab sees doing its round of calls on one service type."""
    done = subprocess.run(["node", str(js_client.parent / "services_check.js"), live_server.root, "demo", "demo",
                           service_type], capture_output=True, text=True, timeout=300)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in seen, (seen, done.stderr[-2000:])
    assert all(seen["features"].values()), seen["features"]
    return seen


def assert_the_services_round_trip(seen: dict, service_type: str) -> None:
    created = seen["created"]
    assert created["type"] == service_type and created["enabled"] is True
    assert created["title"] == "NDVI from the web editor"
    assert created["configuration"]["colormap"] == "RdYlGn" and created["configuration"]["value_range"] == [-1, 1]
    assert seen["listed"] is True
    assert seen["described"] == {"title": "NDVI from the web editor", "description": "made by services_check.js",
                                 "type": service_type, "has_process_graph": True}
    assert seen["tile"]["status"] == 200 and seen["tile"]["type"] == "image/png" and seen["tile"]["bytes"] > 1000
    assert seen["updated"] == {"title": "NDVI, renamed", "enabled": False}
    assert seen["tile_while_disabled"]["status"] == 404, "disabling revokes the public URL"
    assert seen["tile_enabled_again"] == seen["tile"], "enabling it again brings the same tile back"
    assert seen["logs"]["is_array"] is True
    assert seen["listed_after_delete"] is False
    assert seen["tile_after_delete"]["status"] == 404
    assert seen["get_after_delete"] == "ServiceNotFound"


def test_the_web_editors_services_tab_runs_an_xyz_service(js_client, live_server):
    seen = services_check(js_client, live_server, "XYZ")
    assert "XYZ" in seen["service_types"]
    assert seen["created"]["url"].endswith("/tiles/{z}/{x}/{y}.png")
    assert_the_services_round_trip(seen, "XYZ")
    assert seen["tile_after_delete"]["type"] == "application/json"  # an openEO error document


def test_the_web_editors_services_tab_runs_a_wmts_service(js_client, live_server):
    seen = services_check(js_client, live_server, "WMTS")
    if "WMTS" not in seen["service_types"]:
        pytest.skip(f"the back-end offers no WMTS services (GET /service_types lists {seen['service_types']})")
    assert seen["created"]["url"].endswith("/WMTSCapabilities.xml")
    assert seen["created"]["attributes"]["layers"] == [seen["created"]["id"]]  # the editor lists these layers
    capabilities = seen["capabilities"]  # as the editor asks: the URL plus service=wmts&request=GetCapabilities
    assert capabilities["status"] == 200 and capabilities["type"].startswith("application/xml")
    assert capabilities["names_layer"] is True
    assert_the_services_round_trip(seen, "WMTS")
    assert seen["tile_after_delete"]["type"].startswith("application/xml")  # an OGC exception report
