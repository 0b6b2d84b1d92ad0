"""XYZ map services end to end: the openEO Python client creates them on the real server, tiles are
fetched without credentials like a web map does, and compared with a direct rasterio warp."""

from __future__ import annotations

import io
import time

import numpy as np
import openeo
import pytest
import rasterio
import requests
from PIL import Image
from rasterio.warp import Resampling, reproject

from backend.devserver import running_server
from backend.maps.tiles import Tile, tile_of
from tests.conftest import server_env

WEST, SOUTH, EAST, NORTH = 10.33, 45.47, 10.36, 45.49  # inside DEMO_SENTINEL2_L2A
EXTENT = {"west": WEST, "south": SOUTH, "east": EAST, "north": NORTH}


def ndvi_grey(connection) -> openeo.DataCube:
    cube = connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=EXTENT,
                                      temporal_extent=["2023-05-01", "2023-06-01"], bands=["B04", "B08"])
    return cube.ndvi().reduce_dimension(dimension="t", reducer="max").linear_scale_range(-1, 1, 0, 255)


def fetch(url: str, tile: Tile) -> np.ndarray:
    response = requests.get(url.format(z=tile.z, x=tile.x, y=tile.y), timeout=120)  # no credentials
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (256, 256) and image.mode in ("LA", "RGBA")  # with alpha; grey tiles as LA
    return np.asarray(image.convert("RGBA"))


def test_ndvi_tiles_equal_a_direct_warp(connection, tmp_path):
    cube = ndvi_grey(connection)
    service = cube.tiled_viewing_service(type="XYZ", title="NDVI")
    url = service.describe_service()["url"]
    assert url.endswith("/tiles/{z}/{x}/{y}.png")
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)

    started = time.perf_counter()
    pixels = fetch(url, tile)
    cold = time.perf_counter() - started
    warm = []
    for _ in range(4):  # two server workers, each with its own cache: the fastest answer is a cached one
        started = time.perf_counter()
        assert (fetch(url, tile) == pixels).all()
        warm.append(time.perf_counter() - started)
    print(f"z14 tile: cold {cold:.3f} s, warm {min(warm):.3f} s")

    cube.download(tmp_path / "ndvi.tif", format="GTiff")
    with rasterio.open(tmp_path / "ndvi.tif") as source:
        expected = np.full((256, 256), np.nan, dtype=np.float32)
        reproject(source.read(1).astype(np.float32), expected, src_transform=source.transform, src_crs=source.crs,
                  src_nodata=np.nan, dst_transform=tile.transform(), dst_crs="EPSG:3857", dst_nodata=np.nan,
                  resampling=Resampling.nearest)
    valid = ~np.isnan(expected)
    assert valid.sum() > 10_000, "the tile shows the extent"
    shown = pixels[..., 3] == 255
    assert ((pixels[..., 3] == 0) | shown).all()
    # the graph's literal extent (lon/lat) clips the tile's load and the download alike, each taking
    # the box around it in UTM; the tile's box is cut to the tile first, so at the extent's edge the
    # two may differ by a native pixel row along an edge: at most 2% of the pixels
    assert (shown != valid).sum() < 0.02 * valid.sum()
    both = shown & valid
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    grey = np.clip(np.rint(expected[both]), 0, 255)
    assert np.abs(pixels[..., 0][both].astype(int) - grey).max() <= 1
    service.delete_service()


def test_another_user_cannot_touch_a_service_and_deleting_revokes_its_tiles(connection, live_server):
    service = ndvi_grey(connection).tiled_viewing_service(type="XYZ", configuration={"colormap": "RdYlGn"})
    url = service.describe_service()["url"]
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    assert (fetch(url, tile)[..., 3] == 255).any()

    alice = live_server.headers("alice")
    base = f"{live_server.api}/services/{service.service_id}"
    assert requests.get(f"{live_server.api}/services", headers=alice, timeout=30).json()["services"] == []
    for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("get", "/logs")]:
        response = requests.request(method, base + path, headers=alice, json={"title": "x"}, timeout=30)
        assert response.status_code == 404 and response.json()["code"] == "ServiceNotFound"

    service.delete_service()
    assert requests.get(url.format(z=tile.z, x=tile.x, y=tile.y), timeout=30).status_code == 404


