"""The Flask application factory.

``create_app(settings)`` builds the services (authenticator, collection catalog, process registry)
and hands them to the blueprints through ``app.extensions["terracube"]``: views read them with
:func:`services`, never from module globals, so tests can build apps with their own settings.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from flask import Flask, current_app
from flask_cors import CORS

from backend.auth import Authenticator
from backend.catalog import build_catalog
from backend.errors import register_error_handlers
from backend.jobs.store import JobStore, make_engine
from backend.process_graphs import UdpStore
from backend.settings import API_PREFIX, Settings
from processes.registry import ProcessRegistry, build_registry
from processes.stac import CollectionCatalog

# GDAL settings for reading many small COG windows: no directory listings, a shared block cache.
_GDAL_DEFAULTS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_CACHEMAX": "512",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.json",
}


@dataclass(frozen=True)
class Services:
    settings: Settings
    auth: Authenticator
    catalog: CollectionCatalog
    registry: ProcessRegistry
    jobs: JobStore
    udps: UdpStore


def services() -> Services:
    return current_app.extensions["terracube"]


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    for key, value in _GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    app = Flask("terracube")
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.job_store_url)
    app.extensions["terracube"] = Services(
        settings=settings,
        auth=Authenticator(settings.users, settings.token_secret(), settings.token_ttl_seconds),
        catalog=build_catalog(settings),
        registry=build_registry(),
        jobs=JobStore(engine),
        udps=UdpStore(engine),
    )
    CORS(
        app,
        supports_credentials=True,
        allow_headers=["Authorization", "Content-Type", "Range"],
        expose_headers=["Content-Disposition", "Content-Length", "Content-Type", "Link", "Location",
                        "OpenEO-Identifier", "OpenEO-Costs"],
        max_age=3600,
    )
    register_error_handlers(app)

    from backend.api import (
        capabilities,
        collections,
        credentials,
        files,
        jobs,
        process_graphs,
        processes,
        processing,
    )

    app.register_blueprint(capabilities.well_known)
    for module in (capabilities, collections, credentials, files, jobs, process_graphs, processes, processing):
        app.register_blueprint(module.blueprint, url_prefix=API_PREFIX)
    return app
