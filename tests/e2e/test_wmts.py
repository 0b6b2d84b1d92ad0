"""WMTS services end to end on the real server: the openEO Python client creates them, OWSLib and
GDAL (two independent WMTS clients, as QGIS and the web editor are) read the capabilities and fetch
tiles, which must be the XYZ tiles of the same graph; the capabilities document is checked element
by element, and bad requests get OGC exception reports."""

from __future__ import annotations

import io
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import openeo
import pytest
import rasterio
import requests
from owslib.wmts import WebMapTileService
from PIL import Image
from rasterio.windows import Window

from backend.maps.tiles import Tile, tile_of
from tests.e2e.test_xyz_services import EAST, NORTH, SOUTH, WEST, fetch, ndvi_grey

NS = {"wmts": "http://www.opengis.net/wmts/1.0", "ows": "http://www.opengis.net/ows/1.1",
      "xlink": "http://www.w3.org/1999/xlink"}
MATRIX_SET = "WebMercatorQuad"
CENTRE = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)


@pytest.fixture
def wmts_service(connection):
    service = connection.create_service(ndvi_grey(connection).flat_graph(), type="WMTS", title="NDVI & co")
    yield service
    service.delete_service()


def kvp_root(url: str) -> str:
    return url.rsplit("/1.0.0/WMTSCapabilities.xml", 1)[0]


def get_tile_params(layer: str, tile: Tile = CENTRE, **overrides: str) -> dict[str, str]:
    params = {"SERVICE": "WMTS", "REQUEST": "GetTile", "VERSION": "1.0.0", "LAYER": layer, "STYLE": "default",
              "FORMAT": "image/png", "TILEMATRIXSET": MATRIX_SET, "TILEMATRIX": str(tile.z),
              "TILEROW": str(tile.y), "TILECOL": str(tile.x)}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def exception_of(response: requests.Response) -> ET.Element:
    assert response.headers["Content-Type"].startswith("application/xml"), response.text[:300]
    report = ET.fromstring(response.content)
    assert report.tag == f"{{{NS['ows']}}}ExceptionReport" and report.get("version") == "1.0.0"
    exception = report.find("ows:Exception", NS)
    assert exception is not None and exception.findtext("ows:ExceptionText", namespaces=NS)
    return exception


def test_the_python_client_creates_a_wmts_whose_url_is_its_capabilities(connection, wmts_service):
    described = wmts_service.describe_service()
    assert described["type"] == "WMTS" and described["title"] == "NDVI & co"
    assert described["url"].endswith(f"/services/wmts/{wmts_service.service_id}/"
                                     f"{described['url'].split('/')[-3]}/1.0.0/WMTSCapabilities.xml")
    assert described["attributes"] == {"layers": [wmts_service.service_id]}
    assert described["process"]["process_graph"] == ndvi_grey(connection).flat_graph()
    assert wmts_service.service_id in [s["id"] for s in connection.list_services()]
    also = ndvi_grey(connection).tiled_viewing_service(type="wmts")
    assert also.describe_service()["type"] == "WMTS"
    also.delete_service()


def test_owslib_reads_the_capabilities(wmts_service):
    url = wmts_service.describe_service()["url"]
    layer_id = wmts_service.service_id
    client = WebMapTileService(url)
    assert client.identification.type == "OGC WMTS" and client.identification.version == "1.0.0"
    assert list(client.contents) == [layer_id]
    layer = client[layer_id]
    assert layer.title == "NDVI & co"
    assert layer.formats == ["image/png", "image/jpeg", "image/webp"]
    assert list(layer.styles) == ["default"] and layer.styles["default"]["isDefault"]
    assert layer.boundingBoxWGS84 == pytest.approx((WEST, SOUTH, EAST, NORTH))
    assert list(layer.tilematrixsetlinks) == [MATRIX_SET]
    assert {r["format"]: r["template"].rsplit("/tiles/", 1)[1] for r in layer.resourceURLs} == {
        "image/png": "{TileMatrix}/{TileCol}/{TileRow}.png", "image/jpeg": "{TileMatrix}/{TileCol}/{TileRow}.jpg",
        "image/webp": "{TileMatrix}/{TileCol}/{TileRow}.webp"}
    matrix_set = client.tilematrixsets[MATRIX_SET]
    assert matrix_set.crs == "urn:ogc:def:crs:EPSG::3857"
    assert list(matrix_set.tilematrix) == [str(z) for z in range(25)]
    for z, matrix in enumerate(matrix_set.tilematrix.values()):
        assert matrix.scaledenominator == 559082264.0287178 / 2 ** z
        assert matrix.topleftcorner == (-20037508.3427892, 20037508.3427892)
        assert (matrix.tilewidth, matrix.tileheight) == (256, 256)
        assert matrix.matrixwidth == matrix.matrixheight == 2 ** z
    assert {op.name for op in client.operations} == {"GetCapabilities", "GetTile"}
    assert not client.restonly  # KVP is advertised, so OWSLib fetches tiles by KVP


