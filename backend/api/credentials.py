"""Authentication: ``GET /credentials/basic`` (bearer token for HTTP Basic) and ``GET /me``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from backend.services import services

blueprint = Blueprint("credentials", __name__)


@blueprint.get("/credentials/basic")
def basic_token():
    token, expires_in = services().auth.issue_token(request)
    return jsonify({"access_token": token, "expires_in": expires_in})


@blueprint.get("/me")
def me():
    user = services().auth.user_from_request(request)
    return jsonify({"user_id": user.user_id, "name": user.user_id, "links": []})
