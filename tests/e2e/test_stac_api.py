"""STAC APIs at scale, against real STAC API servers over a generated 20,000-item collection.

``rustac serve`` declares no Filter/Query extension (filters are checked here); stac-fastapi-geoparquet
declares the Filter extension (filters go to it as CQL2). Our server is configured with each API's
collection URL in ``TERRACUBE_STAC`` and answers ``load_collection`` and item search over it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backend.devserver import running_server
from processes.data.property_filters import Comparison, PropertyFilter
from processes.data.stac_api import StacApiCollection
from processes.data.stac_items import StacApiError
from tests.conftest import USERS, server_env

pytest.importorskip("rustac", reason="the STAC API servers of these tests come with the test extra")
pytest.importorskip("stac_fastapi.geoparquet", reason="the STAC API servers of these tests come with the test extra")

from tests.stac_api_servers import (  # noqa: E402  (after the skips: they need rustac)
    COLLECTION,
    ITEMS,
    BigCollection,
    geoparquet_server,
    rustac_server,
    write_big_collection,
)

CLEAR_FILTER = {"eo:cloud_cover": PropertyFilter("eo:cloud_cover", lambda v: v is not None and v < 1,
                                                 (Comparison("<", 1),))}
CLEAR_IDS = ["BIG_001234", "BIG_005678", "BIG_009999", "BIG_014321", "BIG_019876"]
WHOLE_RANGE = ("2021-01-01", "2024-01-01")


@pytest.fixture(scope="module")
def big(demo_data: Path, tmp_path_factory) -> BigCollection:
    return write_big_collection(demo_data / "demo", tmp_path_factory.mktemp("big-collection"))


@pytest.fixture(scope="module")
def rustac_api(big: BigCollection, tmp_path_factory) -> Iterator[str]:
    with rustac_server(big, tmp_path_factory.mktemp("rustac") / "server.log") as root:
        yield root


@pytest.fixture(scope="module")
def geoparquet_api(big: BigCollection, tmp_path_factory) -> Iterator[str]:
    with geoparquet_server(big, tmp_path_factory.mktemp("geoparquet") / "server.log") as root:
        yield root


@pytest.fixture(scope="module")
def terracube_over_apis(demo_data: Path, rustac_api: str, geoparquet_api: str, tmp_path_factory) -> Iterator[str]:
    """Our server with the geoparquet API's collection configured (and the demo data)."""
    env = server_env(demo_data, TERRACUBE_STAC=f"{geoparquet_api}/collections/{COLLECTION}")
    with running_server(env, tmp_path_factory.mktemp("terracube") / "server.log") as root:
        yield f"{root}/openeo/1.2"


def test_the_geoparquet_api_declares_the_filter_extension_and_rustac_none(rustac_api, geoparquet_api):
    assert StacApiCollection(f"{geoparquet_api}/collections/{COLLECTION}").pushdown == "filter"
    assert StacApiCollection(f"{rustac_api}/collections/{COLLECTION}").pushdown is None


def test_a_cloud_cover_filter_is_sent_to_an_api_with_the_filter_extension(geoparquet_api):
    collection = StacApiCollection(f"{geoparquet_api}/collections/{COLLECTION}")
    parameters = collection.search_parameters(None, WHOLE_RANGE, CLEAR_FILTER)
    assert parameters["filter"] == {"op": "<", "args": [{"property": "eo:cloud_cover"}, 1]}
    assert parameters["max_items"] is None  # no cap


def test_a_cloud_cover_filter_over_the_whole_range_finds_exactly_the_clear_items_fast(geoparquet_api):
    collection = StacApiCollection(f"{geoparquet_api}/collections/{COLLECTION}")
    started = time.monotonic()
    found = collection.search(None, WHOLE_RANGE, CLEAR_FILTER)
    assert [item["id"] for item in found] == CLEAR_IDS
    assert time.monotonic() - started < 5


