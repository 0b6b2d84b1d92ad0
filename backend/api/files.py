"""The user's workspace: ``GET /files``, ``GET/PUT/DELETE /files/{path}``; uploads within the user's quota."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, send_file

from backend.accounting.limits import user_limits
from backend.services import services
from backend.workspace import Workspace

blueprint = Blueprint("files", __name__)


def _workspace() -> Workspace:
    svc = services()
    user = svc.auth.user_from_request(request)
    return Workspace(svc.settings.workspaces_dir, user.user_id,
                     quota_bytes=user_limits(svc.settings, user).workspace_bytes)


@blueprint.get("/files")
def list_files():
    return jsonify({"files": _workspace().list(), "links": []})


@blueprint.get("/files/<path:path>")
def download_file(path: str):
    return send_file(_workspace().resolve(path), mimetype="application/octet-stream", conditional=True)


@blueprint.put("/files/<path:path>")
def upload_file(path: str):
    return jsonify(_workspace().put(path, request.stream, request.content_length))


@blueprint.delete("/files/<path:path>")
def delete_file(path: str):
    _workspace().delete(path)
    return Response(status=204)
