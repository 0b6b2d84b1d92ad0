"""load_stac over real HTTP: a static STAC catalog and its COGs served by a local file server."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from flask import Flask, send_from_directory
from werkzeug.serving import make_server

from processes.core.env import ProcessEnv
from processes.core.errors import OpenEOError
from processes.data.load import load_collection, load_stac
from processes.data.stac_sources import CollectionCatalog, open_static

BOX = {"west": 601000, "south": 5037000, "east": 601500, "north": 5037500, "crs": 32632}
DATES = ["2023-05-01", "2023-06-01"]


@pytest.fixture(scope="module")
def stac_server(demo_data: Path):
    """Serves the demo folder over HTTP with Range support (GDAL reads COGs by ranges)."""
    root = demo_data / "demo"
    app = Flask("stac-files")

    @app.get("/<path:name>")
    def files(name: str):
        return send_from_directory(root, name, conditional=True)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def env(demo_data: Path) -> ProcessEnv:
    return ProcessEnv(collections=CollectionCatalog(open_static(demo_data / "demo" / "catalog.json")))


def test_load_stac_of_a_static_collection_equals_load_collection(stac_server, env):
    cube = load_stac(f"{stac_server}/DEMO_SENTINEL2_L2A/collection.json", BOX, DATES, ["B04", "B08"], env=env)
    expected = load_collection("DEMO_SENTINEL2_L2A", BOX, DATES, ["B04", "B08"], env=env)
    assert cube.dims == expected.dims
    np.testing.assert_array_equal(cube.values, expected.values)


def test_load_stac_of_a_single_item(stac_server, env):
    url = f"{stac_server}/DEMO_SENTINEL2_L2A/S2_DEMO_T1_20230505/S2_DEMO_T1_20230505.json"
    cube = load_stac(url, BOX, None, ["B08"], env=env)
    assert cube.sizes["t"] == 1 and str(cube.t.values[0])[:10] == "2023-05-05"
    expected = load_collection("DEMO_SENTINEL2_L2A", BOX, ["2023-05-05", "2023-05-06"], ["B08"], env=env)
    np.testing.assert_array_equal(cube.values, expected.values)


def test_load_stac_refuses_local_paths(env, demo_data):
    with pytest.raises(OpenEOError, match="http"):
        load_stac(str(demo_data / "demo" / "catalog.json"), env=env)


def test_load_stac_of_a_missing_document(stac_server, env):
    with pytest.raises(OpenEOError, match="cannot read"):
        load_stac(f"{stac_server}/nothing.json", env=env)
