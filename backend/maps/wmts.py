"""OGC WMTS 1.0.0 for services of type ``WMTS``: the capabilities document, the KVP requests and
the OGC exception report.

A WMTS service has one layer (its identifier is the service's id) in one tile matrix set,
``WebMercatorQuad`` (EPSG:3857, the well-known scale set GoogleMapsCompatible, zooms 0–24, 256-pixel
tiles: tile matrix ``z``, column ``x``, row ``y`` is the XYZ tile ``z/x/y``), one style
(``default``) and the formats image/png, image/jpeg and image/webp. Its URLs, under
``/openeo/1.2/services/wmts/{id}/{key}`` (the key is the service's secret, as for XYZ tiles):

- ``…/1.0.0/WMTSCapabilities.xml``: the capabilities (RESTful). This is the service's ``url``:
  QGIS reads a URL ending in ``WMTSCapabilities.xml`` as it is, and the openEO Web Editor adds
  ``service=wmts&request=GetCapabilities`` to the service's URL, which this URL ignores;
- ``…?SERVICE=WMTS&REQUEST=GetCapabilities`` and ``…?SERVICE=WMTS&REQUEST=GetTile&LAYER=…`` (KVP);
  parameter names, and the values of SERVICE and REQUEST, are matched without regard to case;
- ``…/tiles/{TileMatrix}/{TileCol}/{TileRow}.png`` (``.jpg``, ``.webp``): the tiles (RESTful).

**Errors are OGC exception reports, not openEO error documents**, on every one of these URLs: a
WMTS client (QGIS, GDAL, OpenLayers, OWSLib) parses an ``ows:ExceptionReport`` and shows its text,
and knows nothing of openEO's JSON. The codes and statuses are those of WMTS 1.0.0 (OGC 07-057r7,
tables 20 and 28): ``MissingParameterValue``, ``InvalidParameterValue``, ``TileOutOfRange`` and
``VersionNegotiationFailed`` are 400, ``OperationNotSupported`` 501. A failure of the openEO side (an
unknown, deleted or disabled service; the graph failing on a tile) is ``NoApplicableCode`` with the
openEO error's status, and its text starts with the openEO error code, e.g. ``[ProcessGraphInvalid]
…``. The ``/openeo/1.2/services`` API itself and XYZ tiles answer openEO errors as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pyproj

from backend.maps.tile_graph import collection_bounds, literal_bounds
from backend.maps.tiles import MAX_ZOOM, Tile
from backend.maps.xyz import EXTENSION_OF, EXTENSIONS
from backend.services import Services
from processes.core.errors import OpenEOError
from processes.model.geometry import WGS84, BoundingBox

VERSION = "1.0.0"
TILE_MATRIX_SET = "WebMercatorQuad"
SUPPORTED_CRS = "urn:ogc:def:crs:EPSG::3857"
WELL_KNOWN_SCALE_SET = "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible"
SCALE_DENOMINATOR_0 = 559082264.0287178
"""The scale denominator of zoom 0 of GoogleMapsCompatible (OGC 07-057r7, annex E.4)."""
TOP_LEFT_CORNER = "-20037508.3427892 20037508.3427892"
STYLE = "default"
MAX_LATITUDE = 85.0511287798066
"""Where WebMercatorQuad ends, north and south."""
WORLD = (-180.0, -MAX_LATITUDE, 180.0, MAX_LATITUDE)
MEDIA_TYPE = "application/xml"
LOADS = ("load_collection", "load_stac")

NS_WMTS = "http://www.opengis.net/wmts/1.0"
NS_OWS = "http://www.opengis.net/ows/1.1"
NS_XLINK = "http://www.w3.org/1999/xlink"
_NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"


# --- errors -----------------------------------------------------------------------------------
class OwsException(Exception):
    """An OGC exception (``ows:Exception``) with its HTTP status."""

    def __init__(self, code: str, text: str, locator: str | None = None, status: int = 400):
        super().__init__(text)
        self.code, self.text, self.locator, self.status = code, text, locator, status

    @classmethod
    def from_openeo(cls, error: OpenEOError) -> OwsException:
        return cls("NoApplicableCode", f"[{error.code}] {error.message}", status=error.status)

    def report(self) -> str:
        """The ``ows:ExceptionReport`` document."""
        locator = f" locator={quoteattr(self.locator)}" if self.locator else ""
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<ows:ExceptionReport xmlns:ows="{NS_OWS}" xmlns:xsi="{_NS_XSI}" xsi:schemaLocation="{NS_OWS} '
                f'http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd" version="{VERSION}" xml:lang="en">\n'
                f'  <ows:Exception exceptionCode="{self.code}"{locator}>\n'
                f'    <ows:ExceptionText>{escape(self.text)}</ows:ExceptionText>\n'
                f'  </ows:Exception>\n'
                f'</ows:ExceptionReport>\n')


def _missing(name: str, example: str) -> OwsException:
    return OwsException("MissingParameterValue", f"The request needs the parameter {name}, e.g. {name}={example}.",
                        name)


def _invalid(name: str, value: str, expected: str) -> OwsException:
    return OwsException("InvalidParameterValue", f"{name}={value!r} is not valid: {expected}", name)


# --- KVP requests -----------------------------------------------------------------------------
@dataclass(frozen=True)
class GetTile:
    tile: Tile
    image_format: str
    """An encoding of ``processes.formats.image.ENCODINGS``: ``png``, ``jpeg``, ``webp``."""


def parse_kvp(args: Mapping[str, str], layer: str, media_types: Mapping[str, str]) -> GetTile | None:
    """The request of a KVP URL: None for GetCapabilities, else the tile of a GetTile; an
    :class:`OwsException` for anything else. ``media_types`` maps image formats to media types."""
    params = {name.upper(): value for name, value in args.items()}
    service = params.get("SERVICE")
    if not service:
        raise _missing("SERVICE", "WMTS")
    if service.upper() != "WMTS":
        raise _invalid("SERVICE", service, "this is a WMTS, SERVICE=WMTS.")
    request = params.get("REQUEST")
    if not request:
        raise _missing("REQUEST", "GetCapabilities")
    if request.lower() == "getcapabilities":
        versions = params.get("ACCEPTVERSIONS")
        if versions and VERSION not in [v.strip() for v in versions.split(",")]:
            raise OwsException("VersionNegotiationFailed", f"This WMTS speaks version {VERSION} only; "
                               f"ACCEPTVERSIONS was {versions!r}.", "AcceptVersions")
        return None
    if request.lower() != "gettile":
        raise OwsException("OperationNotSupported", f"REQUEST={request} is not supported; this WMTS answers "
                           "GetCapabilities and GetTile.", "REQUEST", status=501)
    return _get_tile(params, layer, media_types)


def _get_tile(params: Mapping[str, str], layer: str, media_types: Mapping[str, str]) -> GetTile:
    version = params.get("VERSION")
    if version and version != VERSION:
        raise _invalid("VERSION", version, f"this WMTS speaks version {VERSION}.")
    for name, example in (("LAYER", layer), ("FORMAT", "image/png"), ("TILEMATRIXSET", TILE_MATRIX_SET),
                          ("TILEMATRIX", "14"), ("TILEROW", "5850"), ("TILECOL", "8660")):
        if not params.get(name):
            raise _missing(name, example)
    if params["LAYER"] != layer:
        raise _invalid("LAYER", params["LAYER"], f"the layer of this service is {layer}.")
    if params.get("STYLE", STYLE) not in (STYLE, ""):
        raise _invalid("STYLE", params["STYLE"], f"the layer has one style, {STYLE}.")
    formats = {media_type: name for name, media_type in media_types.items()}
    if params["FORMAT"] not in formats:
        raise _invalid("FORMAT", params["FORMAT"], f"the formats are {', '.join(formats)}.")
    if params["TILEMATRIXSET"] != TILE_MATRIX_SET:
        raise _invalid("TILEMATRIXSET", params["TILEMATRIXSET"], f"the tile matrix set is {TILE_MATRIX_SET}.")
    return GetTile(tile_at(params["TILEMATRIX"], params["TILECOL"], params["TILEROW"]),
                   formats[params["FORMAT"]])


def rest_tile(matrix: str, col: str, file_name: str) -> GetTile:
    """The tile of a RESTful tile URL's last three parts (``14``, ``8660``, ``5850.png``)."""
    row, dot, extension = file_name.rpartition(".")
    image_format = EXTENSIONS.get(extension.lower()) if dot else None
    if image_format is None:
        raise _invalid("Format", file_name, f"tile URLs end in {', '.join('.' + e for e in EXTENSIONS)}.")
    return GetTile(tile_at(matrix, col, row), image_format)


