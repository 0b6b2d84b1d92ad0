"""The services container: what views and back-end services work with, built once per process.

:func:`build_services` makes the container from the settings (the app factory and a batch job's
process both use it); :func:`services` hands the current app's container to a view. Views and
services import this module, never the app factory (``backend/app.py``), which only the entry
points know.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import current_app

from backend.auth import Authenticator
from backend.catalog import build_catalog
from backend.jobs.store import JobStore, make_engine
from backend.maps.cache import TileCache
from backend.maps.store import ServiceStore
from backend.process_graphs import UdpStore
from backend.settings import Settings
from processes.core.registry import ProcessRegistry
from processes.data.stac_sources import CollectionCatalog
from processes.process_table import build_registry

EXTENSION_KEY = "terracube"

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
    maps: ServiceStore
    """Secondary web services (``/services``): live maps."""
    tiles: TileCache
    """Rendered map tiles of those services (memory, and disk where configured)."""


def build_services(settings: Settings) -> Services:
    """Every service from the settings; fails fast on a bad STAC source or database URL."""
    for key, value in _GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    engine = make_engine(settings.job_store_url)
    return Services(
        settings=settings,
        auth=Authenticator.from_settings(settings),
        catalog=build_catalog(settings),
        registry=build_registry(),
        jobs=JobStore(engine),
        udps=UdpStore(engine),
        maps=ServiceStore(engine),
        tiles=TileCache(settings.tile_cache_mb * 2**20, settings.tile_cache_dir, settings.tile_cache_disk_mb * 2**20),
    )


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
