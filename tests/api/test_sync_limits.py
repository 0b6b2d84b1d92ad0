"""Synchronous processing limits answer with clear openEO errors that point to batch jobs."""

from __future__ import annotations

import pytest

from backend.app import create_app
from backend.settings import Settings
from tests.conftest import TEST_SECRET, USERS

GRAPH = {"process": {"process_graph": {
    "load": {"process_id": "load_collection", "arguments": {
        "id": "DEMO_SENTINEL2_L2A", "spatial_extent": None, "temporal_extent": ["2023-05-01", "2023-06-01"],
        "bands": ["B04"]}},
    "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "load"}, "format": "GTiff"},
             "result": True},
}}}


def client_with(demo_data, tmp_path, **settings):
    app = create_app(Settings(data_dir=tmp_path, users=USERS, secret=TEST_SECRET, demo=False,
                              stac=(str(demo_data / "demo" / "catalog.json"),), **settings))
    client = app.test_client()
    token = client.get("/openeo/1.2/credentials/basic", auth=("demo", "demo")).json["access_token"]
    return client, {"Authorization": f"Bearer basic//{token}"}


def test_too_many_values_for_sync_processing(demo_data, tmp_path):
    client, headers = client_with(demo_data, tmp_path, sync_max_pixels=1000)
    response = client.post("/openeo/1.2/result", json=GRAPH, headers=headers)
    assert response.status_code == 400
    assert response.json["code"] == "ProcessGraphComplexity" and "batch job" in response.json["message"]


@pytest.mark.parametrize("fmt", ["GTiff", "netCDF"])
def test_a_computation_past_the_time_limit_stops_with_request_timeout(demo_data, tmp_path, fmt):
    client, headers = client_with(demo_data, tmp_path, sync_timeout_seconds=0)
    graph = {"process": {"process_graph": {**GRAPH["process"]["process_graph"]}}}
    graph["process"]["process_graph"]["save"] = {**graph["process"]["process_graph"]["save"],
                                                 "arguments": {"data": {"from_node": "load"}, "format": fmt}}
    response = client.post("/openeo/1.2/result", json=graph, headers=headers)
    assert response.status_code == 408
    assert response.json["code"] == "RequestTimeout" and "batch job" in response.json["message"]
    assert not list((tmp_path / "tmp").iterdir())  # no leftover result files
