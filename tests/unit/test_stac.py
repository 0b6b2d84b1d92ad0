"""STAC sources: static catalogs on disk, STAC API collections over real HTTP, the collection catalog.

The STAC API tests run against a minimal STAC API (a Flask app on a free port of 127.0.0.1) that
serves the items of the Bolzano sample catalog the way real APIs do: absolute asset hrefs, self
links, closed datetime intervals and paging through ``next`` links.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pystac
import pytest
import requests
from flask import Flask, jsonify, request
from shapely.geometry import box, shape
from werkzeug.serving import make_server

from backend.demo import DEMO_COLLECTIONS
from processes.core.env import ProcessEnv
from processes.core.errors import CollectionNotFound
from processes.data.item_index import read_item_file
from processes.data.load import load_collection
from processes.data.stac_items import absolute_hrefs
from processes.data.stac_sources import (
    CollectionCatalog,
    StacApiCollection,
    StacSourceError,
    StaticCollection,
    item_for_stacking,
    open_source,
    open_static,
)
from tests.conftest import shared_path

DEMO = "DEMO_SENTINEL2_L2A"
S2 = "SENTINEL2_L2A"
# WGS84 boxes inside only tile 1 / only tile 2 of the small demo, and one far from both
DEMO_T1_BOX = (10.29, 45.47, 10.30, 45.48)
DEMO_T2_BOX = (10.39, 45.47, 10.40, 45.48)
NOWHERE = (0.0, 0.0, 1.0, 1.0)
BOLZANO_BOX = (11.30, 46.47, 11.35, 46.50)
BOLZANO_LOAD_BOX = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}


def ids(items: list[dict]) -> list[str]:
    return sorted(item["id"] for item in items)


# --- static sources -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_catalog(demo_data: Path) -> Path:
    return demo_data / "demo" / "catalog.json"


@pytest.fixture(scope="module")
def demo_collection(demo_catalog: Path) -> StaticCollection:
    return next(c for c in open_static(demo_catalog) if c.id == DEMO)


@pytest.fixture(scope="module")
def demo_item_json(demo_catalog: Path) -> list[dict[str, Any]]:
    """The demo items as written on disk, read without pystac, to compute expected results."""
    return [json.loads(p.read_text()) for p in sorted((demo_catalog.parent / DEMO).glob("*/*.json"))]


def test_a_catalog_gives_its_collections(demo_catalog):
    collections = open_static(demo_catalog)
    assert [c.id for c in collections] == list(DEMO_COLLECTIONS)
    assert collections[0].source == str(demo_catalog)


def test_a_collection_file_gives_that_collection(demo_catalog):
    collection_file = demo_catalog.parent / DEMO / "collection.json"
    (collection,) = open_static(collection_file)
    assert collection.id == DEMO
    assert len(collection) == 48


def test_stac_collection_is_the_collection_document_without_self_link(demo_collection):
    doc = demo_collection.stac_collection()
    assert doc["type"] == "Collection" and doc["id"] == DEMO
    assert "B04" in doc["item_assets"]
    assert "self" not in [link["rel"] for link in doc["links"]]


def test_search_by_bbox_returns_items_whose_footprint_intersects_it(demo_collection, demo_item_json):
    found = demo_collection.search(DEMO_T1_BOX, None)
    assert ids(found) == sorted(d["id"] for d in demo_item_json if d["id"].startswith("S2_DEMO_T1_"))


def test_search_by_bbox_of_the_other_tile_returns_its_items(demo_collection):
    found = demo_collection.search(DEMO_T2_BOX, None)
    assert found and all(item["id"].startswith("S2_DEMO_T2_") for item in found)


def test_search_outside_the_collection_returns_nothing(demo_collection):
    assert demo_collection.search(NOWHERE, None) == []


def test_search_interval_includes_its_start_and_excludes_its_end(demo_collection):
    found = demo_collection.search(None, ("2023-05-05T10:30:00Z", "2023-05-20T10:30:00Z"))
    assert ids(found) == ["S2_DEMO_T1_20230505", "S2_DEMO_T2_20230505"]


def test_search_interval_may_be_open_at_the_start(demo_collection):
    found = demo_collection.search(None, (None, "2023-01-20T10:30:00Z"))
    assert ids(found) == ["S2_DEMO_T1_20230105", "S2_DEMO_T2_20230105"]


def test_search_interval_may_be_open_at_the_end(demo_collection):
    found = demo_collection.search(None, ("2023-12-16T10:30:00Z", None))
    assert ids(found) == ["S2_DEMO_T1_20231216", "S2_DEMO_T2_20231216"]


def test_search_interval_without_time_zone_is_utc(demo_collection):
    found = demo_collection.search(None, ("2023-05-01", "2023-05-10"))
    assert ids(found) == ["S2_DEMO_T1_20230505", "S2_DEMO_T2_20230505"]


def test_search_by_property_condition_keeps_the_items_that_satisfy_it(demo_collection, demo_item_json):
    found = demo_collection.search(None, None, {"eo:cloud_cover": lambda v: v is not None and v < 5})
    expected = sorted(d["id"] for d in demo_item_json if d["properties"]["eo:cloud_cover"] < 5)
    assert expected and ids(found) == expected


def test_search_by_several_property_conditions_keeps_the_items_that_satisfy_all(
    demo_collection, demo_item_json
):
    conditions = {"eo:cloud_cover": lambda v: v < 5, "platform": lambda v: v == "sentinel-2a"}
    found = demo_collection.search(None, None, conditions)
    expected = sorted(
        d["id"]
        for d in demo_item_json
        if d["properties"]["eo:cloud_cover"] < 5 and d["properties"]["platform"] == "sentinel-2a"
    )
    assert ids(found) == expected


def test_searched_items_have_absolute_asset_hrefs_to_existing_files(demo_collection):
    item = demo_collection.search(DEMO_T1_BOX, ("2023-05-05T00:00:00Z", "2023-05-06T00:00:00Z"))[0]
    for asset in item["assets"].values():
        assert Path(asset["href"]).is_absolute() and Path(asset["href"]).is_file()


def test_a_missing_file_is_a_source_error(tmp_path):
    missing = tmp_path / "nope" / "catalog.json"
    with pytest.raises(StacSourceError, match="does not exist") as error:
        open_static(missing)
    assert str(missing) in error.value.message


def test_a_file_that_is_not_json_is_a_source_error(tmp_path):
    broken = tmp_path / "catalog.json"
    broken.write_text("{not json")
    with pytest.raises(StacSourceError, match="Cannot read STAC file"):
        open_static(broken)


def test_an_item_file_is_a_source_error(demo_catalog):
    item_file = next((demo_catalog.parent / DEMO).glob("*/*.json"))
    with pytest.raises(StacSourceError, match="is a STAC Item, not a catalog or collection"):
        open_static(item_file)


def test_a_catalog_without_collections_is_a_source_error(tmp_path):
    catalog = pystac.Catalog(id="empty", description="A catalog with no children.")
    catalog.normalize_hrefs(str(tmp_path))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    with pytest.raises(StacSourceError, match="holds no collection"):
        open_static(tmp_path / "catalog.json")


# --- the collection catalog -----------------------------------------------------------------------
def test_catalog_gets_a_collection_by_id(demo_collection):
    assert CollectionCatalog([demo_collection]).get(DEMO) is demo_collection


def test_an_id_offered_by_two_sources_is_an_error_naming_both(demo_catalog):
    collection_file = demo_catalog.parent / DEMO / "collection.json"
    with pytest.raises(StacSourceError, match=f"'{DEMO}' is offered by two STAC sources") as error:
        CollectionCatalog([*open_static(demo_catalog), *open_static(collection_file)])
    assert str(demo_catalog) in error.value.message and str(collection_file) in error.value.message


def test_an_unknown_id_is_collection_not_found_listing_the_ids(demo_collection):
    with pytest.raises(CollectionNotFound, match=f"'NOPE' does not exist. Available collections: {DEMO}."):
        CollectionCatalog([demo_collection]).get("NOPE")


# --- items for stackstac --------------------------------------------------------------------------
def item_document(links: list[dict[str, Any]]) -> dict[str, Any]:
    """An item of projection extension v2 (``proj:code``) with relative asset hrefs."""
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": ["https://stac-extensions.github.io/projection/v2.0.0/schema.json"],
        "id": "legacy",
        "geometry": None,
        "bbox": [11.0, 46.0, 11.1, 46.1],
        "properties": {"datetime": "2022-06-02T00:00:00Z", "proj:code": "EPSG:32632"},
        "links": links,
        "assets": {
            "B04": {"href": "./legacy_B04.tif", "proj:code": "EPSG:32633"},
            "B08": {"href": "bands/legacy_B08.tif"},
        },
    }


@pytest.fixture
def item_on_disk(tmp_path: Path) -> dict[str, Any]:
    """The item written to disk and read as a static catalog's item is."""
    (tmp_path / "legacy.json").write_text(json.dumps(item_document(links=[])))
    return read_item_file(str(tmp_path / "legacy.json"))