def tile_at(matrix: str, col: str, row: str) -> Tile:
    """The tile of a tile matrix (zoom), column and row; ``InvalidParameterValue`` for a tile
    matrix that does not exist, ``TileOutOfRange`` for a column or row outside it."""
    if not (matrix.isdigit() and 0 <= int(matrix) <= MAX_ZOOM):
        raise _invalid("TILEMATRIX", matrix, f"the tile matrices of {TILE_MATRIX_SET} are 0–{MAX_ZOOM}.")
    z = int(matrix)
    for name, value in (("TILECOL", col), ("TILEROW", row)):
        if not value.lstrip("-").isdigit():
            raise _invalid(name, value, "a whole number is needed.")
        if not 0 <= int(value) < 2 ** z:
            raise OwsException("TileOutOfRange", f"{name}={value} is outside tile matrix {z}, whose columns and rows "
                               f"are 0–{2 ** z - 1}.", name)
    return Tile(z, int(col), int(row))


# --- capabilities -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Layer:
    identifier: str
    title: str
    abstract: str
    bounds: tuple[float, float, float, float]
    """``(west, south, east, north)`` in longitude and latitude."""


@dataclass(frozen=True)
class Endpoints:
    capabilities: str
    """The RESTful capabilities URL (``…/1.0.0/WMTSCapabilities.xml``)."""
    kvp: str
    """The URL KVP requests go to."""
    tiles: str
    """The RESTful tiles' URL, to which ``/{TileMatrix}/{TileCol}/{TileRow}.png`` is added."""


