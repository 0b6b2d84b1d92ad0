"""Secondary web services through the Flask app: /service_types, /services CRUD, ownership, validation,
and the public XYZ tile route (status codes, PNG/JPEG/WebP, revocation, caching headers, logs).
The WMTS protocol itself is tested with real WMTS clients in ``tests/e2e/test_wmts.py``."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from backend.maps.tiles import tile_of

API = "/openeo/1.2"
WEST, SOUTH, EAST, NORTH = 10.33, 45.47, 10.36, 45.49  # inside DEMO_SENTINEL2_L2A


def _headers(client, user: str, password: str) -> dict[str, str]:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    token = client.get(f"{API}/credentials/basic", headers={"Authorization": f"Basic {basic}"}).json["access_token"]
    return {"Authorization": f"Bearer basic//{token}"}


@pytest.fixture
def alice(client) -> dict[str, str]:
    return _headers(client, "alice", "alice-secret")


def ndvi_process(extent: dict | None = None, scaled: bool = True) -> dict:
    load_extent = extent if extent is not None else {"west": WEST, "south": SOUTH, "east": EAST, "north": NORTH}
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": "DEMO_SENTINEL2_L2A", "spatial_extent": load_extent,
            "temporal_extent": ["2023-05-01", "2023-06-01"], "bands": ["B04", "B08"]}},
        "ndvi": {"process_id": "ndvi", "arguments": {"data": {"from_node": "load"}}},
        "max": {"process_id": "reduce_dimension", "arguments": {
            "data": {"from_node": "ndvi"}, "dimension": "t", "reducer": {"process_graph": {
                "m": {"process_id": "max", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}}}},
    }
    last = "max"
    if scaled:
        graph["scale"] = {"process_id": "apply", "arguments": {"data": {"from_node": "max"}, "process": {
            "process_graph": {"s": {"process_id": "linear_scale_range", "arguments": {
                "x": {"from_parameter": "x"}, "inputMin": -1, "inputMax": 1, "outputMin": 0, "outputMax": 255},
                "result": True}}}}}
        last = "scale"
    graph[last]["result"] = True
    return {"process_graph": graph}


def create(client, headers, **body) -> str:
    body = {"type": "XYZ", "process": ndvi_process(), **body}
    response = client.post(f"{API}/services", json=body, headers=headers)
    assert response.status_code == 201, response.json
    service_id = response.headers["OpenEO-Identifier"]
    assert response.headers["Location"].endswith(f"/services/{service_id}")
    return service_id


def tile_path(client, headers, service_id: str) -> str:
    url = client.get(f"{API}/services/{service_id}", headers=headers).json["url"]
    return url.split("http://localhost", 1)[1]


def png(response) -> np.ndarray:
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (256, 256) and image.mode in ("LA", "RGBA")  # with alpha; grey tiles as LA
    return np.asarray(image.convert("RGBA"))


def test_service_types_lists_xyz_and_wmts_with_configuration_and_process_parameters(client):
    types = client.get(f"{API}/service_types").json
    assert list(types) == ["XYZ", "WMTS"]
    tile_settings = {"colormap", "value_range", "resampling", "tile_size"}
    assert set(types["XYZ"]["configuration"]) == tile_settings
    assert set(types["WMTS"]["configuration"]) == tile_settings | {"version"}
    assert types["WMTS"]["configuration"]["version"]["enum"] == ["1.0.0"]
    for service_type in types.values():
        assert service_type["title"] and service_type["description"]
        assert all("description" in spec for spec in service_type["configuration"].values())
        assert service_type["configuration"]["resampling"]["default"] == "nearest"
        names = [p["name"] for p in service_type["process_parameters"]]
        assert names[:5] == ["spatial_extent_west", "spatial_extent_south", "spatial_extent_east",
                             "spatial_extent_north", "spatial_extent_crs"]
        assert all("schema" in p and "description" in p for p in service_type["process_parameters"])
        assert all(link["href"].startswith("https://") for link in service_type["links"])


def test_capabilities_list_the_service_endpoints(client):
    endpoints = {e["path"]: set(e["methods"]) for e in client.get(f"{API}/").json["endpoints"]}
    assert endpoints["/services"] == {"GET", "POST"}
    assert endpoints["/services/{service_id}"] == {"GET", "PATCH", "DELETE"}
    assert endpoints["/services/{service_id}/logs"] == {"GET"}
    assert endpoints["/service_types"] == {"GET"}


def test_create_list_describe_patch_delete(client, auth_headers):
    service_id = create(client, auth_headers, title="NDVI", configuration={"colormap": "RdYlGn"})
    listed = client.get(f"{API}/services", headers=auth_headers).json
    assert [s["id"] for s in listed["services"]] == [service_id] and listed["links"] == []
    described = client.get(f"{API}/services/{service_id}", headers=auth_headers).json
    assert described["title"] == "NDVI" and described["type"] == "XYZ" and described["enabled"] is True
    assert described["configuration"]["colormap"] == "RdYlGn"
    assert described["configuration"]["resampling"] == "nearest"
    assert described["url"].endswith("/tiles/{z}/{x}/{y}.png") and described["attributes"] == {}
    assert described["process"]["process_graph"]["load"]["process_id"] == "load_collection"

    assert client.patch(f"{API}/services/{service_id}", json={"title": "NDVI max", "enabled": False},
                        headers=auth_headers).status_code == 204
    described = client.get(f"{API}/services/{service_id}", headers=auth_headers).json
    assert described["title"] == "NDVI max" and described["enabled"] is False

    assert client.delete(f"{API}/services/{service_id}", headers=auth_headers).status_code == 204
    missing = client.get(f"{API}/services/{service_id}", headers=auth_headers)
    assert missing.status_code == 404 and missing.json["code"] == "ServiceNotFound"


def test_services_need_credentials(client):
    assert client.get(f"{API}/services").status_code == 401


def test_another_user_can_not_see_or_touch_a_service(client, auth_headers, alice):
    service_id = create(client, auth_headers)
    assert client.get(f"{API}/services", headers=alice).json["services"] == []
    for method, path, body in [("get", "", None), ("patch", "", {"title": "mine"}), ("delete", "", None),
                               ("get", "/logs", None)]:
        response = getattr(client, method)(f"{API}/services/{service_id}{path}", json=body, headers=alice)
        assert response.status_code == 404 and response.json["code"] == "ServiceNotFound", (method, path)
    assert client.get(f"{API}/services/{service_id}", headers=auth_headers).json["title"] is None


def test_a_wmts_service_has_its_capabilities_as_url_and_its_layer_as_attribute(client, auth_headers):
    service_id = create(client, auth_headers, type="wmts", title="NDVI")  # type names ignore case
    described = client.get(f"{API}/services/{service_id}", headers=auth_headers).json
    assert described["type"] == "WMTS" and described["configuration"]["version"] == "1.0.0"
    key = described["url"].split("/")[-3]
    assert described["url"] == f"http://localhost{API}/services/wmts/{service_id}/{key}/1.0.0/WMTSCapabilities.xml"
    assert described["attributes"] == {"layers": [service_id]}
    listed = client.get(f"{API}/services", headers=auth_headers).json["services"]
    assert [(s["type"], s["url"]) for s in listed] == [("WMTS", described["url"])]
    capabilities = client.get(described["url"].split("http://localhost", 1)[1])
    assert capabilities.status_code == 200 and capabilities.mimetype == "application/xml"
    assert f"<ows:Identifier>{service_id}</ows:Identifier>" in capabilities.text


@pytest.mark.parametrize(("body", "code"), [
    ({"type": "WMS"}, "ServiceUnsupported"),
    ({"type": None}, "ServiceUnsupported"),
    ({"configuration": {"version": "1.0.0"}}, "ServiceConfigUnsupported"),
    ({"type": "WMTS", "configuration": {"version": "2.0.0"}}, "ServiceConfigInvalid"),
    ({"configuration": {"opacity": 0.5}}, "ServiceConfigUnsupported"),
    ({"configuration": {"colormap": "viridiss"}}, "ServiceConfigInvalid"),
    ({"configuration": {"value_range": [1]}}, "ServiceConfigInvalid"),
    ({"configuration": {"value_range": [5, 1]}}, "ServiceConfigInvalid"),
    ({"configuration": {"resampling": "lanczos"}}, "ServiceConfigInvalid"),
    ({"configuration": {"tile_size": 512}}, "ServiceConfigInvalid"),
    ({"process": {}}, "ProcessGraphMissing"),
])
def test_creation_refuses_bad_services(client, auth_headers, body, code):
    response = client.post(f"{API}/services", json={"type": "XYZ", "process": ndvi_process(), **body},
                           headers=auth_headers)
    assert response.status_code == 400 and response.json["code"] == code, response.json
    assert client.get(f"{API}/services", headers=auth_headers).json["services"] == []


def test_creation_refuses_results_that_are_not_raster_cubes(client, auth_headers):
    number = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
    response = client.post(f"{API}/services", json={"type": "XYZ", "process": number}, headers=auth_headers)
    assert response.status_code == 400 and "raster data cube" in response.json["message"]

    vector = ndvi_process()
    vector["process_graph"]["scale"].pop("result")
    vector["process_graph"]["agg"] = {"process_id": "aggregate_spatial", "result": True, "arguments": {
        "data": {"from_node": "scale"}, "reducer": {"process_graph": {"m": {
            "process_id": "mean", "arguments": {"data": {"from_parameter": "data"}}, "result": True}}},
        "geometries": {"type": "Polygon", "coordinates": [[[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH],
                                                           [WEST, SOUTH]]]}}}
    response = client.post(f"{API}/services", json={"type": "XYZ", "process": vector}, headers=auth_headers)
    assert response.status_code == 400 and "vector cube" in response.json["message"], response.json

    many_dates = ndvi_process(scaled=False)
    graph = many_dates["process_graph"]
    del graph["max"]
    graph["ndvi"]["result"] = True
    response = client.post(f"{API}/services", json={"type": "XYZ", "process": many_dates}, headers=auth_headers)
    assert response.status_code == 400 and "dates" in response.json["message"], response.json

    colour_map_on_rgb = ndvi_process(extent={}, scaled=False)  # no extent: checked at the collection's centre
    graph = colour_map_on_rgb["process_graph"]
    graph["load"]["arguments"].update(spatial_extent=None, bands=["B04", "B03", "B02"])
    del graph["ndvi"]
    graph["max"]["arguments"]["data"] = {"from_node": "load"}
    response = client.post(f"{API}/services", json={"type": "XYZ", "process": colour_map_on_rgb,
                                                    "configuration": {"colormap": "viridis"}}, headers=auth_headers)
    assert response.status_code == 400 and response.json["code"] == "ServiceConfigInvalid", response.json


def test_tiles_without_credentials_are_pngs_with_alpha_and_revocable(client, auth_headers):
    service_id = create(client, auth_headers, configuration={"colormap": "RdYlGn"})
    path = tile_path(client, auth_headers, service_id)
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    first = client.get(path.format(z=tile.z, x=tile.x, y=tile.y))
    pixels = png(first)
    assert (pixels[..., 3] == 255).any(), "the tile shows data"
    assert first.headers["ETag"] and "max-age" in first.headers["Cache-Control"]
    again = client.get(path.format(z=tile.z, x=tile.x, y=tile.y), headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304

    far = tile_of(-60.0, -30.0, 14)  # no data there: a transparent tile, not an error
    assert not png(client.get(path.format(z=far.z, x=far.x, y=far.y)))[..., 3].any()

    for z, x, y in [(14, 2 ** 14, 0), (3, -1, 0), (25, 0, 0), ("a", 0, 0)]:
        response = client.get(path.format(z=z, x=x, y=y))
        assert response.status_code == 400 and response.json["code"] == "BadRequest", (z, x, y)

    wrong_key = path.replace(f"/{service_id}/", f"/{service_id}/x").format(z=tile.z, x=tile.x, y=tile.y)
    assert client.get(wrong_key).status_code == 404

    client.patch(f"{API}/services/{service_id}", json={"enabled": False}, headers=auth_headers)
    assert client.get(path.format(z=tile.z, x=tile.x, y=tile.y)).status_code == 404
    client.patch(f"{API}/services/{service_id}", json={"enabled": True}, headers=auth_headers)
    assert client.get(path.format(z=tile.z, x=tile.x, y=tile.y)).status_code == 200
    client.delete(f"{API}/services/{service_id}", headers=auth_headers)
    assert client.get(path.format(z=tile.z, x=tile.x, y=tile.y)).status_code == 404


@pytest.mark.parametrize(("extension", "media_type", "pil_format"), [
    ("png", "image/png", "PNG"), ("jpg", "image/jpeg", "JPEG"), ("jpeg", "image/jpeg", "JPEG"),
    ("webp", "image/webp", "WEBP"), ("PNG", "image/png", "PNG"),
])
def test_tiles_come_as_png_jpeg_and_webp_with_caching_headers(client, auth_headers, extension, media_type,
                                                              pil_format):
    service_id = create(client, auth_headers, configuration={"colormap": "viridis"})
    path = tile_path(client, auth_headers, service_id).replace(".png", f".{extension}")
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    response = client.get(path.format(z=tile.z, x=tile.x, y=tile.y))
    assert response.status_code == 200 and response.mimetype == media_type
    image = Image.open(io.BytesIO(response.data))
    assert image.format == pil_format and image.size == (256, 256)
    assert np.asarray(image.convert("RGB")).any(), "the tile shows data"
    assert response.headers["ETag"] and "max-age" in response.headers["Cache-Control"]
    again = client.get(path.format(z=tile.z, x=tile.x, y=tile.y), headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == response.headers["ETag"]


def test_each_format_of_a_tile_has_its_own_etag(client, auth_headers):
    service_id = create(client, auth_headers)
    path = tile_path(client, auth_headers, service_id)
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    etags = {client.get(path.replace(".png", f".{e}").format(z=tile.z, x=tile.x, y=tile.y)).headers["ETag"]
             for e in ("png", "jpg", "webp")}
    assert len(etags) == 3


@pytest.mark.parametrize("file_name", ["5850.gif", "5850", "5850.", "5850.png.tif"])
def test_a_tile_of_an_unknown_format_is_a_bad_request_naming_the_formats(client, auth_headers, file_name):
    service_id = create(client, auth_headers)
    path = tile_path(client, auth_headers, service_id).rsplit("/", 1)[0].format(z=14, x=8660, y=0)
    response = client.get(f"{path}/{file_name}")
    assert response.status_code == 400 and response.json["code"] == "BadRequest", response.json
    assert ".png, .jpg, .jpeg, .webp" in response.json["message"]


def test_the_tiles_of_one_type_are_not_served_under_the_other(client, auth_headers):
    xyz = create(client, auth_headers)
    wmts = create(client, auth_headers, type="WMTS")
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    xyz_path = tile_path(client, auth_headers, xyz).format(z=tile.z, x=tile.x, y=tile.y)
    assert client.get(xyz_path.replace("/services/xyz/", "/services/wmts/")).status_code == 404
    wmts_root = tile_path(client, auth_headers, wmts).rsplit("/1.0.0/", 1)[0]
    response = client.get(f"{wmts_root}/tiles/{tile.z}/{tile.x}/{tile.y}.png".replace("/services/wmts/",
                                                                                    "/services/xyz/"))
    assert response.status_code == 404 and response.json["code"] == "NotFound"


def test_patching_the_configuration_changes_the_tiles(client, auth_headers):
    service_id = create(client, auth_headers)
    path = tile_path(client, auth_headers, service_id)
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    grey = png(client.get(path.format(z=tile.z, x=tile.x, y=tile.y)))
    assert (grey[..., 0] == grey[..., 1]).all()
    assert client.patch(f"{API}/services/{service_id}", json={"configuration": {"colormap": "viridis"}},
                        headers=auth_headers).status_code == 204
    coloured = png(client.get(path.format(z=tile.z, x=tile.x, y=tile.y)))
    assert (coloured[..., 0] != coloured[..., 1]).any()
    bad = client.patch(f"{API}/services/{service_id}", json={"configuration": {"colormap": 3}}, headers=auth_headers)
    assert bad.status_code == 400 and bad.json["code"] == "ServiceConfigInvalid"


def test_patching_the_process_changes_the_tiles(client, auth_headers):
    service_id = create(client, auth_headers)
    path = tile_path(client, auth_headers, service_id)
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    before = png(client.get(path.format(z=tile.z, x=tile.x, y=tile.y)))
    inverted = ndvi_process()
    scale = inverted["process_graph"]["scale"]["arguments"]["process"]["process_graph"]["s"]["arguments"]
    scale.update(outputMin=255, outputMax=0)
    assert client.patch(f"{API}/services/{service_id}", json={"process": inverted},
                        headers=auth_headers).status_code == 204
    after = png(client.get(path.format(z=tile.z, x=tile.x, y=tile.y)))
    shown = before[..., 3] == 255
    assert shown.any() and (after[..., 3] == before[..., 3]).all()
    assert (np.abs(after[..., 0][shown].astype(int) + before[..., 0][shown] - 255) <= 1).all()


def test_a_graph_using_the_tile_parameters(client, auth_headers):
    # without "crs": {"from_parameter": "spatial_extent_crs"}, which the graph parser refuses today
    process = ndvi_process(extent={side: {"from_parameter": f"spatial_extent_{side}"}
                                   for side in ("west", "south", "east", "north")})
    service_id = create(client, auth_headers, process=process)
    path = tile_path(client, auth_headers, service_id)
    tile = tile_of(10.3, 45.48, 14)  # outside the literal extent of the other tests, inside the data
    assert (png(client.get(path.format(z=tile.z, x=tile.x, y=tile.y)))[..., 3] == 255).any()


def test_a_failing_tile_answers_an_error_and_is_logged(client, auth_headers):
    raw = ndvi_process(scaled=False)  # NDVI in -1…1 is drawable, reflectances are not: the red band is
    graph = raw["process_graph"]
    graph["load"]["arguments"]["bands"] = ["B04"]
    del graph["ndvi"]
    graph["max"]["arguments"]["data"] = {"from_node": "load"}
    service_id = create(client, auth_headers, process=raw)
    path = tile_path(client, auth_headers, service_id)
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    response = client.get(path.format(z=tile.z, x=tile.x, y=tile.y))
    assert response.status_code == 400 and "value_range" in response.json["message"], response.json
    logs = client.get(f"{API}/services/{service_id}/logs", headers=auth_headers).json
    assert logs["logs"][0]["level"] == "error" and f"{tile.z}/{tile.x}/{tile.y}" in logs["logs"][0]["message"]
    assert logs["logs"][0]["code"] == "BadRequest"