def test_item_for_stacking_adds_proj_epsg_to_the_item(item_on_disk):
    assert item_for_stacking(item_on_disk)["properties"]["proj:epsg"] == 32632


def test_item_for_stacking_adds_proj_epsg_to_the_assets(item_on_disk):
    assert item_for_stacking(item_on_disk)["assets"]["B04"]["proj:epsg"] == 32633


def test_item_for_stacking_leaves_the_item_as_it_was(item_on_disk):
    before = copy.deepcopy(item_on_disk)
    item_for_stacking(item_on_disk)
    assert item_on_disk == before


def test_an_item_file_is_read_with_absolute_asset_hrefs(item_on_disk, tmp_path):
    assets = item_on_disk["assets"]
    assert assets["B04"]["href"] == str(tmp_path / "legacy_B04.tif")
    assert assets["B08"]["href"] == str(tmp_path / "bands" / "legacy_B08.tif")


def test_relative_hrefs_resolve_against_a_remote_item_url():
    item = absolute_hrefs(item_document(links=[]), "https://stac.example.org/collections/X/items/legacy")
    assert item["assets"]["B04"]["href"] == "https://stac.example.org/collections/X/items/legacy_B04.tif"


# --- the item index of a static catalog -----------------------------------------------------------------
def write_catalog(root: Path, count: int, *, nested: bool = False) -> Path:
    """A catalog → collection → (a sub-catalog →) ``count`` hourly items; returns the catalog file."""
    (root / "C" / "sub").mkdir(parents=True, exist_ok=True)
    folder = root / "C" / "sub" if nested else root / "C"
    links = []
    for index in range(count):
        document = item_document(links=[])
        document["id"] = f"item-{index:03d}"
        document["properties"]["datetime"] = f"2022-06-01T{index:02d}:00:00Z"
        document["properties"]["eo:cloud_cover"] = index
        (folder / f"item-{index:03d}.json").write_text(json.dumps(document))
        links.append({"rel": "item", "href": f"./item-{index:03d}.json"})
    if nested:
        (folder / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "sub", "description": "-",
                                                         "stac_version": "1.1.0", "links": links}))
        links = [{"rel": "child", "href": "./sub/catalog.json"}]
    extent = {"spatial": {"bbox": [[11.0, 46.0, 11.1, 46.1]]},
              "temporal": {"interval": [["2022-06-01T00:00:00Z", None]]}}
    (root / "C" / "collection.json").write_text(json.dumps({
        "type": "Collection", "id": "C", "description": "-", "license": "proprietary", "stac_version": "1.1.0",
        "extent": extent, "links": links}))
    catalog = root / "catalog.json"
    catalog.write_text(json.dumps({"type": "Catalog", "id": "root", "description": "-", "stac_version": "1.1.0",
                                   "links": [{"rel": "child", "href": "./C/collection.json"}]}))
    return catalog


