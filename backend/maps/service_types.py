"""The secondary web service types (``GET /service_types``): ``XYZ`` and ``WMTS``, their
configuration settings and the process parameters their graphs may use.

Both types serve the same WebMercatorQuad tiles, rendered the same way (``backend.maps.render``),
so they share the settings that shape a tile (colour map, value range, resampling, tile size) and
the process parameters that hand a graph the tile's extent (``backend.maps.xyz``). They differ in
how a client finds the tiles: an ``XYZ`` service's URL is a ``{z}/{x}/{y}`` template, a ``WMTS``
service's URL is its OGC capabilities document (``backend.maps.wmts``), which names the tiles.

Type names are matched without regard to case (the API's rule): ``wmts`` is ``WMTS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.maps.xyz import PROCESS_PARAMETERS, colouring
from processes.core.errors import (
    OpenEOError,
    ServiceConfigInvalid,
    ServiceConfigUnsupported,
    ServiceUnsupported,
)
from processes.formats.colour import COMMON_COLOUR_MAPS, ColouringError

RESAMPLING = ("nearest", "bilinear", "cubic")

TILE_CONFIGURATION: dict[str, dict[str, Any]] = {
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
"""The settings of every map tile service: how its tiles are drawn."""


@dataclass(frozen=True)
class ServiceType:
    name: str
    """The type's name in ``POST /services`` (``XYZ``, ``WMTS``)."""
    title: str
    description: str
    configuration: Mapping[str, Mapping[str, Any]]
    """Setting name → JSON Schema of its value, with ``description``, ``default`` and ``required``."""
    links: tuple[Mapping[str, str], ...] = field(default=())

    def document(self) -> dict[str, Any]:
        """The type's entry in ``GET /service_types``."""
        return {"title": self.title, "description": self.description,
                "configuration": {name: dict(spec) for name, spec in self.configuration.items()},
                "process_parameters": PROCESS_PARAMETERS, "links": [dict(link) for link in self.links]}


_PARAMETERS_NOTE = ("Each tile evaluates the service's process for the tile's extent (see the process "
                    "parameters; a literal spatial extent of a load clips the map) and colours its result of one "
                    "date (1 band grey or a colour map, 3 RGB, 4 RGBA).")

XYZ = ServiceType(
    name="XYZ",
    title="XYZ tiles",
    description="Web map tiles (WebMercatorQuad, EPSG:3857, 256 × 256 pixels) at `…/tiles/{z}/{x}/{y}.png` "
    "(`.jpg` and `.webp` give JPEG and WebP), loadable by any web map (Leaflet, OpenLayers, MapLibre) without "
    "credentials: the service's URL carries a secret key. " + _PARAMETERS_NOTE,
    configuration=TILE_CONFIGURATION,
    links=({"rel": "about", "href": "https://wiki.openstreetmap.org/wiki/Slippy_map_tilenames",
            "title": "Slippy map tile names"},),
)
WMTS = ServiceType(
    name="WMTS",
    title="OGC Web Map Tile Service",
    description="An OGC WMTS 1.0.0 (KVP and RESTful) with one layer on the WebMercatorQuad tile matrix set "
    "(well-known scale set GoogleMapsCompatible, EPSG:3857, 256 × 256 pixels; PNG, JPEG or WebP), for GIS "
    "clients such as QGIS, OpenLayers or the openEO Web Editor. The service's URL is its capabilities "
    "document (`…/1.0.0/WMTSCapabilities.xml`) and carries a secret key, so no credentials are needed. "
    + _PARAMETERS_NOTE,
    configuration={
        **TILE_CONFIGURATION,
        "version": {"description": "The WMTS version offered to clients of the service.", "type": "string",
                    "enum": ["1.0.0"], "default": "1.0.0", "required": False},
    },
    links=({"rel": "about", "href": "https://www.ogc.org/standards/wmts",
            "title": "OGC Web Map Tile Service Implementation Standard"},),
)

SERVICE_TYPES: dict[str, ServiceType] = {t.name: t for t in (XYZ, WMTS)}


def service_types_document() -> dict[str, Any]:
    return {name: service_type.document() for name, service_type in SERVICE_TYPES.items()}


def check_type(name: Any) -> str:
    """The type's name as listed (``wmts`` → ``WMTS``); ``ServiceUnsupported`` for any other."""
    for known in SERVICE_TYPES:
        if isinstance(name, str) and name.upper() == known:
            return known
    raise ServiceUnsupported(f"Service type '{name}' is not supported; GET /service_types lists the types: "
                             f"{', '.join(SERVICE_TYPES)}.")


def check_configuration(service_type: str, configuration: Any) -> dict[str, Any]:
    """The configuration of a service of ``service_type`` with its defaults filled in;
    ``ServiceConfigUnsupported`` for an unknown setting, ``ServiceConfigInvalid`` for a bad value."""
    settings = SERVICE_TYPES[service_type].configuration
    if configuration is None:
        configuration = {}
    if not isinstance(configuration, Mapping):
        raise ServiceConfigInvalid("The service 'configuration' must be a JSON object, e.g. {\"colormap\": \"viridis\"}.")
    unknown = sorted(set(configuration) - set(settings))
    if unknown:
        raise ServiceConfigUnsupported(f"Service parameter '{unknown[0]}' is not supported; {service_type} services "
                                       f"take {', '.join(settings)}.")
    resolved = {name: spec["default"] for name, spec in settings.items()}
    resolved.update({k: v for k, v in configuration.items() if v is not None})
    for name, spec in settings.items():
        value = resolved[name]
        if "enum" in spec and (isinstance(value, bool) or value not in spec["enum"]):
            raise _invalid(name, f"expected one of {', '.join(map(str, spec['enum']))}, got {value!r}.")
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


def _invalid(parameter: str, reason: str) -> OpenEOError:
    return ServiceConfigInvalid(f"The value passed for the service parameter '{parameter}' is invalid: {reason}")
