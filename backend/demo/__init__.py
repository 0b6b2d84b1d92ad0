"""Deterministic demo data for Terracube: ``terracube demo [--size small|bench] [--out DIR]``.

One call draws a synthetic agricultural landscape in northern Italy and renders products from it into a
self-contained static STAC catalog:

- ``DEMO_SENTINEL2_L2A``: Sentinel-2 L2A-like COGs (B02 B03 B04 B08 at 10 m, B11 B12 SCL at 20 m) on two
  adjacent UTM 32N tiles, 24 dates of 2023, with crop-specific seasonal NDVI, clouds and cloud shadows;
- ``DEMO_DEM_SRTM30`` and ``DEMO_DEM_EUDEM25``: two elevation models of the same area (SRTM-like, EPSG:4326
  1 arc-second with voids, two tiles; EU-DEM-like, EPSG:3035 25 m, smoother and shifted), without time dimension;
- ``DEMO_SENTINEL5P_L3``: Sentinel-5P L3-like daily grids (CO, NO2, CH4, QA; 0.05 degree over northern Italy,
  January 2023) with gaps where orbits and clouds leave them;
- ``parcels.geojson``: the parcels (id, crop, area) painted into the images.

Same size, same bytes of pixel data. Modules: ``sizes`` (what to generate), ``grid`` (where),
``phenology`` and ``landscape`` and ``parcels`` (the ground truth), ``clouds`` (the atmosphere per date),
``sentinel2`` and ``cog`` (the product), ``dem`` and ``sentinel5p`` (the other products), ``stac`` and
``stac_grids`` (metadata), ``generate`` (the pipeline).
Imports only numpy/rasterio/shapely/pystac and its own modules: nothing of the API or ``processes``.
"""

from __future__ import annotations

from backend.demo.generate import DEMO_COLLECTIONS, DEMO_S2_COLLECTION, DemoSummary, generate_demo
from backend.demo.sizes import DEMO_SIZES, DemoSize

__all__ = ["DEMO_COLLECTIONS", "DEMO_S2_COLLECTION", "DEMO_SIZES", "DemoSize", "DemoSummary", "generate_demo"]