def test_items_of_a_sub_catalog_of_a_collection_belong_to_it(tmp_path):
    (collection,) = open_static(write_catalog(tmp_path, 5, nested=True))
    assert collection.id == "C" and len(collection) == 5
    assert ids(collection.search(None, ("2022-06-01T01:00:00Z", "2022-06-01T03:00:00Z"))) == [
        "item-001", "item-002"]


def test_the_collection_document_does_not_list_its_items(tmp_path):
    (collection,) = open_static(write_catalog(tmp_path, 5))
    assert not [link for link in collection.stac_collection()["links"] if link["rel"] == "item"]


def test_an_item_is_found_by_its_id_and_read_from_its_file(tmp_path):
    (collection,) = open_static(write_catalog(tmp_path, 5))
    assert collection.item("item-003")["properties"]["eo:cloud_cover"] == 3
    assert collection.item("nope") is None


def test_a_stored_index_is_used_and_an_edited_item_is_read_again(tmp_path):
    catalog = write_catalog(tmp_path / "cat", 5)
    index_dir = tmp_path / "index"
    (first,) = open_static(catalog, index_dir)
    assert len(list(index_dir.glob("*.npz"))) == 1
    edited = tmp_path / "cat" / "C" / "item-004.json"
    document = json.loads(edited.read_text())
    document["properties"]["datetime"] = "2022-07-01T00:00:00Z"
    edited.write_text(json.dumps(document) + " ")  # a new size, whatever the clock's resolution
    (second,) = open_static(catalog, index_dir)
    assert ids(second.search(None, ("2022-07-01", "2022-07-02"))) == ["item-004"]
    assert ids(second.search(None, ("2022-06-01", "2022-06-02"))) == ["item-000", "item-001", "item-002",
                                                                          "item-003"]