def capabilities(layer: Layer, endpoints: Endpoints, media_types: Mapping[str, str]) -> str:
    """The capabilities document of a service's one layer; ``media_types`` maps the image
    formats (``png``, …) to their media types."""
    kvp = quoteattr(endpoints.kvp + "?")
    operations = "".join(f"""
    <ows:Operation name="{name}">
      <ows:DCP><ows:HTTP><ows:Get xlink:href={kvp}>
        <ows:Constraint name="GetEncoding"><ows:AllowedValues><ows:Value>KVP</ows:Value></ows:AllowedValues></ows:Constraint>
      </ows:Get></ows:HTTP></ows:DCP>
    </ows:Operation>""" for name in ("GetCapabilities", "GetTile"))
    west, south, east, north = layer.bounds
    formats = "".join(f"\n      <Format>{escape(m)}</Format>" for m in media_types.values())
    resources = "".join(
        f"\n      <ResourceURL format={quoteattr(m)} resourceType=\"tile\" template="
        f"{quoteattr(endpoints.tiles + '/{TileMatrix}/{TileCol}/{TileRow}.' + EXTENSION_OF[name])}/>"
        for name, m in media_types.items())
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="{NS_WMTS}" xmlns:ows="{NS_OWS}" xmlns:xlink="{NS_XLINK}" xmlns:xsi="{_NS_XSI}" \
xsi:schemaLocation="{NS_WMTS} http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd" version="{VERSION}">
  <ows:ServiceIdentification>
    <ows:Title>{escape(layer.title)}</ows:Title>
    <ows:Abstract>{escape(layer.abstract)}</ows:Abstract>
    <ows:ServiceType>OGC WMTS</ows:ServiceType>
    <ows:ServiceTypeVersion>{VERSION}</ows:ServiceTypeVersion>
  </ows:ServiceIdentification>
  <ows:OperationsMetadata>{operations}
  </ows:OperationsMetadata>
  <Contents>
    <Layer>
      <ows:Title>{escape(layer.title)}</ows:Title>
      <ows:Abstract>{escape(layer.abstract)}</ows:Abstract>
      <ows:WGS84BoundingBox crs="urn:ogc:def:crs:OGC:2:84">
        <ows:LowerCorner>{west!r} {south!r}</ows:LowerCorner>
        <ows:UpperCorner>{east!r} {north!r}</ows:UpperCorner>
      </ows:WGS84BoundingBox>
      <ows:Identifier>{escape(layer.identifier)}</ows:Identifier>
      <Style isDefault="true"><ows:Identifier>{STYLE}</ows:Identifier></Style>{formats}
      <TileMatrixSetLink><TileMatrixSet>{TILE_MATRIX_SET}</TileMatrixSet></TileMatrixSetLink>{resources}
    </Layer>
{tile_matrix_set()}
  </Contents>
  <ServiceMetadataURL xlink:href={quoteattr(endpoints.capabilities)}/>
