"""The HTTP API over real HTTP: capabilities, metadata endpoints, CORS, and every error as an openEO error."""

from __future__ import annotations

import pytest
import requests

LC = "DEMO_SENTINEL2_L2A"


def load(collection=LC, bands=("B04",), extent=None, temporal=("2023-05-01", "2023-06-01")):
    return {
        "process_id": "load_collection",
        "arguments": {
            "id": collection,
            "spatial_extent": extent,
            "temporal_extent": list(temporal),
            "bands": list(bands),
        },
    }


def graph(**nodes):
    *_, last = nodes
    nodes[last]["result"] = True
    return {"process": {"process_graph": nodes}}


def assert_openeo_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["message"] and isinstance(body["message"], str)
    assert "id" in body and body["links"] == []
    return body


def post_result(server, body, user="demo", **kwargs):
    return requests.post(f"{server.api}/result", json=body, headers=server.headers(user), timeout=120, **kwargs)


# --- capabilities and metadata ------------------------------------------------------------------
def test_well_known_lists_version_1_2(live_server):
    versions = requests.get(f"{live_server.root}/.well-known/openeo", timeout=10).json()["versions"]
    assert versions[0]["api_version"] == "1.2.0"
    assert versions[0]["url"].endswith("/openeo/1.2/")


def test_capabilities_list_exactly_the_implemented_endpoints(live_server):
    caps = requests.get(f"{live_server.api}/", timeout=10).json()
    assert caps["api_version"] == "1.2.0"
    endpoints = {e["path"]: set(e["methods"]) for e in caps["endpoints"]}
    assert endpoints["/result"] == {"POST"}
    assert endpoints["/collections/{collection_id}"] == {"GET"}
    assert endpoints["/jobs/{job_id}/results"] == {"GET", "POST", "DELETE"}
    assert endpoints["/process_graphs/{process_graph_id}"] == {"DELETE", "GET", "PUT"}
    assert endpoints["/services"] == {"GET", "POST"}
    assert endpoints["/services/{service_id}"] == {"DELETE", "GET", "PATCH"}
    assert "/services/{service_id}/wmts" not in endpoints  # WMTS is not offered yet, so not advertised
    for path in endpoints:
        if "{" not in path:
            method = "post" if endpoints[path] == {"POST"} else "get"
            response = requests.request(method, f"{live_server.api}{path}", timeout=30)
            assert response.status_code != 404, path


def test_file_formats_have_gis_data_types_and_parameters(live_server):
    formats = requests.get(f"{live_server.api}/file_formats", timeout=10).json()
    assert {"GTiff", "netCDF", "JSON"} <= set(formats["output"])
    gtiff = formats["output"]["GTiff"]
    assert gtiff["gis_data_types"] == ["raster"]
    assert isinstance(gtiff["parameters"], dict)


def test_processes_have_full_specs(live_server):
    processes = requests.get(f"{live_server.api}/processes", timeout=10).json()["processes"]
    by_id = {p["id"]: p for p in processes}
    for pid in ("load_collection", "ndvi", "reduce_dimension", "save_result", "mean", "add"):
        assert by_id[pid]["parameters"] and "returns" in by_id[pid]