def test_a_damaged_stored_index_is_built_again(tmp_path):
    catalog = write_catalog(tmp_path / "cat", 3)
    index_dir = tmp_path / "index"
    open_static(catalog, index_dir)
    (stored,) = index_dir.glob("*.npz")
    stored.write_bytes(b"not an index")
    (collection,) = open_static(catalog, index_dir)
    assert len(collection) == 3 and len(collection.search((11.0, 46.0, 11.2, 46.2), None)) == 3


def test_a_missing_item_file_is_a_source_error_naming_it(tmp_path):
    catalog = write_catalog(tmp_path, 3)
    (tmp_path / "C" / "item-001.json").unlink()
    with pytest.raises(StacSourceError, match="item-001.json' linked by the catalog does not exist"):
        open_static(catalog)


def test_an_item_page_counts_all_matches_and_reads_only_its_items(tmp_path):
    (collection,) = open_static(write_catalog(tmp_path, 6))
    start = datetime.fromisoformat("2022-06-01T01:00:00+00:00")
    end = datetime.fromisoformat("2022-06-01T04:00:00+00:00")
    items, matched = collection.item_page(None, (start, end), 2, 2)
    assert matched == 4  # closed interval: 01:00 … 04:00
    assert ids(items) == ["item-003", "item-004"]


# --- a minimal STAC API ---------------------------------------------------------------------------
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
]
PAGE_SIZE = 5  # fewer than the 12 Bolzano items, so that whole-month searches page


def read_static_catalog(catalog_file: Path) -> tuple[dict[str, dict], list[dict]]:
    """Collections and items of a static catalog as JSON, asset hrefs made absolute file paths."""
    catalog = json.loads(catalog_file.read_text())
    collections, items = {}, []
    for child in (link for link in catalog["links"] if link["rel"] == "child"):
        collection_file = (catalog_file.parent / child["href"]).resolve()
        collection = json.loads(collection_file.read_text())
        collections[collection["id"]] = collection
        for link in (link for link in collection["links"] if link["rel"] == "item"):
            item_file = (collection_file.parent / link["href"]).resolve()
            item = json.loads(item_file.read_text())
            item["collection"] = collection["id"]
            for asset in item["assets"].values():
                asset["href"] = str((item_file.parent / asset["href"]).resolve())
            items.append(item)
    return collections, items


def _time(value: str | None) -> datetime | None:
    return None if value in (None, "", "..") else datetime.fromisoformat(value)


