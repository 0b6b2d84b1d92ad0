"""An access line per request (method, path, status, time, user, request id); errors carry the request id."""

from __future__ import annotations

import logging


def test_each_request_is_logged_with_its_user_and_id(client, auth_headers, caplog):
    with caplog.at_level(logging.INFO, logger="terracube.access"):
        response = client.get("/openeo/1.2/jobs", headers=auth_headers)
    rid = response.headers["X-Request-Id"]
    lines = [r.getMessage() for r in caplog.records if r.name == "terracube.access"]
    assert any(line.startswith("GET /openeo/1.2/jobs 200 ") and "user=demo" in line and f"request={rid}" in line
               for line in lines), lines


def test_an_error_document_carries_the_request_id(client, caplog):
    with caplog.at_level(logging.INFO, logger="terracube.access"):
        response = client.get("/openeo/1.2/jobs")
    assert response.status_code == 401
    assert response.json["id"] == response.headers["X-Request-Id"]
    assert any("401" in r.getMessage() and "user=-" in r.getMessage() for r in caplog.records
               if r.name == "terracube.access")


def test_the_secrets_of_signed_links_and_tile_urls_stay_out_of_the_log(client, caplog):
    token, key = "eyJzaWduZWQiOiJsaW5rIn0.signature-part", "tile-key-secret-123"
    with caplog.at_level(logging.INFO, logger="terracube.access"):
        client.get(f"/openeo/1.2/results/{token}/result.tif")
        client.get(f"/openeo/1.2/services/xyz/s-1/{key}/tiles/1/0/0.png")
    lines = [r.getMessage() for r in caplog.records if r.name == "terracube.access"]
    assert any("/results/<token>/result.tif" in line for line in lines), lines
    assert any("/services/xyz/s-1/<key>/tiles/" in line for line in lines), lines
    assert not any(token in line or key in line for line in lines)