def test_cors_preflight_allows_the_web_editor(live_server):
    response = requests.options(
        f"{live_server.api}/result",
        headers={
            "Origin": "https://editor.openeo.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://editor.openeo.org"
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    exposed = requests.get(f"{live_server.api}/", headers={"Origin": "https://editor.openeo.org"}, timeout=10)
    assert "OpenEO-Identifier" in exposed.headers["Access-Control-Expose-Headers"]


# --- errors ---------------------------------------------------------------------------------------
def test_unknown_url_is_openeo_not_found(live_server):
    assert_openeo_error(requests.get(f"{live_server.api}/nope", timeout=10), 404, "NotFound")


def test_wrong_method_is_an_openeo_error(live_server):
    assert_openeo_error(requests.delete(f"{live_server.api}/collections", timeout=10), 405, "MethodNotAllowed")


def test_missing_token(live_server):
    response = requests.post(f"{live_server.api}/result", json=graph(a={"process_id": "pi", "arguments": {}}),
                             timeout=10)
    assert_openeo_error(response, 401, "AuthenticationRequired")


def test_bad_password(live_server):
    response = requests.get(f"{live_server.api}/credentials/basic", auth=("demo", "wrong"), timeout=10)
    assert_openeo_error(response, 403, "CredentialsInvalid")


def test_invalid_token(live_server):
    response = requests.get(f"{live_server.api}/me", headers={"Authorization": "Bearer basic//forged"}, timeout=10)
    assert_openeo_error(response, 403, "TokenInvalid")


def test_malformed_json(live_server):
    response = requests.post(
        f"{live_server.api}/result",
        data=b'{"process": {"process_graph": ',
        headers={**live_server.headers(), "Content-Type": "application/json"},
        timeout=10,
    )
    body = assert_openeo_error(response, 400, "BadRequest")
    assert "not valid JSON" in body["message"]


def test_unknown_collection(live_server):
    body = assert_openeo_error(post_result(live_server, graph(a=load("NOPE"))), 404, "CollectionNotFound")
    assert LC in body["message"]  # lists what exists


def test_unknown_band(live_server):
    body = assert_openeo_error(post_result(live_server, graph(a=load(bands=["B99"]))), 400, "ProcessParameterInvalid")
    assert "B99" in body["message"] and "B04" in body["message"]


def test_unknown_process(live_server):
    body = assert_openeo_error(
        post_result(live_server, graph(a={"process_id": "no_such_process", "arguments": {}})), 400,
        "ProcessUnsupported",
    )
    assert "no_such_process" in body["message"]


def test_invalid_argument_type(live_server):
    response = post_result(live_server, graph(
        a=load(),
        b={"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "a"}, "dimension": 5,
            "reducer": {"process_graph": {"m": {"process_id": "mean", "arguments": {"data": {"from_parameter": "data"}},
                                                "result": True}}}}},
    ))
    body = assert_openeo_error(response, 400, "ProcessParameterInvalid")
    assert "dimension" in body["message"]


def test_bbox_outside_the_data(live_server):
    extent = {"west": -70.0, "south": -10.0, "east": -69.9, "north": -9.9}
    body = assert_openeo_error(post_result(live_server, graph(a=load(extent=extent))), 400, "NoDataAvailable")
    assert LC in body["message"]


def test_unknown_output_format(live_server):
    response = post_result(live_server, graph(
        a=load(),
        b={"process_id": "save_result", "arguments": {"data": {"from_node": "a"}, "format": "BMP"}},
    ))
    body = assert_openeo_error(response, 400, "FormatUnsupported")
    assert "GTiff" in body["message"]


def test_request_without_process_graph(live_server):
    assert_openeo_error(post_result(live_server, {"process": {}}), 400, "ProcessGraphMissing")


# --- validation -------------------------------------------------------------------------------------
def test_validation_of_a_valid_graph_has_no_errors(live_server):
    body = graph(a={"process_id": "add", "arguments": {"x": 1, "y": 2}})
    response = requests.post(f"{live_server.api}/validation", json=body, timeout=30)
    assert response.status_code == 200
    assert response.json() == {"errors": []}


@pytest.mark.parametrize("nodes, code", [
    ({"a": {"process_id": "nope", "arguments": {}}}, "ProcessUnsupported"),
    ({"a": load("NOPE")}, "CollectionNotFound"),
])
def test_validation_reports_errors_with_status_200(live_server, nodes, code):
    response = requests.post(f"{live_server.api}/validation", json=graph(**nodes), headers=live_server.headers(),
                             timeout=30)
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert errors and errors[0]["code"] == code


def test_me_names_the_user(live_server):
    me = requests.get(f"{live_server.api}/me", headers=live_server.headers("alice"), timeout=10).json()
    assert me["user_id"] == "alice"
