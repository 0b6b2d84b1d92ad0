"""Processing parameters over real HTTP: listing, request values, job values, UDP defaults, errors.

The parameter used is ``aggregate_spatial_pixels``: a parcel a quarter of a pixel large, holding no
pixel centre, gets no value with ``centre`` (openEO's rule) and its pixel's value with ``coverage``.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pyproj
import pytest
import requests
import shapely
from shapely.geometry import mapping

LC = "DEMO_SENTINEL2_L2A"
# a 10 m pixel of the demo tile, and a 5 m × 5 m parcel in its north-west quarter (no pixel centre)
PIXEL_WEST, PIXEL_NORTH = 602000.0, 5037000.0
TINY_UTM = shapely.box(PIXEL_WEST + 0.5, PIXEL_NORTH - 5.5, PIXEL_WEST + 4.5, PIXEL_NORTH - 1.5)


def tiny_parcel() -> dict:
    to_wgs84 = pyproj.Transformer.from_crs(32632, 4326, always_xy=True)
    geometry = shapely.transform(TINY_UTM, lambda c: np.column_stack(to_wgs84.transform(c[:, 0], c[:, 1])))
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"parcel_id": 1}, "geometry": mapping(geometry)}]}


def nodes() -> dict:
    return {
        "load": {"process_id": "load_collection", "arguments": {
            "id": LC, "bands": ["B04"], "temporal_extent": ["2023-05-01", "2023-06-01"],
            "spatial_extent": {"west": PIXEL_WEST - 100, "south": PIXEL_NORTH - 100, "east": PIXEL_WEST + 100,
                               "north": PIXEL_NORTH + 100, "crs": 32632}}},
        "agg": {"process_id": "aggregate_spatial", "arguments": {
            "data": {"from_node": "load"}, "geometries": tiny_parcel(),
            "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {
                "data": {"from_parameter": "data"}}, "result": True}}}}},
        "save": {"process_id": "save_result", "arguments": {"data": {"from_node": "agg"}, "format": "CSV"},
                 "result": True},
    }


def values_of(csv: bytes) -> pd.Series:
    table = pd.read_csv(io.BytesIO(csv))
    return table[[c for c in table.columns if c not in ("parcel_id", "date", "geometry")][-1]]


def result(server, body: dict) -> requests.Response:
    return requests.post(f"{server.api}/result", json=body, headers=server.headers(), timeout=120)


def test_processing_parameters_are_listed_and_advertised(live_server):
    listing = requests.get(f"{live_server.api}/processing_parameters", timeout=10).json()
    for mode in ("create_synchronous_parameters", "create_job_parameters"):
        (parameter,) = [p for p in listing[mode] if p["name"] == "aggregate_spatial_pixels"]
        assert parameter["default"] == "centre" and parameter["optional"] is True
        assert parameter["schema"]["enum"] == ["centre", "coverage"]
    assert listing["create_service_parameters"] == []
    caps = requests.get(f"{live_server.api}/", timeout=10).json()
    assert "https://api.openeo.org/extensions/processing-parameters/0.1.0" in caps["conformsTo"]
    assert {"path": "/processing_parameters", "methods": ["GET"]} in caps["endpoints"]


def test_a_request_s_value_applies_and_the_default_is_openeo_s_rule(live_server):
    centre = result(live_server, {"process": {"process_graph": nodes()}})
    coverage = result(live_server, {"process": {"process_graph": nodes()}, "aggregate_spatial_pixels": "coverage"})
    assert centre.status_code == 200 and coverage.status_code == 200, coverage.text
    assert values_of(centre.content).isna().all()
    assert values_of(coverage.content).notna().all()


def test_job_options_carry_it_too(live_server):
    body = {"process": {"process_graph": nodes()}, "job_options": {"aggregate_spatial_pixels": "coverage"}}
    assert values_of(result(live_server, body).content).notna().all()


@pytest.mark.parametrize("value", ["area", 1, None])
def test_an_invalid_value_is_a_bad_request_and_a_validation_error(live_server, value):
    body = {"process": {"process_graph": nodes()}, "aggregate_spatial_pixels": value}
    response = result(live_server, body)
    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest"
    assert "aggregate_spatial_pixels" in response.json()["message"]
    errors = requests.post(f"{live_server.api}/validation", json=body, headers=live_server.headers(),
                           timeout=60).json()["errors"]
    assert errors and "aggregate_spatial_pixels" in errors[0]["message"]


def test_a_udp_s_default_applies_unless_the_request_sets_one(live_server):
    udp = {"process_graph": nodes(), "default_synchronous_parameters": {"aggregate_spatial_pixels": "coverage"}}
    url = f"{live_server.api}/process_graphs/tiny_profile"
    assert requests.put(url, json=udp, headers=live_server.headers(), timeout=30).status_code == 200
    call = {"process": {"process_graph": {"p": {"process_id": "tiny_profile", "namespace": "user", "arguments": {},
                                                "result": True}}}}
    assert values_of(result(live_server, call).content).notna().all()
    assert values_of(result(live_server, {**call, "aggregate_spatial_pixels": "centre"}).content).isna().all()
    requests.delete(url, headers=live_server.headers(), timeout=30)


def test_a_batch_job_keeps_and_uses_its_parameters(live_server):
    headers = live_server.headers()
    created = requests.post(f"{live_server.api}/jobs", json={"process": {"process_graph": nodes()},
                                                            "aggregate_spatial_pixels": "coverage"},
                            headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    job = f"{live_server.api}/jobs/{created.headers['OpenEO-Identifier']}"
    assert requests.get(job, headers=headers, timeout=30).json()["aggregate_spatial_pixels"] == "coverage"
    requests.post(f"{job}/results", headers=headers, timeout=30).raise_for_status()
    deadline = time.monotonic() + 300
    while (status := requests.get(job, headers=headers, timeout=30).json()["status"]) not in ("finished", "error"):
        assert time.monotonic() < deadline, "the job did not finish in 5 minutes"
        time.sleep(0.5)
    assert status == "finished"
    assets = requests.get(f"{job}/results", headers=headers, timeout=30).json()["assets"]
    (asset,) = assets.values()
    assert values_of(requests.get(asset["href"], timeout=30).content).notna().all()
    changed = requests.patch(job, json={"aggregate_spatial_pixels": "centre"}, headers=headers, timeout=30)
    assert changed.status_code == 204
    assert requests.get(job, headers=headers, timeout=30).json()["aggregate_spatial_pixels"] == "centre"
