"""A corpus of bad requests: each must get a clear openEO error (4xx), fast, and never leak Python text.

"Clear" means the openEO error document ``{"id", "code", "message", "links"}`` with a 4xx status,
or, from ``/validation``, status 200 with a non-empty ``errors`` list (that is how openEO reports a
graph's errors there). "Fast" means the whole answer within :data:`FAST_SECONDS`: these requests are
refused on their shape or size, before anything big is built. Any 5xx must not contain Python
exception text.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from processes.core.errors import OpenEOError
from tests.reliability.conftest import (
    FAST_SECONDS,
    JUST_OUTSIDE,
    MAX_REQUEST_MB,
    SMALL_EXTENT,
    WORLD_METRIC,
    WORLD_WGS84,
    Server,
    assert_no_python_text,
    assert_openeo_error,
    assert_refused,
    describe,
    job_id_of,
    json_text,
    request_body,
    timed,
    token_payload,
)

JSON = {"Content-Type": "application/json"}


def _status_of_codes() -> dict[str, int]:
    found: dict[str, int] = {}
    pending: list[type[OpenEOError]] = [OpenEOError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        code = getattr(cls, "code", None)
        if isinstance(code, str):
            found[code] = int(cls.status)
    return found


STATUS_OF_CODE = _status_of_codes()


@pytest.fixture(scope="module", autouse=True)
def warm(server: Server) -> None:
    """Serve a few normal requests first, so that no worker meets the corpus cold (first imports)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        return requests.post(f"{server.api}/result", json=request_body(), headers=server.headers(), timeout=120).status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(one, range(4))) == {200}


def post_fast(server: Server, path: str, *, data: str | bytes | None = None, body: Any = None,
              auth: bool = True, headers: dict[str, str] | None = None) -> requests.Response:
    """POST a JSON body (or raw ``data``) and require the whole answer within FAST_SECONDS."""
    all_headers = {**JSON, **(server.headers() if auth else {}), **(headers or {})}
    payload = data if data is not None else json_text(body)
    response, seconds = timed(requests.post, f"{server.api}{path}", data=payload, headers=all_headers, timeout=120)
    assert_no_python_text(response)
    assert seconds < FAST_SECONDS, f"answered in {seconds:.1f} s (limit {FAST_SECONDS} s): {describe(response)}"
    return response


# --- extents ---------------------------------------------------------------------------------------

BAD_EXTENTS = {
    "world-metric": WORLD_METRIC,
    "world-wgs84": WORLD_WGS84,
}


@pytest.mark.parametrize("extent", list(BAD_EXTENTS))
def test_world_sized_extent_on_validation_without_login(server: Server, extent: str):
    assert_refused(post_fast(server, "/validation", body=request_body(BAD_EXTENTS[extent]), auth=False))


@pytest.mark.parametrize("extent", list(BAD_EXTENTS))
def test_world_sized_extent_on_result(server: Server, extent: str):
    assert_refused(post_fast(server, "/result", body=request_body(BAD_EXTENTS[extent])))


@pytest.mark.parametrize("extent", list(BAD_EXTENTS))
def test_world_sized_extent_on_a_jobs_estimate(server: Server, extent: str):
    created = server.create_job(request_body(BAD_EXTENTS[extent]))
    if created.status_code != 201:  # refusing the job outright is a clear answer too
        assert_openeo_error(created)
        return
    job_id = job_id_of(created)
    response, seconds = timed(requests.get, f"{server.api}/jobs/{job_id}/estimate", headers=server.headers(),
                              timeout=120)
    assert seconds < FAST_SECONDS, f"answered in {seconds:.1f} s: {describe(response)}"
    assert_openeo_error(response)


def _raw_extent(west: str, east: str = "602000") -> str:
    """A /result body whose extent holds the literal JSON number tokens given (NaN, Infinity, …)."""
    text = json_text(request_body({"west": "@WEST@", "south": 5036000, "east": "@EAST@", "north": 5037000,
                                   "crs": 32632}))
    return text.replace('"@WEST@"', west).replace('"@EAST@"', east)


NON_FINITE = {
    "west-NaN": ("NaN", "602000"),
    "east-Infinity": ("601000", "Infinity"),
    "west-minus-Infinity": ("-Infinity", "602000"),
    "west-minus-1e308": ("-1e308", "602000"),
}


@pytest.mark.parametrize("path", ["/validation", "/result"])
@pytest.mark.parametrize("case", list(NON_FINITE))
def test_non_finite_numbers_in_an_extent(server: Server, case: str, path: str):
    west, east = NON_FINITE[case]
    assert_refused(post_fast(server, path, data=_raw_extent(west, east)))


