"""Predefined processes: ``GET /processes`` (the spec of every implemented process)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from backend.api import base_url
from backend.services import services

blueprint = Blueprint("processes", __name__)


@blueprint.get("/processes")
def list_processes():
    registry = services().registry
    return jsonify(
        {
            "processes": [dict(registry[pid].spec) for pid in registry],
            "links": [{"rel": "self", "href": f"{base_url()}/processes", "type": "application/json"}],
        }
    )
