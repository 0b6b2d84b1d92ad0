"""The map viewer (``/viewer``, backend/web) in a real browser: Debian's Chromium, driven by Playwright,
shows an XYZ service made with the openEO Python client. What the browser received (the tile
responses) and what it drew (a screenshot of the map) are both checked.

Needs Playwright for Python (the ``test`` extra), ``/usr/bin/chromium`` (``.ci/run`` installs it) and
the viewer's libraries (``npm ci`` in backend/web, which ``make install`` runs); skipped with the
reason where one is missing. Playwright never downloads a browser here.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

from backend.api.web import WEB_DIR, libraries_installed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # nothing but the local server is reachable: no calls home, no updates, no sync
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 800, "height": 600}
WEST, SOUTH, EAST, NORTH = 10.33, 45.47, 10.36, 45.49  # inside DEMO_SENTINEL2_L2A
EXTENT = {"west": WEST, "south": SOUTH, "east": EAST, "north": NORTH}
MAP_BACKGROUND = (0xEC, 0xEA, 0xE4)  # #map in backend/web/css/viewer.css
SETTLED = "document.getElementById('status').dataset.state !== 'loading'"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (the test extra)")
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def viewer_libraries() -> None:
    if libraries_installed():
        return
    if not shutil.which("npm"):
        pytest.skip("needs npm to install the map viewer's libraries (backend/web/package.json)")
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=WEB_DIR, capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"npm could not install the map viewer's libraries: {done.stderr[-300:]}")


@pytest.fixture
def page(browser, viewer_libraries, live_server) -> Iterator:
    """A page in a context of its own: a fresh browser cache, as a new visitor has."""
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def ndvi_service(connection):
    cube = connection.load_collection("DEMO_SENTINEL2_L2A", spatial_extent=EXTENT,
                                      temporal_extent=["2023-05-01", "2023-06-01"], bands=["B04", "B08"])
    ndvi = cube.ndvi().reduce_dimension(dimension="t", reducer="max")
    return ndvi.tiled_viewing_service(type="XYZ", title="NDVI",
                                      configuration={"colormap": "RdYlGn", "value_range": [-1, 1]})


def open_viewer(page, root: str, tiles: str) -> list:
    """Opens the viewer on the extent and waits until its tiles have loaded or failed; returns the
    responses to the map's tile images (not the viewer's own look at a failed tile)."""
    responses: list = []

    def record(response) -> None:
        if "/tiles/" in response.url and response.request.resource_type == "image":
            responses.append(response)

    page.on("response", record)
    page.goto(f"{root}/viewer?tiles={quote(tiles, safe='')}&bounds={WEST},{SOUTH},{EAST},{NORTH}&title=NDVI")
    page.wait_for_function(SETTLED, timeout=120_000)
    return responses


def map_pixels(page) -> np.ndarray:
    """The map as drawn (RGB), without Leaflet's zoom and attribution controls; cut to the whole
    pixels inside the map's box (the title bar above it may end mid-pixel)."""
    page.add_style_tag(content=".leaflet-control-container { display: none; }")
    box = page.locator("#map").bounding_box()
    left, top = math.ceil(box["x"]), math.ceil(box["y"])
    right, bottom = math.floor(box["x"] + box["width"]), math.floor(box["y"] + box["height"])
    png = page.screenshot(clip={"x": left, "y": top, "width": right - left, "height": bottom - top},
                          animations="disabled")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def mercator_aspect(west: float, south: float, east: float, north: float) -> float:
    """Width over height of a lon/lat box on a Web Mercator map."""
    def y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    return math.radians(east - west) / (y(north) - y(south))


def test_the_viewer_draws_a_services_tiles_centred_on_its_extent(connection, live_server, page):
    service = ndvi_service(connection)
    responses = open_viewer(page, live_server.root, service.describe_service()["url"])

    status = page.locator("#status")
    assert status.get_attribute("data-state") == "ready", status.inner_text()
    shown = int(re.match(r"(\d+) tiles? shown", status.inner_text()).group(1))
    assert shown == len(responses) >= 4, [r.url for r in responses]
    tile_colours = set()
    for response in responses:
        assert response.status == 200 and response.headers["content-type"] == "image/png", response.url
        tile = np.asarray(Image.open(io.BytesIO(response.body())).convert("RGBA"))
        assert tile.shape == (256, 256, 4)
        tile_colours.update(map(tuple, tile[tile[..., 3] == 255][:, :3].tolist()))

    pixels = map_pixels(page)
    assert tuple(pixels[2, 2]) == MAP_BACKGROUND  # a corner, away from the data
    data = np.abs(pixels - MAP_BACKGROUND).max(axis=-1) > 12
    rows, cols = np.flatnonzero(data.any(axis=1)), np.flatnonzero(data.any(axis=0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    height, width = pixels.shape[:2]
    # fitted to the bounds: the data sits in the middle, as wide against high as the extent on the map
    assert abs((left + right) / 2 - width / 2) < 0.02 * width
    assert abs((top + bottom) / 2 - height / 2) < 0.02 * height
    assert (right - left) / (bottom - top) == pytest.approx(mercator_aspect(WEST, SOUTH, EAST, NORTH), rel=0.05)
    assert right - left > width / 4, "zoomed in on the extent"
    inside = pixels[top:bottom, left:right]
    drawn = data[top:bottom, left:right]
    assert drawn.mean() > 0.95, "the extent is covered by opaque tile pixels"
    assert ((inside.max(axis=-1) - inside.min(axis=-1))[drawn] > 40).mean() > 0.95, "coloured by RdYlGn"
    # the browser drew the tiles' own colours (nearest neighbour, whole pixels): no blending, no tint
    from_tiles = np.array([tuple(p) in tile_colours for p in inside[drawn].tolist()])
    assert from_tiles.mean() > 0.95
    service.delete_service()


def test_a_deleted_services_tiles_fail_in_the_browser_with_the_reason(connection, live_server, page):
    service = ndvi_service(connection)
    url = service.describe_service()["url"]
    service.delete_service()

    responses = open_viewer(page, live_server.root, url)

    assert responses and all(r.status == 404 for r in responses), [(r.url, r.status) for r in responses]
    status = page.locator("#status")
    assert status.get_attribute("data-state") == "error"
    page.wait_for_function("document.getElementById('status').textContent.includes('HTTP')", timeout=30_000)
    text = status.inner_text()
    assert text.startswith(f"{len(responses)} of {len(responses)} tiles failed: HTTP 404"), text
    assert "deleted" in text, "the back-end's reason is shown"
    pixels = map_pixels(page)
    assert (np.abs(pixels - MAP_BACKGROUND).max(axis=-1) <= 12).all(), "nothing drawn"


def test_the_viewer_without_tiles_says_how_to_give_them(live_server, page):
    page.goto(f"{live_server.root}/viewer")
    page.wait_for_function(SETTLED, timeout=30_000)
    status = page.locator("#status")
    assert status.get_attribute("data-state") == "error"
    assert "Which tiles?" in status.inner_text() and "tiles=" in status.inner_text()