</Capabilities>
"""


def tile_matrix_set() -> str:
    """``WebMercatorQuad`` as a ``TileMatrixSet`` element: one tile matrix per zoom 0–24."""
    matrices = "".join(f"""
      <TileMatrix>
        <ows:Identifier>{z}</ows:Identifier>
        <ScaleDenominator>{SCALE_DENOMINATOR_0 / 2 ** z!r}</ScaleDenominator>
        <TopLeftCorner>{TOP_LEFT_CORNER}</TopLeftCorner>
        <TileWidth>256</TileWidth>
        <TileHeight>256</TileHeight>
        <MatrixWidth>{2 ** z}</MatrixWidth>
        <MatrixHeight>{2 ** z}</MatrixHeight>
      </TileMatrix>""" for z in range(MAX_ZOOM + 1))
    return f"""    <TileMatrixSet>
      <ows:Identifier>{TILE_MATRIX_SET}</ows:Identifier>
      <ows:SupportedCRS>{SUPPORTED_CRS}</ows:SupportedCRS>
      <WellKnownScaleSet>{WELL_KNOWN_SCALE_SET}</WellKnownScaleSet>{matrices}
    </TileMatrixSet>"""


# --- the layer's extent -----------------------------------------------------------------------
def layer_bounds(services: Services, process: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """Where the layer has data, in longitude and latitude: the union of the literal spatial
    extents of the graph's top-level loads, or of their collections' extents where a load has none
    (or takes it from a parameter); the whole of WebMercatorQuad where neither is known."""
    nodes = process.get("process_graph")
    boxes = []
    for node in (nodes.values() if isinstance(nodes, Mapping) else ()):
        if not isinstance(node, Mapping) or node.get("process_id") not in LOADS:
            continue
        arguments = node.get("arguments") or {}
        box = _literal_bounds(arguments.get("spatial_extent"))
        if box is None and node["process_id"] == "load_collection":
            box = collection_bounds(services, arguments.get("id"))
        if box is None:
            return WORLD  # a load of unknown extent: it may be anywhere
        boxes.append(box)
    if not boxes:
        return WORLD
    west, south, east, north = np.array(boxes).T
    return (max(float(west.min()), -180.0), max(float(south.min()), -MAX_LATITUDE),
            min(float(east.max()), 180.0), min(float(north.max()), MAX_LATITUDE))


def _literal_bounds(extent: Any) -> tuple[float, float, float, float] | None:
    """The longitude/latitude box around a literal extent (bounding box or GeoJSON); None for
    none, one taken from a parameter, or one the load would refuse anyway."""
    try:
        literal = literal_bounds(extent)
        return None if literal is None else BoundingBox(*literal[0], literal[1]).to_crs(WGS84).bounds
    except (OpenEOError, pyproj.exceptions.ProjError):
        return None