def test_bad_services_are_refused_with_the_right_code(connection):
    cube = ndvi_grey(connection)
    with pytest.raises(openeo.rest.OpenEoApiError) as unsupported:
        cube.tiled_viewing_service(type="WMS")
    assert unsupported.value.code == "ServiceUnsupported"
    with pytest.raises(openeo.rest.OpenEoApiError) as config:
        cube.tiled_viewing_service(type="XYZ", configuration={"colour": "red"})
    assert config.value.code == "ServiceConfigUnsupported"
    parcels = {"type": "Polygon", "coordinates": [[[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, SOUTH]]]}
    with pytest.raises(openeo.rest.OpenEoApiError) as vector:
        connection.create_service(cube.aggregate_spatial(geometries=parcels, reducer="mean").flat_graph(), type="XYZ")
    assert vector.value.http_status_code == 400 and "vector cube" in vector.value.message


def test_a_service_survives_a_restart(demo_data, tmp_path):
    env = server_env(demo_data)
    tile = tile_of((WEST + EAST) / 2, (SOUTH + NORTH) / 2, 14)
    with running_server(env, tmp_path / "first.log") as root:
        connection = openeo.connect(root).authenticate_basic("demo", "demo")
        service = ndvi_grey(connection).tiled_viewing_service(type="XYZ", title="kept")
        url = service.describe_service()["url"]
        before = fetch(url, tile)
    with running_server(env, tmp_path / "second.log") as root:
        connection = openeo.connect(root).authenticate_basic("demo", "demo")
        assert connection.service(service.service_id).describe_service()["title"] == "kept"
        port = root.rsplit(":", 1)[1]
        again = url.replace(url.split("/openeo/")[0], root)  # the same URL on the new server's port
        assert port in again
        assert (fetch(again, tile) == before).all()
        connection.service(service.service_id).delete_service()


def test_a_bolzano_ndvi_tile_equals_a_rasterio_warp_of_the_cogs(connection):
    from tests.conftest import shared_path

    catalog = shared_path("s2-bolzano/catalog.json")
    import pystac

    item = next(i for i in pystac.Catalog.from_file(str(catalog)).get_all_items()
                if i.datetime.strftime("%Y-%m-%d") == "2022-06-02")
    cube = connection.load_collection("SENTINEL2_L2A", temporal_extent=["2022-06-02", "2022-06-03"],
                                      bands=["B04", "B08"]).ndvi().reduce_dimension(dimension="t", reducer="max")
    service = cube.tiled_viewing_service(type="XYZ", configuration={"value_range": [-1, 1]})
    tile = tile_of(11.33, 46.49, 14)
    pixels = fetch(service.describe_service()["url"], tile)

    bands = {}
    for band in ("B04", "B08"):
        with rasterio.open(item.assets[band].get_absolute_href()) as source:
            warped = np.full((256, 256), np.nan, dtype=np.float32)
            values = source.read(1).astype(np.float32)
            values[values == source.nodata] = np.nan
            reproject(values, warped, src_transform=source.transform, src_crs=source.crs, src_nodata=np.nan,
                      dst_transform=tile.transform(), dst_crs="EPSG:3857", dst_nodata=np.nan,
                      resampling=Resampling.nearest)
            bands[band] = warped
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"])
    expected = np.clip((ndvi + 1) / 2 * 255, 0, 255)
    valid = np.isfinite(expected)
    shown = pixels[..., 3] == 255
    assert valid.sum() > 30_000 and (shown == valid).mean() > 0.99
    both = shown & valid
    close = np.abs(pixels[..., 0][both].astype(float) - expected[both]) <= 1.0
    assert close.mean() > 0.99, "the tile is the warp of the COGs, to a grey level"
    service.delete_service()
