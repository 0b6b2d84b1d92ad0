"""What every map tile of a service (``XYZ`` and ``WMTS`` alike) hands its graph and how it is drawn:
the tile's extent as process parameters, the colouring from the service's configuration, and the
image formats a tile URL's extension names.

**How a tile's extent reaches the graph** (the convention of the openEO API's service type example
and of titiler-openeo, which the openEO web editor's XYZ maps use):

- the process parameters ``spatial_extent_west``, ``_south``, ``_east``, ``_north`` (longitude and
  latitude, as the openEO Sentinel Hub driver hands them) and ``spatial_extent_crs`` (4326) hold the
  tile's bounds, and ``spatial_extent`` holds them as one bounding-box object, for graphs that load
  with ``{"from_parameter": …}`` (degrees, so that a graph leaving out ``crs`` — load_collection's
  default is 4326 — still loads the right place);
- a ``load_collection``/``load_stac`` of the graph's top level without a spatial extent loads the
  tile's; one with a literal extent (what the Python client's ``cube.tiled_viewing_service()``
  sends) loads the tile's intersected with it: the literal extent clips the map, and a tile outside
  it is transparent. A GeoJSON extent clips by its bounding box.

Every load gets the tile's bounds plus a margin of a few of the collection's pixels, so that pixels
straddling the tile's edge and the neighbours a bilinear or cubic warp needs are there.

The types, their configuration settings and their checks are in ``backend.maps.service_types``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processes.core.errors import BadRequest
from processes.formats.colour import Colouring

_COORDINATE = {"type": "number"}
PROCESS_PARAMETERS: list[dict[str, Any]] = [
    *({"name": f"spatial_extent_{side}",
       "description": f"The {side} edge of the tile being drawn (plus a margin of a few pixels), in degrees "
       "of longitude or latitude (`spatial_extent_crs` is 4326).",
       "schema": _COORDINATE} for side in ("west", "south", "east", "north")),
    {"name": "spatial_extent_crs", "description": "The coordinate reference system of the tile's edges: 4326 "
     "(the tiles themselves are WebMercatorQuad, EPSG:3857).",
     "schema": {"type": "integer", "subtype": "epsg-code", "minimum": 1000}},
    {"name": "spatial_extent", "description": "The tile being drawn as one bounding box (`west`, `south`, `east`, "
     "`north`, `crs`: 4326), for `load_collection(spatial_extent=…)`.",
     "schema": {"type": "object", "subtype": "bounding-box"}},
]

EXTENSIONS: dict[str, str] = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}
"""A tile URL's file extension → the image format it asks for (an encoding of ``processes.formats.image.ENCODINGS``)."""
EXTENSION_OF: dict[str, str] = {"png": "png", "jpeg": "jpg", "webp": "webp"}
"""An image format → the extension of its tile URLs."""


def image_format_of(file_name: str) -> tuple[str, str]:
    """``(stem, image format)`` of a tile URL's last part (``"5.png"`` → ``("5", "png")``); a
    ``BadRequest`` naming the extensions there are otherwise."""
    stem, dot, extension = file_name.rpartition(".")
    image_format = EXTENSIONS.get(extension.lower()) if dot else None
    if image_format is None:
        raise BadRequest(f"Tile '{file_name}': map tiles end in {', '.join('.' + e for e in EXTENSIONS)} "
                         "(PNG, JPEG or WebP), e.g. …/tiles/14/8660/5850.png.")
    return stem, image_format


def colouring(configuration: Mapping[str, Any]) -> Colouring:
    return Colouring.from_options({"colormap": configuration.get("colormap"),
                                   "value_range": configuration.get("value_range")})
