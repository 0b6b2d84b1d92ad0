"""The small pieces of STAC item handling: pages read ahead, items slimmed for stacking."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from processes.data.stac_api import read_ahead
from processes.data.stac_items import for_stacking


def _pages(count: int, fetched: list[int], *, fail_at: int | None = None) -> Iterator[dict]:
    for number in range(count):
        if number == fail_at:
            raise ConnectionError(f"page {number} failed")
        fetched.append(number)
        yield {"features": [{"id": f"{number}-{i}"} for i in range(3)]}


def test_pages_come_in_order_and_all_of_them():
    fetched: list[int] = []
    pages = list(read_ahead(_pages(5, fetched)))
    assert [page["features"][0]["id"] for page in pages] == ["0-0", "1-0", "2-0", "3-0", "4-0"]
    assert fetched == [0, 1, 2, 3, 4]


def test_the_next_page_is_fetched_while_the_caller_works_on_one_and_no_further():
    fetched: list[int] = []
    pages = read_ahead(_pages(10, fetched))
    next(pages)
    deadline = time.monotonic() + 5
    while len(fetched) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    # page 1 is fetched before the caller asks for it; at most one more waits to be handed over
    assert fetched in ([0, 1], [0, 1, 2])
    assert len(list(pages)) == 9


def test_an_error_of_a_fetch_reaches_the_caller_after_the_pages_before_it():
    fetched: list[int] = []
    pages = read_ahead(_pages(5, fetched, fail_at=2))
    assert next(pages)["features"][0]["id"] == "0-0"
    assert next(pages)["features"][0]["id"] == "1-0"
    with pytest.raises(ConnectionError, match="page 2 failed"):
        next(pages)


def test_a_caller_that_stops_early_leaves_no_thread_behind():
    fetched: list[int] = []
    before = {t.ident for t in threading.enumerate()}
    pages = read_ahead(_pages(1000, fetched))
    next(pages)
    pages.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
            t.name == "stac-read-ahead" and t.ident not in before for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "stac-read-ahead" and t.ident not in before]
    assert len(fetched) < 5


def test_slimmed_items_keep_what_the_loader_reads_and_only_the_asked_assets():
    item = {
        "type": "Feature", "id": "a", "bbox": [1, 2, 3, 4], "geometry": {"type": "Point", "coordinates": [0, 0]},
        "properties": {"datetime": "2022-06-01T10:00:00Z", "eo:cloud_cover": 3, "proj:code": "EPSG:32632",
                       "proj:shape": [10, 10]},
        "assets": {"B04": {"href": "/d/a_B04.tif", "proj:code": "EPSG:32633"}, "B08": {"href": "/d/a_B08.tif"}},
        "links": [{"rel": "self", "href": "x"}],
    }
    slim = for_stacking(item, ["B04"])
    assert set(slim) == {"type", "id", "bbox", "properties", "assets"}
    assert slim["properties"] == {"datetime": "2022-06-01T10:00:00Z", "proj:code": "EPSG:32632",
                                  "proj:shape": [10, 10], "proj:epsg": 32632}
    assert slim["assets"] == {"B04": {"href": "/d/a_B04.tif", "proj:code": "EPSG:32633", "proj:epsg": 32633}}
    assert "proj:epsg" not in item["properties"] and "proj:epsg" not in item["assets"]["B04"]  # a copy


def test_equal_values_of_slimmed_items_are_held_once_and_numbers_keep_their_type():
    shared: dict = {}
    grid = {"proj:transform": [10.0, 0.0, 600000.0, 0.0, -10.0, 5040000.0], "proj:shape": [3072, 3072]}
    first = for_stacking({"id": "1", "properties": dict(grid), "assets": {}}, [], shared)
    second = for_stacking({"id": "2", "properties": {k: list(v) for k, v in grid.items()}, "assets": {}}, [], shared)
    assert first["properties"]["proj:transform"] is second["properties"]["proj:transform"]
    flags = for_stacking({"id": "3", "properties": {"proj:flags": [True, 1]}, "assets": {}}, [], shared)
    assert flags["properties"]["proj:flags"] == [True, 1]
    assert type(flags["properties"]["proj:flags"][0]) is bool
