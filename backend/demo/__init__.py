"""Deterministic demo data for Terracube: ``terracube demo [--size small|bench] [--out DIR]``.

One call draws a synthetic agricultural landscape in northern Italy and renders products from it into a
self-contained static STAC catalog:

- ``DEMO_SENTINEL2_L2A``: Sentinel-2 L2A-like COGs (B02 B03 B04 B08 at 10 m, B11 B12 SCL at 20 m) on two
  adjacent UTM 32N tiles, 24 dates of 2023, with crop-specific seasonal NDVI, clouds and cloud shadows;
- ``parcels.geojson``: the parcels (id, crop, area) painted into the images.

Same size, same bytes of pixel data. Modules: ``sizes`` (what to generate), ``grid`` (where),
``phenology`` and ``landscape`` and ``parcels`` (the ground truth), ``clouds`` (the atmosphere per date),
``sentinel2`` and ``cog`` (the product), ``stac`` (metadata), ``generate`` (the pipeline).
Imports only numpy/rasterio/shapely/pystac and its own modules: nothing of the API or ``processes``.
"""

from __future__ import annotations

from backend.demo.generate import DEMO_S2_COLLECTION, DemoSummary, generate_demo
from backend.demo.sizes import DEMO_SIZES, DemoSize

__all__ = ["DEMO_S2_COLLECTION", "DEMO_SIZES", "DemoSize", "DemoSummary", "generate_demo"]
