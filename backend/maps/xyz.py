"""The ``XYZ`` secondary web service type: its configuration and the parameters a graph may use.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processes.core.errors import (
    OpenEOError,
    ServiceConfigInvalid,
    ServiceConfigUnsupported,
    ServiceUnsupported,
)
from processes.formats.colour import COMMON_COLOUR_MAPS, Colouring, ColouringError

SERVICE_TYPE = "XYZ"
RESAMPLING = ("nearest", "bilinear", "cubic")

CONFIGURATION: dict[str, dict[str, Any]] = {
    "colormap": {
        "description": "Colour map of a result with one band, by its matplotlib name "
        f"({', '.join(COMMON_COLOUR_MAPS)}, …; `_r` reverses one). The band's level (0–255, after "
        "value_range) picks the map's colour. Without it one band is grey; three bands are drawn as "
        "red, green, blue and four as red, green, blue, alpha.",
        "type": ["string", "null"],
        "default": None,
        "required": False,
        "examples": ["viridis", "RdYlGn", "Greys"],
    },
    "value_range": {
        "description": "`[min, max]`: values are scaled linearly from min–max to 0–255 and clipped to the ends "
        "(as `linear_scale_range(x, min, max, 0, 255)`), e.g. `[0, 3000]` for Sentinel-2 reflectances or "
        "`[-1, 1]` for NDVI. Without it the values are drawn as they are and must lie in 0–255.",
        "type": ["array", "null"],
        "items": {"type": "number"},
        "minItems": 2,
        "maxItems": 2,
        "default": None,
        "required": False,
    },
    "resampling": {
        "description": "How the result is warped onto the tile's EPSG:3857 pixels.",
        "type": "string",
        "enum": list(RESAMPLING),
        "default": "nearest",
        "required": False,
    },
    "tile_size": {
        "description": "Width and height of a tile in pixels (WebMercatorQuad).",
        "type": "integer",
        "enum": [256],
        "default": 256,
        "required": False,
    },
}

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


def service_types_document() -> dict[str, Any]:
    return {
        SERVICE_TYPE: {
            "title": "XYZ tiles",
            "description": "Web map tiles (WebMercatorQuad, EPSG:3857, 256 × 256 PNG with transparency) at "
            "`…/tiles/{z}/{x}/{y}.png`, loadable by any web map (Leaflet, OpenLayers, MapLibre) without "
            "credentials: the service's URL carries a secret key. Each tile evaluates the service's process "
            "for the tile's extent (see the process parameters; a literal spatial extent of a load clips the "
            "map) and colours its result of one date (1 band grey or a colour map, 3 RGB, 4 RGBA).",
            "configuration": CONFIGURATION,
            "process_parameters": PROCESS_PARAMETERS,
            "links": [],
        }
    }


def check_type(service_type: Any) -> str:
    if not isinstance(service_type, str) or service_type.upper() != SERVICE_TYPE:
        raise ServiceUnsupported(f"Service type '{service_type}' is not supported; GET /service_types lists "
                                 f"the types: {SERVICE_TYPE}.")
    return SERVICE_TYPE


def check_configuration(configuration: Any) -> dict[str, Any]:
    """The configuration with its defaults filled in; ``ServiceConfigUnsupported`` for an unknown
    setting, ``ServiceConfigInvalid`` for a bad value."""
    if configuration is None:
        configuration = {}
    if not isinstance(configuration, Mapping):
        raise ServiceConfigInvalid("The service 'configuration' must be a JSON object, e.g. {\"colormap\": \"viridis\"}.")
    unknown = sorted(set(configuration) - set(CONFIGURATION))
    if unknown:
        raise ServiceConfigUnsupported(f"Service parameter '{unknown[0]}' is not supported; XYZ services take "
                                       f"{', '.join(CONFIGURATION)}.")
    resolved = {name: spec["default"] for name, spec in CONFIGURATION.items()}
    resolved.update({k: v for k, v in configuration.items() if v is not None})
    if resolved["resampling"] not in RESAMPLING:
        raise _invalid("resampling", f"expected one of {', '.join(RESAMPLING)}, got {resolved['resampling']!r}.")
    if resolved["tile_size"] != 256 or isinstance(resolved["tile_size"], bool):
        raise _invalid("tile_size", f"tiles are 256 pixels wide, got {resolved['tile_size']!r}.")
    if resolved["colormap"] is not None and not isinstance(resolved["colormap"], str):
        raise _invalid("colormap", f"expected a colour map name, got {resolved['colormap']!r}.")
    try:
        colouring(resolved)
    except ColouringError as err:
        parameter = "value_range" if "value range" in str(err) else "colormap"
        raise _invalid(parameter, str(err)) from None
    if resolved["value_range"] is not None:
        resolved["value_range"] = [float(v) for v in resolved["value_range"]]
    return resolved


def colouring(configuration: Mapping[str, Any]) -> Colouring:
    return Colouring.from_options({"colormap": configuration.get("colormap"),
                                   "value_range": configuration.get("value_range")})


def _invalid(parameter: str, reason: str) -> OpenEOError:
    return ServiceConfigInvalid(f"The value passed for the service parameter '{parameter}' is invalid: {reason}")
