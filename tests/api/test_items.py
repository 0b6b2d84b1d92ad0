"""Item search of a static collection: ``/collections/{id}/items``, ``…/items/{item_id}``, ``…/queryables``."""

from __future__ import annotations

import pytest

from tests.conftest import shared_path

DEMO = "DEMO_SENTINEL2_L2A"
ITEMS = f"/openeo/1.2/collections/{DEMO}/items"


def _next(page: dict) -> str | None:
    return next((link["href"] for link in page["links"] if link["rel"] == "next"), None)


def test_items_page_through_next_links_with_bbox_and_datetime(client):
    params = "limit=5&bbox=10.0,45.0,11.0,46.0&datetime=2023-03-01T00:00:00Z/2023-08-31T23:59:59Z"
    page = client.get(f"{ITEMS}?{params}").json
    ids, total = [f["id"] for f in page["features"]], page["numberMatched"]
    while (following := _next(page)) is not None:
        page = client.get(following.removeprefix("http://localhost")).json
        ids += [f["id"] for f in page["features"]]
    assert len(ids) == total == len(set(ids)) and total > 5
    assert all("2023-03" <= i.rsplit("_", 1)[1][:6].replace("2023", "2023-") <= "2023-08" for i in ids)


def test_an_instant_selects_the_items_of_that_time(client):
    first = client.get(f"{ITEMS}?limit=1").json["features"][0]
    page = client.get(f"{ITEMS}?datetime={first['properties']['datetime']}").json
    assert first["id"] in [f["id"] for f in page["features"]]


def test_an_item_has_links_to_this_api_and_asset_links_a_user_can_read(client):
    first = client.get(f"{ITEMS}?limit=1").json["features"][0]
    item = client.get(f"{ITEMS}/{first['id']}").json
    assert item["links"][0] == {"rel": "self", "href": f"http://localhost{ITEMS}/{first['id']}",
                                "type": "application/geo+json"}
    for key, asset in item["assets"].items():
        assert asset["href"].startswith(f"http://localhost{ITEMS}/{first['id']}/assets/{key}/")  # no server paths
        assert asset["href"].endswith(".tif")
    whole = client.get(item["assets"]["B04"]["href"].removeprefix("http://localhost"))
    assert whole.status_code == 200 and whole.data[:4] in (b"II*\x00", b"MM\x00*")  # a TIFF
    part = client.get(item["assets"]["B04"]["href"].removeprefix("http://localhost"), headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == whole.data[:100]


def test_an_asset_that_is_not_there_is_a_404(client):
    first = client.get(f"{ITEMS}?limit=1").json["features"][0]
    href = client.get(f"{ITEMS}/{first['id']}").json["assets"]["B04"]["href"].removeprefix("http://localhost")
    assert client.get(href.replace("/assets/B04/", "/assets/NOPE/")).status_code == 404
    assert client.get(href.replace(first["id"], "no-such-item", 1)).status_code == 404
    assert client.get(href.rsplit("/", 1)[0] + "/other.tif").status_code == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "bbox=1,2,3", "bbox=0,50,1,40", "datetime=yesterday",
                                   "datetime=2023-02-01T00:00:00Z/2023-01-01T00:00:00Z", "datetime=../..",
                                   "token=forged.0000"])
def test_bad_parameters_are_a_400_openeo_error(client, query):
    response = client.get(f"{ITEMS}?{query}")
    assert response.status_code == 400
    assert response.json["code"] == "BadRequest" and query.split("=")[0] in response.json["message"]


def test_an_unknown_item_is_a_404(client):
    assert client.get(f"{ITEMS}/NOPE").status_code == 404


def test_queryables_are_a_json_schema_of_datetime_cloud_cover_and_platform(client):
    schema = client.get(f"/openeo/1.2/collections/{DEMO}/queryables").json
    assert schema["type"] == "object" and {"datetime", "eo:cloud_cover", "platform"} <= set(schema["properties"])


def test_capabilities_list_the_item_endpoints(client):
    paths = {e["path"] for e in client.get("/openeo/1.2/").json["endpoints"]}
    assert {"/collections/{collection_id}/items", "/collections/{collection_id}/items/{item_id}",
            "/collections/{collection_id}/queryables"} <= paths


def test_pystac_client_searches_the_items_of_the_live_server(live_server):
    from pystac_client import ItemSearch

    shared_path("s2-bolzano/catalog.json")
    search = ItemSearch(f"{live_server.api}/collections/SENTINEL2_L2A/items", method="GET", limit=5,
                        bbox=[11.3, 46.47, 11.35, 46.5], datetime="2022-06-05T00:00:00Z/2022-06-20T00:00:00Z")
    ids = [item.id for item in search.items()]
    assert ids == [f"S2_L2A_bolzano_202206{day:02d}" for day in (5, 7, 10, 12, 15, 17, 20)]


def test_rasterio_reads_an_items_cog_window_over_http(live_server):
    import numpy as np
    import rasterio
    import requests
    from rasterio.windows import Window

    item = requests.get(f"{live_server.api}/collections/{DEMO}/items?limit=1", timeout=30).json()["features"][0]
    href = item["assets"]["B04"]["href"]
    with rasterio.open(href) as remote, rasterio.open(_local_file(live_server, item, "B04")) as local:
        window = Window(100, 100, 64, 64)
        np.testing.assert_array_equal(remote.read(1, window=window), local.read(1, window=window))


def _local_file(live_server, item, key):
    import pystac

    catalog = pystac.Catalog.from_file(str(live_server.data_dir / "demo" / "catalog.json"))
    found = next(i for i in catalog.get_child(DEMO).get_items() if i.id == item["id"])
    return found.assets[key].get_absolute_href()
