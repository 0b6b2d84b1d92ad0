"""``GET /health``: 200 with the state of the back-end's parts, 503 naming the parts that are down.

Served at the root and under the versioned prefix (``/openeo/1.2/health``), where a federation's
aggregator polls it; no login. What is checked and what the answer may say: :mod:`backend.health`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.blueprints import BlueprintSetupState

from backend.health import HealthChecks
from backend.services import EXTENSION_KEY

blueprint = Blueprint("health", __name__)
_CHECKS_KEY = "terracube.health"


@blueprint.record
def _checks_per_app(state: BlueprintSetupState) -> None:
    # one set of checks (and caches) per app, however often the blueprint is mounted
    state.app.extensions.setdefault(_CHECKS_KEY, HealthChecks(state.app.extensions[EXTENSION_KEY]))


@blueprint.get("/health")
def health():
    checks: HealthChecks = current_app.extensions[_CHECKS_KEY]
    report = checks.report()
    response = jsonify(report.document())
    response.status_code = 200 if report.ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response
