"""Request bodies over the limit, of the wrong media type, and result links that try to leave the job."""

from __future__ import annotations

import base64
import json

import pytest

from backend.jobs.folder import JobFolder
from backend.services import EXTENSION_KEY

API = "/openeo/1.2"
GRAPH = {"process": {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}}


@pytest.mark.parametrize("path", ["/result", "/validation", "/jobs"])
def test_a_body_that_is_not_json_media_type_is_content_type_invalid(client, auth_headers, path):
    response = client.post(API + path, data=json.dumps(GRAPH), headers={**auth_headers, "Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json["code"] == "ContentTypeInvalid" and "application/json" in response.json["message"]


def test_a_body_over_the_limit_is_413_without_being_read(app, auth_headers):
    limit = app.extensions[EXTENSION_KEY].settings.max_request_mb * 2**20
    body = b'{"process": {"process_graph": {}}, "pad": "' + b"x" * limit + b'"}'
    response = app.test_client().post(API + "/result", data=body,
                                      headers={**auth_headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json["code"] == "PayloadTooLarge" and "TERRACUBE_MAX_REQUEST_MB" in response.json["message"]


@pytest.fixture
def finished_job(app, client, auth_headers) -> tuple[str, str]:
    """A finished job with one result file; returns (job id, signed results URL)."""
    services = app.extensions[EXTENSION_KEY]
    job = services.jobs.create("demo", GRAPH["process"])
    services.jobs.queue("demo", job.id)
    claimed = services.jobs.claim_next("test-runner")
    assert claimed is not None and claimed.id == job.id
    folder = JobFolder.of(services.settings, job.id)
    scratch = folder.scratch(services.jobs.attempt(job.id))
    scratch.mkdir(parents=True)
    (scratch / "result.json").write_text("3")
    (scratch / "results.json").write_text(json.dumps({"type": "Collection", "id": job.id, "assets": {
        "result.json": {"href": "result.json", "type": "application/json", "roles": ["data"]}}}))
    folder.publish(scratch)
    (services.settings.data_dir / "workspaces").mkdir(exist_ok=True)
    assert services.jobs.finish(job.id, "finished", attempt=services.jobs.attempt(job.id))
    document = client.get(f"{API}/jobs/{job.id}/results", headers=auth_headers).json
    canonical = next(link["href"] for link in document["links"] if link["rel"] == "canonical")
    return job.id, canonical.split("://", 1)[1].split("/", 1)[1]


def test_the_signed_link_serves_the_result_file(client, finished_job):
    _, link = finished_job
    assert client.get(f"/{link}/result.json").data == b"3"


@pytest.mark.parametrize("name", ["..%2F..%2Fterracube.db", "..%2F..%2Fsecret", "..%2Fprocess.log", "results.json",
                                  "%2Fetc%2Fpasswd", "missing.json"])
def test_names_outside_the_results_all_answer_one_uniform_404(client, finished_job, name):
    _, link = finished_job
    missing = client.get(f"/{link}/does-not-exist.json")
    response = client.get(f"/{link}/{name}", follow_redirects=True)  # "//" is normalised by a redirect first
    assert response.status_code == 404
    assert response.json["code"] == missing.json["code"] == "NotFound"
    assert response.json["message"] == missing.json["message"]


def test_a_result_token_names_no_user(finished_job):
    _, link = finished_job
    token = link.split("/results/", 1)[1]
    readable = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"demo" not in readable


def test_a_forged_token_answers_the_same_404(client, finished_job):
    _, link = finished_job
    base = link.split("/results/", 1)[0]
    forged = base64.urlsafe_b64encode(b'"someone-elses-job"').decode().rstrip("=") + ".AAAA.BBBB"
    response = client.get(f"/{base}/results/{forged}/result.json")
    assert response.status_code == 404 and response.json["code"] == "NotFound"