def _item_times(item: dict) -> tuple[datetime, datetime]:
    props = item["properties"]
    if props.get("datetime"):
        return _time(props["datetime"]), _time(props["datetime"])
    return _time(props["start_datetime"]), _time(props["end_datetime"])


def _matches(
    item: dict, collections: list[str] | None, bbox: list[float] | None, interval: str | None
) -> bool:
    if collections and item["collection"] not in collections:
        return False
    if bbox and not shape(item["geometry"]).intersects(box(*bbox)):
        return False
    if interval:
        start, _, end = interval.partition("/") if "/" in interval else (interval, "", interval)
        item_start, item_end = _item_times(item)
        # STAC API intervals are closed on both ends
        if _time(start) is not None and item_end < _time(start):
            return False
        if _time(end) is not None and item_start > _time(end):
            return False
    return True


def stac_api(catalog_file: Path) -> Flask:
    """A STAC API (core, collections, item search with GET and POST) over a static catalog."""
    collections, items = read_static_catalog(catalog_file)
    app = Flask(__name__)

    def root() -> str:
        return request.root_url.rstrip("/")

    def link(rel: str, href: str, **extra: Any) -> dict[str, Any]:
        return {"rel": rel, "href": href, "type": "application/json", **extra}

    def served_collection(collection: dict) -> dict:
        doc = copy.deepcopy(collection)
        url = f"{root()}/collections/{doc['id']}"
        external = [lk for lk in doc["links"] if lk["href"].startswith(("http://", "https://"))]
        doc["links"] = [
            link("self", url),
            link("root", f"{root()}/"),
            link("parent", f"{root()}/"),
            link("items", f"{url}/items", type="application/geo+json"),
            *external,
        ]
        return doc

    def served_item(item: dict) -> dict:
        doc = copy.deepcopy(item)
        collection_url = f"{root()}/collections/{doc['collection']}"
        doc["links"] = [
            link("self", f"{collection_url}/items/{doc['id']}", type="application/geo+json"),
            link("parent", collection_url),
            link("collection", collection_url),
            link("root", f"{root()}/"),
        ]
        return doc

    @app.get("/")
    def landing_page():
        return jsonify(
            {
                "type": "Catalog",
                "id": "test-stac-api",
                "stac_version": "1.0.0",
                "description": "A STAC API over the Bolzano sample, for tests.",
                "conformsTo": CONFORMANCE,
                "links": [
                    link("self", f"{root()}/"),
                    link("root", f"{root()}/"),
                    link("conformance", f"{root()}/conformance"),
                    link("data", f"{root()}/collections"),
                    link("search", f"{root()}/search", type="application/geo+json", method="GET"),
                    link("search", f"{root()}/search", type="application/geo+json", method="POST"),
                ],
            }
        )

    @app.get("/conformance")
    def conformance():
        return jsonify({"conformsTo": CONFORMANCE})

    @app.get("/collections")
    def all_collections():
        return jsonify(
            {
                "collections": [served_collection(c) for c in collections.values()],
                "links": [link("self", f"{root()}/collections"), link("root", f"{root()}/")],
            }
        )

    @app.get("/collections/<collection_id>")
    def one_collection(collection_id: str):
        if collection_id not in collections:
            return jsonify({"code": "NotFound", "description": f"no collection {collection_id}"}), 404
        return jsonify(served_collection(collections[collection_id]))

    @app.get("/collections/<collection_id>/items/<item_id>")
    def one_item(collection_id: str, item_id: str):
        for item in items:
            if item["collection"] == collection_id and item["id"] == item_id:
                return jsonify(served_item(item))
        return jsonify({"code": "NotFound", "description": f"no item {item_id}"}), 404

    @app.route("/search", methods=["GET", "POST"])
    def search():
        if request.method == "POST":
            params = request.get_json()
            wanted, bbox = params.get("collections"), params.get("bbox")
        else:
            params = request.args.to_dict()
            wanted = params["collections"].split(",") if params.get("collections") else None
            bbox = [float(v) for v in params["bbox"].split(",")] if params.get("bbox") else None
        interval = params.get("datetime")
        limit = int(params.get("limit") or PAGE_SIZE)
        offset = int(params.get("token") or 0)
        matched = [item for item in items if _matches(item, wanted, bbox, interval)]
        page = matched[offset : offset + limit]
        links = [link("root", f"{root()}/")]
        if offset + limit < len(matched):
            following = {**params, "token": str(offset + limit)}
            if request.method == "POST":
                links.append(
                    link(
                        "next", f"{root()}/search", type="application/geo+json", method="POST", body=following
                    )
                )
            else:
                links.append(
                    link("next", f"{root()}/search?{urlencode(following)}", type="application/geo+json")
                )
        return jsonify(
            {
                "type": "FeatureCollection",
                "features": [served_item(item) for item in page],
                "numberMatched": len(matched),
                "numberReturned": len(page),
                "links": links,
            }
        )

    return app


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def bolzano_catalog() -> Path:
    return shared_path("s2-bolzano/catalog.json")


