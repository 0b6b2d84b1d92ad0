"""User-defined processes: stored per user over HTTP and callable by id in graphs."""

from __future__ import annotations

import requests

UDP = {
    "summary": "x times factor",
    "parameters": [{"name": "x", "schema": {"type": "number"}},
                   {"name": "factor", "schema": {"type": "number"}, "optional": True, "default": 10}],
    "process_graph": {"m": {"process_id": "multiply", "arguments": {
        "x": {"from_parameter": "x"}, "y": {"from_parameter": "factor"}}, "result": True}},
}


def put(server, name, body, user="demo"):
    return requests.put(f"{server.api}/process_graphs/{name}", json=body, headers=server.headers(user), timeout=10)


def result(server, node, user="demo"):
    body = {"process": {"process_graph": {"n": {**node, "result": True}}}}
    return requests.post(f"{server.api}/result", json=body, headers=server.headers(user), timeout=30)


def test_store_list_describe_and_delete(live_server):
    assert put(live_server, "scale_it", UDP).status_code == 200
    listing = requests.get(f"{live_server.api}/process_graphs", headers=live_server.headers(), timeout=10).json()
    assert "scale_it" in [p["id"] for p in listing["processes"]]
    one = requests.get(f"{live_server.api}/process_graphs/scale_it", headers=live_server.headers(), timeout=10)
    assert one.json()["process_graph"] == UDP["process_graph"]
    gone = requests.delete(f"{live_server.api}/process_graphs/scale_it", headers=live_server.headers(), timeout=10)
    assert gone.status_code == 204
    again = requests.get(f"{live_server.api}/process_graphs/scale_it", headers=live_server.headers(), timeout=10)
    assert again.status_code == 404 and again.json()["code"] == "ProcessGraphNotFound"


def test_a_stored_process_is_callable_by_id_with_its_defaults(live_server):
    put(live_server, "times_factor", UDP)
    assert result(live_server, {"process_id": "times_factor", "namespace": "user", "arguments": {"x": 4}}).json() == 40
    assert result(live_server, {"process_id": "times_factor", "arguments": {"x": 4, "factor": 2}}).json() == 8


def test_users_do_not_see_each_others_processes(live_server):
    put(live_server, "private_one", UDP)
    response = result(live_server, {"process_id": "private_one", "namespace": "user", "arguments": {"x": 1}},
                      user="alice")
    assert response.status_code == 400 and response.json()["code"] == "ProcessUnsupported"
    listing = requests.get(f"{live_server.api}/process_graphs", headers=live_server.headers("alice"), timeout=10)
    assert "private_one" not in [p["id"] for p in listing.json()["processes"]]


def test_predefined_ids_cannot_be_taken(live_server):
    response = put(live_server, "mean", UDP)
    assert response.status_code == 400 and response.json()["code"] == "PredefinedProcessExists"


def test_a_process_without_graph_is_refused(live_server):
    response = put(live_server, "nothing", {"summary": "no graph"})
    assert response.status_code == 400 and response.json()["code"] == "ProcessGraphMissing"
