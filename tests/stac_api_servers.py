"""Real STAC API servers for tests and benchmarks, over a generated collection of 20,000 items.

:func:`write_big_collection` writes ``BIG_S2``: copies of the demo Sentinel-2 items, one an hour from
2021-01-01, whose assets are the demo COGs (absolute paths); only the items listed in ``CLEAR`` have
``eo:cloud_cover`` below 1. Two servers serve it, each started as a subprocess on a free port:

- :func:`rustac_server`: ``rustac serve`` (the ``rustac`` wheel, in-memory backend). It declares core,
  collections, features and item search — no Filter and no Query extension — so property filters are
  checked on our side.
- :func:`geoparquet_server`: stac-fastapi-geoparquet (DuckDB over stac-geoparquet, with the DuckDB
  extensions of the ``rustac-duckdb-extensions`` wheel, so nothing is downloaded). It declares the Filter
  extension (CQL2), so property filters are pushed to it.

``python -m tests.stac_api_servers geoparquet COLLECTIONS_JSON PORT`` runs the second one (uvicorn).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backend.devserver import free_port, stop, wait_until_answering

COLLECTION = "BIG_S2"
ITEMS = 20_000
CLEAR = (1_234, 5_678, 9_999, 14_321, 19_876)
"""Indexes of the items with ``eo:cloud_cover`` < 1 (0.5); all others have 1 to 99."""
START = datetime(2021, 1, 1, 10, tzinfo=UTC)
LEAN_ASSETS = ("B02", "B03", "B04", "B08", "SCL")


@dataclass(frozen=True)
class BigCollection:
    collection: Path
    """The collection JSON (with full metadata)."""
    items_json: Path
    """All items as one GeoJSON FeatureCollection (for rustac)."""
    collections_json: Path
    """A JSON list of the collection with a stac-geoparquet asset of the items (for stac-fastapi-geoparquet)."""
    clear_dates: tuple[str, ...]
    """``YYYY-MM-DDTHH`` of the clear items, in time order."""


def item_time(index: int) -> datetime:
    return START + timedelta(hours=index)


def write_big_collection(demo_dir: Path, out_dir: Path, count: int = ITEMS) -> BigCollection:
    """Write the collection (see module docstring); about two seconds for 20,000 items."""
    s2_dir = demo_dir / "DEMO_SENTINEL2_L2A"
    collection = json.loads((s2_dir / "collection.json").read_text())
    templates = []
    for path in sorted(s2_dir.glob("*/*.json")):
        item = json.loads(path.read_text())
        # lean assets (what stacking reads): 20,000 items stay ~30 MB of JSON
        item["assets"] = {
            key: {"href": str((path.parent / asset["href"]).resolve()), "type": asset.get("type"),
                  "roles": asset.get("roles", ["data"]),
                  **{k: asset[k] for k in ("proj:shape", "proj:transform") if k in asset}}
            for key, asset in item["assets"].items() if key in LEAN_ASSETS
        }
        templates.append(item)
    templates = [t for t in templates if "_T1_" in t["id"]] or templates  # one tile: one footprint
    features = []
    for index in range(count):
        template = templates[index % len(templates)]
        when = item_time(index)
        cloud = 0.5 if index in CLEAR else float(1 + (index * 37) % 99)
        properties = {**template["properties"], "datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "eo:cloud_cover": cloud, "platform": "sentinel-2a" if index % 2 else "sentinel-2b"}
        features.append({**template, "id": f"BIG_{index:06d}", "collection": COLLECTION, "links": [],
                         "properties": properties})
    out_dir.mkdir(parents=True, exist_ok=True)
    end = item_time(count - 1).strftime("%Y-%m-%dT%H:%M:%SZ")
    collection.update(id=COLLECTION, title="Generated Sentinel-2 items (tests)", links=[])
    collection["extent"]["temporal"]["interval"] = [[START.strftime("%Y-%m-%dT%H:%M:%SZ"), end]]
    collection.pop("cube:dimensions", None)  # its temporal extent would be the demo's
    collection_path = out_dir / "collection.json"
    collection_path.write_text(json.dumps(collection))
    items_json = out_dir / "items.json"
    items_json.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    parquet = out_dir / "items.parquet"
    subprocess.run([_rustac(), "translate", str(items_json), str(parquet)], check=True, capture_output=True)
    collections_json = out_dir / "collections.json"
    collections_json.write_text(json.dumps([
        {**collection, "assets": {"data": {"href": str(parquet), "type": "application/vnd.apache.parquet"}}}
    ]))
    clear = tuple(item_time(i).strftime("%Y-%m-%dT%H") for i in sorted(CLEAR) if i < count)
    return BigCollection(collection_path, items_json, collections_json, clear)


def _rustac() -> str:
    found = shutil.which("rustac", path=str(Path(sys.executable).parent)) or shutil.which("rustac")
    if found is None:
        raise RuntimeError("the rustac command is missing: pip install -e '.[test]'")
    return found


@contextmanager
def _serving(command: list[str], log_path: Path, timeout: float = 60) -> Iterator[str]:
    """Run ``command`` (``{port}`` in it becomes a free port) until the API answers; yields its root URL."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([c.replace("{port}", str(port)) for c in command],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(f"{root}/conformance", process, log_path, "the STAC API server", timeout)
        yield root
    finally:
        stop(process)


@contextmanager
def rustac_server(big: BigCollection, log_path: Path) -> Iterator[str]:
    """``rustac serve`` of the collection (in-memory backend); yields the API's root URL."""
    with _serving([_rustac(), "serve", "--addr", "127.0.0.1:{port}", str(big.collection), str(big.items_json)],
                  log_path) as root:
        yield root


@contextmanager
def geoparquet_server(big: BigCollection, log_path: Path) -> Iterator[str]:
    """stac-fastapi-geoparquet over the collection's stac-geoparquet file; yields the API's root URL."""
    command = [sys.executable, "-m", "tests.stac_api_servers", "geoparquet", str(big.collections_json), "{port}"]
    with _serving(command, log_path) as root:
        yield root


def _run_geoparquet(collections_json: str, port: int) -> None:
    import rustac_duckdb_extensions
    import uvicorn
    from rustac import DuckdbClient  # the bare client: rustac's wrapper is shadowed in its package
    from stac_fastapi.geoparquet.api import create
    from stac_fastapi.geoparquet.settings import Settings

    client = DuckdbClient(extension_directory=str(rustac_duckdb_extensions.extension_directory()),
                          install_extensions=False)
    api = create(Settings(stac_fastapi_collections_href=collections_json,
                          stac_fastapi_collections_reload_seconds=3600), client)
    uvicorn.run(api.app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "geoparquet":
        _run_geoparquet(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: python -m tests.stac_api_servers geoparquet COLLECTIONS_JSON PORT")
