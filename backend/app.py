"""The Flask application factory.

``create_app(settings)`` builds the services (:mod:`backend.services`) and hands them to the
blueprints through ``app.extensions``: views read them with :func:`backend.services.services`,
never from module globals, so tests can build apps with their own settings. Only the entry points
(``wsgi.py``, ``cli.py``, ``devserver.py``) import this module.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask_cors import CORS

from backend.access_log import register_access_log
from backend.errors import register_error_handlers
from backend.services import EXTENSION_KEY, build_services
from backend.settings import API_PREFIX, Settings


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
        jobs,
        process_graphs,
        processes,
        processing,
        secondary_services,
    )

    app.register_blueprint(capabilities.well_known)
    # before capabilities, whose placeholder GET /service_types (an empty listing) it replaces
    app.register_blueprint(secondary_services.blueprint, url_prefix=API_PREFIX)
    for module in (capabilities, collections, credentials, files, jobs, process_graphs, processes, processing):
        app.register_blueprint(module.blueprint, url_prefix=API_PREFIX)
    return app
