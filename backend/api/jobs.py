"""Batch jobs: ``/jobs``, ``/jobs/{id}``, ``/jobs/{id}/results``, ``/jobs/{id}/logs``, signed result links.

Result assets are served under signed, expiring URLs (``/results/{token}/{file}``), so they can be
shared and read by clients and other back-ends (``load_stac``) without the owner's credentials.
Starting a job checks the user's limits (``backend.accounting.limits``); a job's ``costs`` come from
its measured ``usage`` where a price list is configured (``backend.accounting.billing``).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request, send_file, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from backend.accounting.billing import job_costs
from backend.accounting.limits import check_result_storage, user_limits
from backend.api import base_url, created, iso, json_body, logs_document
from backend.evaluation import check
from backend.jobs.estimate import estimate
from backend.jobs.folder import JobFolder
from backend.jobs.results import read_stac
from backend.jobs.store import JobRecord
from backend.jobs.wakeup import wake_runners
from backend.services import services
from processes.core import processing_parameters
from processes.core.errors import (
    BadRequest,
    JobNotFinished,
    JobNotFound,
    NotFound,
    ProcessGraphMissing,
    ResultLinkExpired,
)
from processes.core.graph import parse_process_graph

blueprint = Blueprint("jobs", __name__)


def _summary(job: JobRecord) -> dict:
    body: dict = {
        "id": job.id,
        "title": job.title,
        "description": job.description,
        "status": job.status,
        "progress": job.progress if job.status in ("running", "finished") else None,
        "created": iso(job.created),
        "updated": iso(job.updated),
        "plan": job.plan,
        "budget": job.budget,
        "log_level": job.log_level,
        "costs": job_costs(services().settings.prices, job.usage),
    }
    for stamp in ("queued", "started", "finished"):
        if getattr(job, stamp):
            body[stamp] = iso(getattr(job, stamp))
    return {k: v for k, v in body.items() if v is not None or k in ("title", "description")}


def _user():
    return services().auth.user_from_request(request)


def _process_of(body: dict) -> dict:
    process = body.get("process") if isinstance(body, dict) else None
    if not isinstance(process, dict) or "process_graph" not in process:
        raise ProcessGraphMissing("The request needs a 'process' object holding a 'process_graph'.")
    parse_process_graph(process)  # structural errors now, not when the job runs
    return process


@blueprint.post("/jobs")
def create_job():
    user = _user()
    body = json_body()
    process = _process_of(body)
    level = body.get("log_level", "info")
    if level not in ("error", "warning", "info", "debug"):
        raise BadRequest(f"log_level '{level}' is not one of error, warning, info, debug.")
    parameters = processing_parameters.from_request(body, "job")
    check(services(), process, user.user_id, "job", parameters=parameters)  # refused now, not when it runs
    job = services().jobs.create(
        user.user_id, process, title=body.get("title"), description=body.get("description"),
        plan=body.get("plan"), budget=body.get("budget"), log_level=level, parameters=parameters,
    )
    return created(f"/jobs/{job.id}", job.id)


@blueprint.get("/jobs")
def list_jobs():
    user = _user()
    limit = request.args.get("limit", type=int)
    return jsonify({"jobs": [_summary(j) for j in services().jobs.list(user.user_id, limit)], "links": []})


@blueprint.get("/jobs/<job_id>")
def describe_job(job_id: str):
    job = services().jobs.get(_user().user_id, job_id)
    usage = {"usage": job.usage} if job.usage else {}  # measured by the run that finished
    return jsonify({**job.parameters, **_summary(job), **usage, "process": job.process})


@blueprint.patch("/jobs/<job_id>")
def update_job(job_id: str):
    user = _user()
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest("Send the properties to change as a JSON object, e.g. {\"title\": \"…\"}.")
    given = processing_parameters.from_request(body, "job")
    changes = {k: v for k, v in body.items() if k not in given and k != "job_options"}  # {} changes nothing
    store = services().jobs
    if given:
        changes["parameters"] = {**store.get(user.user_id, job_id).parameters, **given}
    if "process" in changes:
        changes["process"] = _process_of(changes)
        parameters = changes.get("parameters") or store.get(user.user_id, job_id).parameters
        check(services(), changes["process"], user.user_id, "job", parameters=parameters)
    store.update(user.user_id, job_id, changes)
    return Response(status=204)


@blueprint.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    user = _user()
    svc = services()
    svc.jobs.cancel(user.user_id, job_id)
    svc.jobs.delete(user.user_id, job_id)
    JobFolder.of(svc.settings, job_id).remove()
    return Response(status=204)


@blueprint.post("/jobs/<job_id>/results")
def start_job(job_id: str):
    svc = services()
    user = _user()
    job = svc.jobs.get(user.user_id, job_id)  # someone else's job is not found, before any limit is told
    limits = user_limits(svc.settings, user)
    if job.status not in ("queued", "running"):
        check_result_storage(svc.settings, svc.jobs, user.user_id, limits)
    svc.jobs.queue(user.user_id, job_id, max_active=limits.running_jobs)
    wake_runners(svc.settings.data_dir)  # at once, not at their next poll (best effort, never fails)
    return Response(status=202)


@blueprint.delete("/jobs/<job_id>/results")
def cancel_job(job_id: str):
    services().jobs.cancel(_user().user_id, job_id)
    return Response(status=204)


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(services().settings.token_secret(), salt="job-results")


@blueprint.get("/jobs/<job_id>/results")
def job_results(job_id: str):
    user = _user()
    job = services().jobs.get(user.user_id, job_id)
    if job.status == "error":
        response = jsonify({"id": job.id, "code": "JobFailed", "message": job.error or "The job failed.",
                            "links": []})
        response.status_code = 424
        return response
    if job.status != "finished":
        raise JobNotFinished(f"Batch job '{job_id}' is {job.status}; results are there once it is finished.")
    if job.results_removed is not None:
        raise NotFound(
            f"The results of batch job '{job_id}' were removed on {iso(job.results_removed)}: results are kept "
            f"{services().settings.result_retention_days} days after their job finished. Start the job again "
            "to compute them anew."
        )
    token = _signer().dumps(job.id)  # the job id only: the readable part of a token names no user
    return _results_document(job.id, token)


@blueprint.get("/results/<token>")
def signed_results(token: str):
    job_id = _verify(token)
    return _results_document(job_id, token)


@blueprint.get("/results/<token>/<path:filename>")
def result_asset(token: str, filename: str):
    job_id = _verify(token)
    path = JobFolder.of(services().settings, job_id).result_file(filename)
    if path is None:
        raise NotFound(_NO_RESULT)
    return send_file(path, conditional=True)


_NO_RESULT = "No batch job result at this URL (the link is invalid, or the file or job no longer exists)."


def _verify(token: str) -> str:
    """The job id a result link was signed for; the signature is the authority, not a login."""
    try:
        job_id = _signer().loads(token, max_age=services().settings.result_link_ttl_seconds)
    except SignatureExpired:
        raise ResultLinkExpired("The link to the batch job results has expired; request the results again.") from None
    except BadSignature:
        raise NotFound(_NO_RESULT) from None
    if not isinstance(job_id, str):  # a link of an older format
        raise NotFound(_NO_RESULT)
    try:
        services().jobs.record(job_id)  # the job must still exist
    except JobNotFound:
        raise NotFound(_NO_RESULT) from None
    return job_id


def _results_document(job_id: str, token: str):
    try:
        document = read_stac(JobFolder.of(services().settings, job_id).results)
    except FileNotFoundError:  # results removed (the job is running again, or was deleted meanwhile)
        raise NotFound(_NO_RESULT) from None
    root = base_url()
    for name, asset in document["assets"].items():
        asset["href"] = f"{root}/results/{token}/{name}"
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=services().settings.result_link_ttl_seconds)
    document["links"] = [
        {"rel": "self", "href": f"{root}/jobs/{job_id}/results", "type": "application/json"},
        {"rel": "canonical", "href": f"{root}/results/{token}", "type": "application/json"},
    ]
    document["expires"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    return jsonify(document)


@blueprint.get("/jobs/<job_id>/estimate")
def job_estimate(job_id: str):
    user = _user()
    job = services().jobs.get(user.user_id, job_id)
    body = estimate(services(), job.process, user.user_id, job.parameters)
    return jsonify({k: v for k, v in body.items() if v is not None})


@blueprint.get("/jobs/<job_id>/logs")
def job_logs(job_id: str):
    user = _user()
    svc = services()
    svc.jobs.get(user.user_id, job_id)
    level = request.args.get("level", "debug")
    limit = request.args.get("limit", type=int)
    entries = svc.jobs.logs(job_id, request.args.get("offset"), level, limit)
    return logs_document(entries, level, limit, lambda offset: url_for(
        ".job_logs", job_id=job_id, offset=offset, level=level, limit=limit, _external=True))