@pytest.fixture(scope="module")
def batch_jobs(server: Server) -> Iterator[dict[str, Any]]:
    """Two batch jobs run to their end, started together: ``finished`` (a small B04 GTiff) and
    ``outside`` (an extent just east of the data; the refusal of its creation where the back-end
    refuses it at once)."""
    finished = job_id_of(server.create_job(request_body()))
    outside: Any = server.create_job(request_body(JUST_OUTSIDE))
    started = [finished] + ([outside.headers["OpenEO-Identifier"]] if outside.status_code == 201 else [])
    for job_id in started:
        response = requests.post(f"{server.api}/jobs/{job_id}/results", headers=server.headers(), timeout=30)
        assert response.status_code == 202, describe(response)
    for job_id in started:
        server.wait_for_job(job_id, timeout=240)
    yield {"finished": finished, "outside": started[1] if len(started) > 1 else outside}


def test_an_extent_just_outside_the_data_on_result(server: Server):
    assert_refused(post_fast(server, "/result", body=request_body(JUST_OUTSIDE)))


def _is_client_error_code(code: Any) -> bool:
    return isinstance(code, str) and code != "Internal" and STATUS_OF_CODE.get(code, 500) < 500


def test_an_extent_just_outside_the_data_as_a_job_ends_in_a_user_error(server: Server, batch_jobs):
    outside = batch_jobs["outside"]
    if isinstance(outside, requests.Response):  # refused when created: a clear user error at once
        error = assert_openeo_error(outside)
        assert _is_client_error_code(error["code"]), describe(outside)
        return
    job = requests.get(f"{server.api}/jobs/{outside}", headers=server.headers(), timeout=30).json()
    assert job["status"] == "error", job
    logs = requests.get(f"{server.api}/jobs/{outside}/logs", headers=server.headers(), timeout=30).json()["logs"]
    errors = [entry for entry in logs if entry["level"] == "error"]
    assert errors, logs
    assert _is_client_error_code(errors[-1].get("code")), f"the job failed with a server error: {errors[-1]}"
    results = requests.get(f"{server.api}/jobs/{outside}/results", headers=server.headers(), timeout=30)
    assert results.status_code == 424, describe(results)
    assert_no_python_text(results)


# --- nesting, size, shape -------------------------------------------------------------------------

def _nested_callbacks(depth: int) -> str:
    inner = ('{"process_graph": {"n": {"process_id": "absolute", "arguments": {"x": {"from_parameter": "x"}}, '
             '"result": true}}}')
    wrap_head = '{"process_graph": {"n": {"process_id": "apply", "arguments": {"data": {"from_parameter": "x"}, "process": '
    wrap_tail = '}, "result": true}}}'
    text = wrap_head * depth + inner + wrap_tail * depth
    outer = request_body()
    outer["process"]["process_graph"]["apply"] = {"process_id": "apply", "arguments": {
        "data": {"from_node": "load"}, "process": "@INNER@"}}
    outer["process"]["process_graph"]["save"]["arguments"]["data"] = {"from_node": "apply"}
    return json_text(outer).replace('"@INNER@"', text)


def test_callbacks_nested_5000_deep_on_validation_without_login(server: Server):
    assert_refused(post_fast(server, "/validation", data=_nested_callbacks(5000), auth=False))


def test_json_nested_100000_deep_on_validation_without_login(server: Server):
    deep = "[" * 100_000 + "]" * 100_000
    text = ('{"process": {"process_graph": {"a": {"process_id": "array_element", "arguments": {"data": ' + deep
            + ', "index": 0}, "result": true}}}}')
    assert_refused(post_fast(server, "/validation", data=text, auth=False))


NAMELESS = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}},
            "parameters": [{"name": {}, "default": None}]}


def test_a_parameter_name_that_is_not_a_string_on_a_user_process(server: Server):
    udp_id = "reliability_nameless"
    response, seconds = timed(requests.put, f"{server.api}/process_graphs/{udp_id}", data=json_text(NAMELESS),
                              headers={**JSON, **server.headers()}, timeout=60)
    assert seconds < FAST_SECONDS
    assert_openeo_error(response)
    stored = requests.get(f"{server.api}/process_graphs/{udp_id}", headers=server.headers(), timeout=30)
    assert stored.status_code == 404, f"the refused process was stored: {describe(stored)}"
    listed = requests.get(f"{server.api}/process_graphs", headers=server.headers(), timeout=30).json()["processes"]
    assert udp_id not in {p["id"] for p in listed}


def test_a_parameter_name_that_is_not_a_string_on_a_job(server: Server):
    def job_ids() -> set[str]:
        listed = requests.get(f"{server.api}/jobs", headers=server.headers(), timeout=30).json()["jobs"]
        return {job["id"] for job in listed}

    before = job_ids()
    assert_openeo_error(post_fast(server, "/jobs", body={"process": NAMELESS}))
    assert job_ids() == before, "the refused job was stored"


def test_four_million_literal_numbers_on_result(server: Server):
    numbers = ",".join(["0"] * 4_000_000)
    text = '{"process": {"process_graph": {"a": {"process_id": "sum", "arguments": {"data": [' + numbers + \
           ']}, "result": true}}}}'
    assert len(text) < MAX_REQUEST_MB * 2**20  # under the body limit: refused for its content, not its size
    assert_refused(post_fast(server, "/result", data=text))


