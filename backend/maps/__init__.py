"""Live maps: openEO secondary web services (``/services``) and the tiles they serve.

``store`` keeps services and their logs in the job store's database, ``tiles`` is the
WebMercatorQuad tile arithmetic, ``service_types`` the ``XYZ`` and ``WMTS`` types (configuration,
checks), ``xyz`` what every tile hands its graph (process parameters, colouring, extensions),
``wmts`` the OGC WMTS capabilities, KVP requests and exception reports, ``render`` turns a
service's graph into one tile (evaluate for the tile's extent at the zoom's overview level, warp
onto the tile's grid, colour with ``processes.formats.colour``, encode PNG/JPEG/WebP) and ``cache``
keeps rendered tiles (memory per worker, optionally disk). The views are in
``backend/api/secondary_services.py``.
"""
