"""The Flask application factory.

``create_app(settings)`` builds the services (:mod:`backend.services`) and hands them to the
blueprints through ``app.extensions``: views read them with :func:`backend.services.services`,
never from module globals, so tests can build apps with their own settings. Only the entry points
(``wsgi.py``, ``cli.py``, ``devserver.py``) import this module.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask
from flask_cors import CORS

from backend.access_log import register_access_log
from backend.api.versions import API_VERSIONS, ApiVersion
from backend.errors import register_error_handlers
from backend.services import EXTENSION_KEY, build_services
from backend.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = Flask("terracube")
    # app.json is a DefaultJSONProvider, which has sort_keys; Flask types it as the JSONProvider base
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    app.extensions[EXTENSION_KEY] = build_services(settings)
    CORS(
        app,
        supports_credentials=True,
        allow_headers=["Authorization", "Content-Type", "Range"],
        expose_headers=["Content-Disposition", "Content-Length", "Content-Type", "Link", "Location",
                        "OpenEO-Identifier", "OpenEO-Costs", "X-Request-Id"],
        max_age=3600,
    )
    register_error_handlers(app)
    register_access_log(app)

    from backend.api import (
        capabilities,
        collections,
        credentials,
        files,
        health,
        items,
        jobs,
        process_graphs,
        processes,
        processing,
        secondary_services,
        web,
    )

    app.register_blueprint(capabilities.well_known)
    app.register_blueprint(web.blueprint)  # web pages, outside the openEO API prefix
    # at the root for load balancers, under each prefix for the federation's aggregator
    app.register_blueprint(health.blueprint)
    # every API version gets the same blueprints under its own prefix (backend/api/versions.py); the
    # secondary services come before capabilities, whose placeholder GET /service_types they replace
    api = (secondary_services, capabilities, collections, items, credentials, files, jobs, process_graphs,
           processes, processing)
    for version in API_VERSIONS:
        _mount(app, health.blueprint, version, name="health_api")
        for module in api:
            _mount(app, module.blueprint, version)
    return app


def _mount(app: Flask, blueprint: Blueprint, version: ApiVersion, name: str | None = None) -> None:
    app.register_blueprint(blueprint, url_prefix=version.prefix,
                           name=(name or blueprint.name) + version.blueprint_suffix)
