"""Authentication: ``GET /credentials/basic`` (bearer token for HTTP Basic), ``GET /credentials/oidc``
(the OpenID Connect providers; routed only when some are configured, so the capabilities list it
exactly then) and ``GET /me``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.blueprints import BlueprintSetupState

from backend.accounting.account import account_document
from backend.api.versions import current_version
from backend.services import EXTENSION_KEY, Services, services

blueprint = Blueprint("credentials", __name__)


@blueprint.get("/credentials/basic")
def basic_token():
    token, expires_in = services().auth.issue_token(request)
    return jsonify({"access_token": token, "expires_in": expires_in})


def oidc_providers():
    oidc = services().auth.oidc
    assert oidc is not None  # routed only with providers
    return jsonify(oidc.document(api_1_3=current_version().since("1.3")))


@blueprint.record
def _route_oidc_when_configured(state: BlueprintSetupState) -> None:
    app_services: Services = state.app.extensions[EXTENSION_KEY]
    if app_services.auth.oidc is not None:
        state.add_url_rule("/credentials/oidc", view_func=oidc_providers, methods=["GET"])


@blueprint.get("/me")
def me():
    svc = services()
    user = svc.auth.user_from_request(request)
    # name, roles (the provider's and TERRACUBE_ADMINS'), limits in force, usage, plan and storage
    return jsonify(account_document(svc.settings, svc.jobs, user))
