"""Live maps: openEO secondary web services (``/services``) and the tiles they serve.

``store`` keeps services and their logs in the job store's database, ``tiles`` is the
WebMercatorQuad tile arithmetic, ``xyz`` the ``XYZ`` service type (its configuration and process
parameters) and ``render`` turns a service's graph into one PNG tile (evaluate for the tile's
extent, warp onto the tile's grid, colour with ``processes.formats.colour``), with a per-worker cache.
The views are in ``backend/api/secondary_services.py``.
"""