@pytest.fixture(scope="module")
def stac_api_url(bolzano_catalog: Path) -> Iterator[str]:
    """Root URL of the STAC API over the Bolzano sample, served over real HTTP for this module."""
    server = make_server("127.0.0.1", 0, stac_api(bolzano_catalog), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def api_collection(stac_api_url: str) -> StacApiCollection:
    return StacApiCollection(f"{stac_api_url}/collections/{S2}")


@pytest.fixture(scope="module")
def bolzano_static(bolzano_catalog: Path) -> StaticCollection:
    (collection,) = open_static(bolzano_catalog)
    return collection


def bolzano_ids(*days: int) -> list[str]:
    return [f"S2_L2A_bolzano_202206{day:02d}" for day in days]


# --- STAC API collections -------------------------------------------------------------------------
@pytest.mark.shared_data
def test_the_test_api_closes_datetime_intervals_on_both_ends(stac_api_url):
    # the premise of the end-instant test below: the API itself returns the item at the end instant
    response = requests.get(
        f"{stac_api_url}/search",
        params={"collections": S2, "datetime": "2022-06-01T00:00:00Z/2022-06-10T00:00:00Z"},
        timeout=30,
    )
    assert sorted(f["id"] for f in response.json()["features"]) == bolzano_ids(2, 5, 7, 10)


@pytest.mark.shared_data
def test_api_collection_has_the_collection_id_and_its_url_as_source(api_collection, stac_api_url):
    assert api_collection.id == S2
    assert api_collection.source == f"{stac_api_url}/collections/{S2}"


@pytest.mark.shared_data
def test_api_stac_collection_is_the_served_document_without_self_link(api_collection, bolzano_catalog):
    on_disk = json.loads((bolzano_catalog.parent / S2 / "collection.json").read_text())
    doc = api_collection.stac_collection()
    assert doc["id"] == S2
    assert list(doc["item_assets"]) == list(on_disk["item_assets"])
    assert doc["extent"] == on_disk["extent"]
    assert "self" not in [link["rel"] for link in doc["links"]]


@pytest.mark.shared_data
def test_api_search_by_bbox_and_interval_returns_the_matching_items(api_collection):
    found = api_collection.search(BOLZANO_BOX, ("2022-06-01T00:00:00Z", "2022-06-11T00:00:00Z"))
    assert ids(found) == bolzano_ids(2, 5, 7, 10)


@pytest.mark.shared_data
def test_api_search_excludes_an_item_at_the_end_instant(api_collection):
    found = api_collection.search(BOLZANO_BOX, ("2022-06-01T00:00:00Z", "2022-06-10T00:00:00Z"))
    assert ids(found) == bolzano_ids(2, 5, 7)


@pytest.mark.shared_data
def test_api_search_includes_an_item_at_the_start_instant(api_collection):
    found = api_collection.search(BOLZANO_BOX, ("2022-06-02T00:00:00Z", "2022-06-05T00:00:00Z"))
    assert ids(found) == bolzano_ids(2)


@pytest.mark.shared_data
def test_api_search_interval_without_time_zone_is_utc(api_collection):
    found = api_collection.search(BOLZANO_BOX, ("2022-06-01", "2022-06-10"))
    assert ids(found) == bolzano_ids(2, 5, 7)


@pytest.mark.shared_data
def test_api_search_follows_next_links_through_all_pages(api_collection):
    found = api_collection.search(BOLZANO_BOX, ("2022-06-01T00:00:00Z", None))
    assert len(found) == 12 > PAGE_SIZE
    assert len(set(ids(found))) == 12


@pytest.mark.shared_data
def test_api_search_outside_the_footprint_returns_nothing(api_collection):
    assert api_collection.search(NOWHERE, ("2022-06-01T00:00:00Z", "2022-07-01T00:00:00Z")) == []


@pytest.mark.shared_data
def test_api_search_by_property_condition_equals_the_static_search(api_collection, bolzano_static):
    conditions = {"eo:cloud_cover": lambda v: v is not None and v < 20}
    found = api_collection.search(BOLZANO_BOX, None, conditions)
    assert found and ids(found) == ids(bolzano_static.search(BOLZANO_BOX, None, conditions))


@pytest.mark.shared_data
def test_api_items_have_self_links_and_absolute_asset_hrefs(api_collection, stac_api_url):
    (item,) = api_collection.search(BOLZANO_BOX, ("2022-06-02T00:00:00Z", "2022-06-03T00:00:00Z"))
    self_href = next(link["href"] for link in item["links"] if link["rel"] == "self")
    assert self_href == f"{stac_api_url}/collections/{S2}/items/{item['id']}"
    for asset in item["assets"].values():
        assert Path(asset["href"]).is_absolute() and Path(asset["href"]).is_file()


@pytest.mark.shared_data
def test_load_collection_through_the_api_equals_the_static_catalog(api_collection, bolzano_static):
    def load(collection):
        env = ProcessEnv(collections=CollectionCatalog([collection]))
        return load_collection(S2, BOLZANO_LOAD_BOX, ["2022-06-01", "2022-06-11"], ["B04", "B08"], env=env)

    through_api, from_disk = load(api_collection), load(bolzano_static)
    assert [str(t)[:10] for t in through_api.t.values] == [
        "2022-06-02",
        "2022-06-05",
        "2022-06-07",
        "2022-06-10",
    ]
    for dim in ("t", "bands", "y", "x"):
        np.testing.assert_array_equal(through_api[dim].values, from_disk[dim].values)
    values = through_api.values
    assert not np.isnan(values).all()
    np.testing.assert_array_equal(values, from_disk.values)


# --- open_source ----------------------------------------------------------------------------------
def test_open_source_of_a_path_opens_the_static_catalog(demo_catalog):
    assert [c.id for c in open_source(str(demo_catalog))] == list(DEMO_COLLECTIONS)


@pytest.mark.shared_data
def test_open_source_of_a_collection_url_opens_the_api_collection(stac_api_url):
    (collection,) = open_source(f"{stac_api_url}/collections/{S2}")
    assert isinstance(collection, StacApiCollection) and collection.id == S2


@pytest.mark.shared_data
def test_open_source_of_an_unknown_api_collection_is_a_source_error(stac_api_url):
    url = f"{stac_api_url}/collections/NOPE"
    with pytest.raises(StacSourceError, match="Cannot open STAC API collection") as error:
        open_source(url)
    assert url in error.value.message


def test_open_source_of_an_unreachable_api_is_a_source_error_naming_the_url():
    url = f"http://127.0.0.1:{unused_port()}/collections/X"
    with pytest.raises(StacSourceError, match="Cannot open STAC API collection") as error:
        open_source(url)
    assert url in error.value.message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://stac.example.org/v1", "is not a STAC API collection URL"),
        ("https://stac.example.org/v1/collections/", "is not a STAC API collection URL"),
        ("https://stac.example.org/catalog.json", "Remote static catalogs are not supported"),
    ],
)
def test_open_source_of_a_url_without_a_collection_is_a_source_error(url, reason):
    with pytest.raises(StacSourceError, match=reason) as error:
        open_source(url)
    assert url in error.value.message