def test_an_owslib_tile_is_the_xyz_tile_of_the_same_graph(connection, wmts_service):
    client = WebMapTileService(wmts_service.describe_service()["url"])
    response = client.gettile(layer=wmts_service.service_id, tilematrixset=MATRIX_SET, tilematrix=str(CENTRE.z),
                              row=CENTRE.y, column=CENTRE.x, format="image/png")
    assert response.info()["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.read()))
    assert image.format == "PNG" and image.size == (256, 256) and image.mode in ("LA", "RGBA")
    pixels = np.asarray(image.convert("RGBA"))
    assert (pixels[..., 3] == 255).sum() > 10_000, "the tile shows the extent"

    xyz = connection.create_service(ndvi_grey(connection).flat_graph(), type="XYZ")
    assert (fetch(xyz.describe_service()["url"], CENTRE) == pixels).all()
    xyz.delete_service()
    template = next(r["template"] for r in client[wmts_service.service_id].resourceURLs
                    if r["format"] == "image/png")
    restful = template.replace("{TileMatrix}", "{z}").replace("{TileCol}", "{x}").replace("{TileRow}", "{y}")
    assert (fetch(restful, CENTRE) == pixels).all()


def test_gdal_reads_the_layer_as_a_raster(wmts_service):
    url = wmts_service.describe_service()["url"]
    with rasterio.Env(GDAL_ENABLE_WMS_CACHE="NO"), \
            rasterio.open(f"WMTS:{url},layer={wmts_service.service_id},tilematrix={CENTRE.z}") as dataset:
        assert dataset.crs.to_epsg() == 3857 and dataset.count == 4
        assert dataset.transform.a == pytest.approx(CENTRE.pixel_size)
        # GDAL cuts the raster to the layer's WGS84BoundingBox, on the tile matrix's pixel grid
        west, _, _, north = CENTRE.bounds_3857()
        column, row = ~dataset.transform @ (west, north)
        assert column == pytest.approx(round(column)) and row == pytest.approx(round(row))
        column, row = round(column), round(row)
        left, top = max(column, 0), max(row, 0)
        window = Window(left, top, min(column + 256, dataset.width) - left, min(row + 256, dataset.height) - top)
        through_gdal = np.moveaxis(dataset.read(window=window), 0, -1)
    expected = fetch(kvp_root(url) + "/tiles/{z}/{x}/{y}.png", CENTRE)
    part = expected[top - row:top - row + window.height, left - column:left - column + window.width]
    assert (part[..., 3] == 255).sum() > 10_000, "the part GDAL shows holds data"
    assert (through_gdal == part).all()


def _qgis_python() -> str | None:
    """Debian's Python when QGIS's bindings (``python3-qgis``, installed by ``.ci/run``) import in it."""
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        return None
    found = subprocess.run([python, "-c", "import qgis.core"], capture_output=True, timeout=60)
    return python if found.returncode == 0 else None


def test_qgis_opens_the_layer_and_draws_the_tiles(wmts_service, tmp_path):
    python = _qgis_python()
    if python is None:
        pytest.skip("QGIS's Python bindings (Debian's python3-qgis) are not installed; .ci/run installs them")
    url = wmts_service.describe_service()["url"]
    west, south, east, north = CENTRE.bounds_3857()
    picture = tmp_path / "qgis.png"
    script = Path(__file__).parents[1] / "qgis" / "open_wmts.py"
    run = subprocess.run([python, "-X", "faulthandler", str(script), url, wmts_service.service_id, str(west), str(south), str(east),
                          str(north), str(picture)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["valid"], answer["error"]
    assert answer["crs"] == "EPSG:3857" and answer["rendered"] and not answer["render_errors"]
    drawn = np.asarray(Image.open(picture).convert("RGBA")).astype(int)
    expected = fetch(kvp_root(url) + "/tiles/{z}/{x}/{y}.png", CENTRE).astype(int)
    shown = expected[..., 3] == 255
    assert shown.sum() > 10_000, "the tile shows the extent"
    both = shown & (drawn[..., 3] == 255)
    assert both.sum() > 0.95 * shown.sum(), "QGIS draws the layer where the tile holds data"
    # QGIS draws the tile of the matching tile matrix onto the same 256 × 256 grid, resampled by its
    # renderer: every pixel is the tile's pixel there or a neighbour's (within one grey level)
    grey = drawn[..., 0]
    near = np.zeros(grey.shape, dtype=bool)
    padded = np.pad(expected[..., 0], 1, mode="edge")
    for dy in range(3):
        for dx in range(3):
            near |= np.abs(grey - padded[dy:dy + 256, dx:dx + 256]) <= 1
    assert near[both].mean() > 0.99


def test_the_capabilities_document_has_the_wmts_structure(wmts_service):
    url = wmts_service.describe_service()["url"]
    response = requests.get(url, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{{{NS['wmts']}}}Capabilities" and root.get("version") == "1.0.0"
    assert [child.tag.split("}")[1] for child in root] == [
        "ServiceIdentification", "OperationsMetadata", "Contents", "ServiceMetadataURL"]
    assert root.find("wmts:ServiceMetadataURL", NS).get(f"{{{NS['xlink']}}}href") == url

    layers = root.findall("wmts:Contents/wmts:Layer", NS)
    assert len(layers) == 1
    layer = layers[0]
    assert [child.tag.split("}")[1] for child in layer] == [
        "Title", "Abstract", "WGS84BoundingBox", "Identifier", "Style", "Format", "Format", "Format",
        "TileMatrixSetLink", "ResourceURL", "ResourceURL", "ResourceURL"]  # the order of the schema
    assert layer.findtext("ows:Identifier", namespaces=NS) == wmts_service.service_id
    assert layer.findtext("wmts:TileMatrixSetLink/wmts:TileMatrixSet", namespaces=NS) == MATRIX_SET
    assert layer.findtext("ows:WGS84BoundingBox/ows:LowerCorner", namespaces=NS) == f"{WEST} {SOUTH}"

    matrix_set = root.find("wmts:Contents/wmts:TileMatrixSet", NS)
    assert matrix_set.findtext("ows:Identifier", namespaces=NS) == MATRIX_SET
    assert matrix_set.findtext("wmts:WellKnownScaleSet", namespaces=NS) == (
        "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible")
    zoom_0 = matrix_set.find("wmts:TileMatrix", NS)
    assert [child.tag.split("}")[1] for child in zoom_0] == [
        "Identifier", "ScaleDenominator", "TopLeftCorner", "TileWidth", "TileHeight", "MatrixWidth", "MatrixHeight"]
    assert zoom_0.findtext("wmts:TopLeftCorner", namespaces=NS) == "-20037508.3427892 20037508.3427892"
    assert float(zoom_0.findtext("wmts:ScaleDenominator", namespaces=NS)) == 559082264.0287178

    get_tile = root.find("ows:OperationsMetadata/ows:Operation[@name='GetTile']/ows:DCP/ows:HTTP/ows:Get", NS)
    assert get_tile.get(f"{{{NS['xlink']}}}href") == kvp_root(url) + "?"
    assert get_tile.findtext("ows:Constraint[@name='GetEncoding']/ows:AllowedValues/ows:Value",
                             namespaces=NS) == "KVP"


def test_kvp_and_the_web_editors_request_give_the_same_capabilities(wmts_service):
    url = wmts_service.describe_service()["url"]
    restful = requests.get(url, timeout=60).content
    # the web editor adds service=wmts&request=GetCapabilities to the service's URL
    assert requests.get(url, params={"service": "wmts", "request": "GetCapabilities"}, timeout=60).content == restful
    kvp = requests.get(kvp_root(url), params={"Service": "WMTS", "Request": "GetCapabilities"}, timeout=60)
    assert kvp.status_code == 200 and kvp.content == restful


@pytest.mark.parametrize(("media_type", "pil_format"), [("image/jpeg", "JPEG"), ("image/webp", "WEBP")])
def test_get_tile_in_jpeg_and_webp_with_caching_headers(wmts_service, media_type, pil_format):
    root = kvp_root(wmts_service.describe_service()["url"])
    response = requests.get(root, params=get_tile_params(wmts_service.service_id, FORMAT=media_type), timeout=120)
    assert response.status_code == 200 and response.headers["Content-Type"] == media_type
    image = Image.open(io.BytesIO(response.content))
    assert image.format == pil_format and image.size == (256, 256)
    assert np.asarray(image.convert("RGB")).any()
    etag = response.headers["ETag"]
    assert etag and "max-age" in response.headers["Cache-Control"]
    again = requests.get(root, params=get_tile_params(wmts_service.service_id, FORMAT=media_type),
                         headers={"If-None-Match": etag}, timeout=60)
    assert again.status_code == 304
    extension = {"image/jpeg": "jpg", "image/webp": "webp"}[media_type]
    restful = requests.get(f"{root}/tiles/{CENTRE.z}/{CENTRE.x}/{CENTRE.y}.{extension}", timeout=60)
    assert restful.headers["ETag"] == etag and restful.content == response.content


@pytest.mark.parametrize(("overrides", "status", "code", "locator"), [
    ({"SERVICE": None}, 400, "MissingParameterValue", "SERVICE"),
    ({"SERVICE": "WMS"}, 400, "InvalidParameterValue", "SERVICE"),
    ({"REQUEST": None}, 400, "MissingParameterValue", "REQUEST"),
    ({"REQUEST": "GetFeatureInfo"}, 501, "OperationNotSupported", "REQUEST"),
    ({"VERSION": "2.0.0"}, 400, "InvalidParameterValue", "VERSION"),
    ({"LAYER": None}, 400, "MissingParameterValue", "LAYER"),
    ({"LAYER": "roads"}, 400, "InvalidParameterValue", "LAYER"),
    ({"STYLE": "red"}, 400, "InvalidParameterValue", "STYLE"),
    ({"FORMAT": "image/gif"}, 400, "InvalidParameterValue", "FORMAT"),
    ({"TILEMATRIXSET": "EPSG:4326"}, 400, "InvalidParameterValue", "TILEMATRIXSET"),
    ({"TILEMATRIX": "25"}, 400, "InvalidParameterValue", "TILEMATRIX"),
    ({"TILEMATRIX": "z14"}, 400, "InvalidParameterValue", "TILEMATRIX"),
    ({"TILEROW": None}, 400, "MissingParameterValue", "TILEROW"),
    ({"TILEROW": str(2 ** 14)}, 400, "TileOutOfRange", "TILEROW"),
    ({"TILECOL": "-1"}, 400, "TileOutOfRange", "TILECOL"),
    ({"TILECOL": "one"}, 400, "InvalidParameterValue", "TILECOL"),
])
def test_a_bad_get_tile_gets_an_ows_exception_report(wmts_service, overrides, status, code, locator):
    root = kvp_root(wmts_service.describe_service()["url"])
    response = requests.get(root, params=get_tile_params(wmts_service.service_id, **overrides), timeout=60)
    assert response.status_code == status
    exception = exception_of(response)
    assert (exception.get("exceptionCode"), exception.get("locator")) == (code, locator)


def test_an_unspoken_version_fails_negotiation(wmts_service):
    root = kvp_root(wmts_service.describe_service()["url"])
    response = requests.get(root, params={"SERVICE": "WMTS", "REQUEST": "GetCapabilities",
                                          "ACCEPTVERSIONS": "2.0.0"}, timeout=60)
    assert response.status_code == 400
    assert exception_of(response).get("exceptionCode") == "VersionNegotiationFailed"


@pytest.mark.parametrize(("path", "code", "locator"), [
    ("14/{x}/{y}.gif", "InvalidParameterValue", "Format"),
    ("25/0/0.png", "InvalidParameterValue", "TILEMATRIX"),
    ("2/4/0.png", "TileOutOfRange", "TILECOL"),
    ("2/0/4.png", "TileOutOfRange", "TILEROW"),
])
def test_a_bad_restful_tile_gets_an_ows_exception_report(wmts_service, path, code, locator):
    root = kvp_root(wmts_service.describe_service()["url"])
    response = requests.get(f"{root}/tiles/{path.format(x=CENTRE.x, y=CENTRE.y)}", timeout=60)
    assert response.status_code == 400
    exception = exception_of(response)
    assert (exception.get("exceptionCode"), exception.get("locator")) == (code, locator)


def test_a_deleted_service_or_a_wrong_key_is_a_404_exception_report(connection):
    service = connection.create_service(ndvi_grey(connection).flat_graph(), type="WMTS")
    url = service.describe_service()["url"]
    key = url.split("/")[-3]
    wrong = requests.get(url.replace(key, key[:-1] + ("A" if key[-1] != "A" else "B")), timeout=60)
    assert wrong.status_code == 404 and exception_of(wrong).get("exceptionCode") == "NoApplicableCode"
    service.delete_service()
    for gone in (url, kvp_root(url) + f"/tiles/{CENTRE.z}/{CENTRE.x}/{CENTRE.y}.png"):
        response = requests.get(gone, timeout=60)
        assert response.status_code == 404
        assert exception_of(response).findtext("ows:ExceptionText", namespaces=NS).startswith("[NotFound]")


def test_a_tile_the_graph_fails_on_is_an_exception_report_with_the_openeo_reason(connection):
    raw = connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent={"west": WEST, "south": SOUTH,
                                     "east": EAST, "north": NORTH},
                                     temporal_extent=["2023-05-01", "2023-06-01"], bands=["B04"]).max_time()
    service = connection.create_service(raw.flat_graph(), type="WMTS")  # reflectances need a value_range
    root = kvp_root(service.describe_service()["url"])
    response = requests.get(root, params=get_tile_params(service.service_id), timeout=120)
    assert response.status_code == 400
    text = exception_of(response).findtext("ows:ExceptionText", namespaces=NS)
    assert text.startswith("[BadRequest]") and "value_range" in text
    service.delete_service()


def test_the_layer_extent_is_the_collections_without_a_literal_extent(connection, live_server):
    cube = connection.load_collection("DEMO_SENTINEL2_L2A", temporal_extent=["2023-05-01", "2023-06-01"],
                                      bands=["B04", "B08"]).ndvi().max_time()
    service = connection.create_service(cube.flat_graph(), type="WMTS", configuration={"value_range": [-1, 1]})
    layer = WebMapTileService(service.describe_service()["url"])[service.service_id]
    collection = requests.get(f"{live_server.api}/collections/DEMO_SENTINEL2_L2A", timeout=60).json()
    assert layer.boundingBoxWGS84 == pytest.approx(tuple(collection["extent"]["spatial"]["bbox"][0]))
    service.delete_service()


def test_bad_wmts_services_are_refused_with_the_right_code(connection):
    cube = ndvi_grey(connection)
    with pytest.raises(openeo.rest.OpenEoApiError) as unsupported:
        cube.tiled_viewing_service(type="WMS")
    assert unsupported.value.code == "ServiceUnsupported"
    with pytest.raises(openeo.rest.OpenEoApiError) as config:
        cube.tiled_viewing_service(type="WMTS", configuration={"layers": ["ndvi"]})
    assert config.value.code == "ServiceConfigUnsupported" and "version" in config.value.message
