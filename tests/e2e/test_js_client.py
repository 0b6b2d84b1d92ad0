"""The openEO JavaScript client — the library of the openEO web editor — against the live server.

Needs Node.js and npm (the package comes from the npm registry, installed once into tests/js);
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
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=JS,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"npm could not install @openeo/js-client: {done.stderr[-300:]}")
    return JS / "client_check.js"


def test_the_web_editors_client_library_works_unchanged(js_client, live_server):
    done = subprocess.run(["node", str(js_client), live_server.root, "demo", "demo"], capture_output=True, text=True,
                          timeout=300)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in seen, seen
    assert seen["api"] == "1.2.0"
    assert all(seen["features"].values()), seen["features"]
    assert "DEMO_SENTINEL2_L2A" in seen["collections"]
    assert seen["user"] == "demo"
    assert seen["processing_parameters"] == ["aggregate_spatial_pixels"]  # the editor's job/sync dialogs list it
    assert seen["result"]["type"].startswith("image/tiff") and seen["result"]["bytes"] > 1000
    assert seen["validation_errors"] == 0
    assert seen["job_status"] == "created"