def _oversized_body() -> str:
    padding = "x" * (MAX_REQUEST_MB * 2**20 + 2**20)
    body = request_body()
    body["process"]["description"] = padding
    return json_text(body)


@pytest.mark.parametrize("method,path", [("POST", "/result"), ("POST", "/validation"), ("POST", "/jobs"),
                                         ("PUT", "/process_graphs/reliability_oversized")])
def test_a_body_over_the_limit_is_413(server: Server, method: str, path: str):
    data = _oversized_body()
    response, seconds = timed(requests.request, method, f"{server.api}{path}", data=data,
                              headers={**JSON, **server.headers()}, timeout=120)
    assert seconds < FAST_SECONDS, f"answered in {seconds:.1f} s: {describe(response)}"
    assert_openeo_error(response, status=413)


@pytest.mark.parametrize("path", ["/result", "/jobs", "/validation"])
def test_a_body_that_is_not_json_by_its_content_type(server: Server, path: str):
    response = post_fast(server, path, data=json_text(request_body()), headers={"Content-Type": "text/plain"})
    if response.status_code == 415:
        assert_openeo_error(response, status=415)
    else:
        assert_openeo_error(response, status=400, code="ContentTypeInvalid")


@pytest.mark.parametrize("name", ["it's.txt", 'say"hi".txt', "c:colon.txt", "back\\slash.txt"])
def test_file_paths_the_api_document_forbids_are_refused(server: Server, name: str):
    """openEO's ``path`` pattern excludes ``\\ : ' "`` (and line breaks); such a file cannot be listed validly."""
    url = f"{server.api}/files/{requests.utils.quote(name)}"
    try:
        response = requests.put(url, data=b"x", headers={**server.headers(), "Content-Type": "application/octet-stream"},
                                timeout=30)
        assert_openeo_error(response, status=400, code="FilePathInvalid")
        listed = requests.get(f"{server.api}/files", headers=server.headers(), timeout=30).json()["files"]
        assert name not in {f["path"] for f in listed}
    finally:  # a file stored anyway would make every later GET /files break the document
        requests.delete(url, headers=server.headers(), timeout=30)


# --- result links ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def result_link(server: Server, batch_jobs) -> tuple[str, str]:
    """(token, an asset name) of the finished job's signed result links."""
    job_id = batch_jobs["finished"]
    response = requests.get(f"{server.api}/jobs/{job_id}/results", headers=server.headers(), timeout=30)
    assert response.status_code == 200, describe(response)
    document = response.json()
    canonical = next(link["href"] for link in document["links"] if link["rel"] == "canonical")
    token = canonical.rstrip("/").rsplit("/results/", 1)[1]
    asset = next(iter(document["assets"]))
    return token, asset


def _raw_get(server: Server, path: str) -> tuple[int, bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of ``..`` or escapes)."""
    parts = urlsplit(server.root)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _error_shape(status: int, body: bytes) -> tuple[int, str, str]:
    document = json.loads(body)
    assert {"id", "code", "message", "links"} <= set(document), body[:300]
    return status, document["code"], document["message"]


TRAVERSALS = ["..%2F..%2Fterracube.db", "..%2F..%2F..%2Fterracube.db", "..%2Fjob.json", "..%2F..%2Fsecret",
              "%2E%2E%2F%2E%2E%2Fterracube.db", "..%5C..%5Cterracube.db", "results%2F..%2F..%2Fterracube.db",
              "..%252F..%252Fterracube.db"]


def test_a_result_link_answers_its_file(server: Server, result_link):
    token, asset = result_link
    status, body = _raw_get(server, f"/openeo/1.2/results/{token}/{asset}")
    assert status == 200 and body[:4] in (b"II*\x00", b"MM\x00*"), (status, body[:100])


@pytest.mark.parametrize("segment", TRAVERSALS)
def test_result_link_paths_with_dot_dot_segments_get_the_missing_file_404(server: Server, result_link, segment: str):
    token, _asset = result_link
    missing = _error_shape(*_raw_get(server, f"/openeo/1.2/results/{token}/no-such-file.tif"))
    assert missing[0] == 404
    status, body = _raw_get(server, f"/openeo/1.2/results/{token}/{segment}")
    assert b"SQLite format" not in body
    assert _error_shape(status, body) == missing, (segment, status, body[:300])


def test_a_results_token_does_not_name_the_user(result_link):
    token, _asset = result_link
    payload = token_payload(token)
    for user in ("demo", "alice"):
        assert user.encode() not in payload, f"the readable part of the token names {user!r}: {payload!r}"


def test_nothing_in_the_corpus_took_a_worker_down(server: Server):
    """After the corpus the server still answers normal requests."""
    response = requests.post(f"{server.api}/result", json=request_body(SMALL_EXTENT), headers=server.headers(),
                             timeout=120)
    assert response.status_code == 200, describe(response)