def test_without_the_filter_extension_every_page_is_walked_and_filtered_here(rustac_api):
    collection = StacApiCollection(f"{rustac_api}/collections/{COLLECTION}")
    assert "filter" not in collection.search_parameters(None, WHOLE_RANGE, CLEAR_FILTER)
    assert [item["id"] for item in collection.search(None, WHOLE_RANGE, CLEAR_FILTER)] == CLEAR_IDS


def test_a_search_past_ten_thousand_items_is_not_cut_short(rustac_api):
    collection = StacApiCollection(f"{rustac_api}/collections/{COLLECTION}")
    found = collection.search(None, ("2021-01-01T10:00:00Z", "2023-04-10T00:00:00Z"))
    assert len(found) == 19_886  # one an hour from 2021-01-01T10:00 up to (not including) the end


def test_a_dead_api_is_a_clear_openeo_error(big, tmp_path):
    with rustac_server(big, tmp_path / "server.log") as root:
        collection = StacApiCollection(f"{root}/collections/{COLLECTION}")
    with pytest.raises(StacApiError, match="could not be reached") as error:
        collection.search(None, WHOLE_RANGE)
    assert error.value.status == 502 and root in error.value.message


def test_load_collection_with_a_cloud_cover_filter_over_the_api_gives_the_clear_dates(terracube_over_apis, big):
    token = requests.get(f"{terracube_over_apis}/credentials/basic", auth=("demo", USERS["demo"]),
                         timeout=30).json()["access_token"]
    graph = {
        "load": {"process_id": "load_collection", "arguments": {
            "id": COLLECTION, "bands": ["B04"], "temporal_extent": ["2021-01-01", "2024-01-01"],
            "spatial_extent": {"west": 10.30, "south": 45.47, "east": 10.301, "north": 45.471},
            "properties": {"eo:cloud_cover": {"process_graph": {"lt": {
                "process_id": "lt", "arguments": {"x": {"from_parameter": "value"}, "y": 1}, "result": True}}}},
        }},
        "dates": {"process_id": "dimension_labels", "arguments": {"data": {"from_node": "load"}, "dimension": "t"},
                  "result": True},
    }
    started = time.monotonic()
    response = requests.post(f"{terracube_over_apis}/result", json={"process": {"process_graph": graph}},
                             headers={"Authorization": f"Bearer basic//{token}"}, timeout=300)
    assert response.status_code == 200, response.text
    assert [d[:13] for d in response.json()] == list(big.clear_dates)
    assert time.monotonic() - started < 60


def test_items_of_an_api_collection_page_through_next_links(terracube_over_apis):
    url = f"{terracube_over_apis}/collections/{COLLECTION}/items"
    params = {"limit": "100", "datetime": "2021-03-01T00:00:00Z/2021-03-10T23:59:59Z", "bbox": "10.2,45.4,10.4,45.6"}
    page = requests.get(url, params=params, timeout=60).json()
    ids = [f["id"] for f in page["features"]]
    while (following := next((lk["href"] for lk in page["links"] if lk["rel"] == "next"), None)) is not None:
        page = requests.get(following, timeout=60).json()
        ids += [f["id"] for f in page["features"]]
    assert len(ids) == 240 and len(set(ids)) == 240
    first = requests.get(url, params=params, timeout=60).json()["features"][0]
    assert first["links"][0]["href"] == f"{terracube_over_apis}/collections/{COLLECTION}/items/{first['id']}"


def test_a_bad_token_for_an_api_collection_is_a_400(terracube_over_apis):
    response = requests.get(f"{terracube_over_apis}/collections/{COLLECTION}/items",
                            params={"token": "eyJ1cHN0cmVhbSI6e319.0000"}, timeout=30)
    assert response.status_code == 400 and response.json()["code"] == "BadRequest"


def test_the_generated_collection_has_the_advertised_size(big):
    assert big.items_json.stat().st_size > 0 and ITEMS == 20_000
