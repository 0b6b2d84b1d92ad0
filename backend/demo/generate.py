"""``generate_demo``: the pipeline from a size name to a finished demo catalog on disk.

landscape (static ground truth) -> products rendered from it (the Sentinel-2 collection) -> parcels
GeoJSON -> the other products of the same area (two DEMs, a Sentinel-5P-like daily grid), drawn in this
process while worker processes, if any, render the Sentinel-2 dates -> STAC catalog.

catalog.json is written last, so its presence means a complete run; it records the size and generator
version, which is how a second call recognises output it can keep.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from backend.demo.dem import EUDEM_COLLECTION, SRTM_COLLECTION, SRTM_TILES, write_dems
from backend.demo.landscape import Landscape, build_landscape
from backend.demo.parcels import write_parcels_geojson
from backend.demo.sentinel2 import S2Acquisition, write_acquisitions
from backend.demo.sentinel5p import S5P_COLLECTION, S5P_DAYS, write_s5p
from backend.demo.sizes import DemoSize, demo_size
from backend.demo.stac import DEMO_SIZE_FIELD, DEMO_VERSION_FIELD, build_catalog, s2_collection, save_catalog
from backend.demo.stac_grids import dem_collection, s5p_collection

DEMO_S2_COLLECTION = "DEMO_SENTINEL2_L2A"
DEMO_VERSION = 3
"""Bump when the generated data changes, so existing demo output of an older generator is regenerated."""

DEMO_COLLECTIONS = (DEMO_S2_COLLECTION, SRTM_COLLECTION, EUDEM_COLLECTION, S5P_COLLECTION)
"""The collections of the demo catalog, in catalog order."""
OTHER_ITEMS = len(SRTM_TILES) + 1 + S5P_DAYS
"""Items besides Sentinel-2's: the SRTM-like tiles, the one EU-DEM-like tile, one Sentinel-5P day each."""

CATALOG_FILE = "catalog.json"
PARCELS_FILE = "parcels.geojson"


@dataclass(frozen=True)
class DemoSummary:
    """What ``generate_demo`` left in the output directory."""

    catalog_path: Path
    """The root catalog.json."""

    collection_ids: tuple[str, ...]
    """Ids of the collections in the catalog."""

    n_items: int
    """Number of STAC items over all collections."""

    n_parcels: int
    """Number of parcels in parcels.geojson."""

    seconds: float
    """Wall-clock time of the call."""

    size: str
    """Name of the demo size."""

    reused: bool
    """True when existing output of the same size was kept instead of being regenerated."""

    @property
    def parcels_path(self) -> Path:
        return self.catalog_path.parent / PARCELS_FILE


def generate_demo(
    out_dir: Path, size: str | DemoSize = "small", *, overwrite: bool = False, workers: int | None = None
) -> DemoSummary:
    """Generate the demo data of ``size`` into ``out_dir`` (created if missing).

    If ``out_dir`` already holds complete demo output of the same size and generator version, it is kept
    and the call returns at once, unless ``overwrite``. ``workers`` processes render dates in parallel
    (default: the usable CPUs, at most 4; 1 renders in this process); the output does not depend on it.
    """
    started = time.perf_counter()
    spec = demo_size(size)
    out_dir = Path(out_dir)
    catalog_path = out_dir / CATALOG_FILE

    def summary(reused: bool) -> DemoSummary:
        return DemoSummary(
            catalog_path=catalog_path, collection_ids=DEMO_COLLECTIONS, n_items=spec.n_items + OTHER_ITEMS,
            n_parcels=spec.n_parcels, seconds=time.perf_counter() - started, size=spec.name, reused=reused,
        )

    if not overwrite and _existing_demo(catalog_path) == (spec.name, DEMO_VERSION):
        return summary(reused=True)

    _remove_previous_output(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _date_renderer(spec, out_dir / DEMO_S2_COLLECTION, workers or _usable_cpus()) as render_dates:
        landscape = build_landscape(spec)  # while worker processes, if any, already render
        write_parcels_geojson(landscape.parcels, out_dir / PARCELS_FILE)
        dems = write_dems(spec.seed, out_dir)
        s5p_days = write_s5p(spec.seed, out_dir)
        acquisitions = render_dates(landscape)

    collections = [
        s2_collection(DEMO_S2_COLLECTION, spec, acquisitions),
        dem_collection(SRTM_COLLECTION, dems),
        dem_collection(EUDEM_COLLECTION, dems),
        s5p_collection(s5p_days),
    ]
    save_catalog(build_catalog(spec, DEMO_VERSION, collections, PARCELS_FILE), out_dir)
    return summary(reused=False)


@contextmanager
def _date_renderer(
    spec: DemoSize, collection_dir: Path, workers: int
) -> Iterator[Callable[[Landscape], list[S2Acquisition]]]:
    """A function writing the Sentinel-2 items of all dates, in date order, given the landscape.

    With more than one worker, rendering starts in worker processes on entering the context, and the
    function only collects their results.
    """
    dates = range(len(spec.dates))
    if workers <= 1:
        yield lambda landscape: [a for i in dates for a in write_acquisitions(landscape, spec, i, collection_dir)]
        return
    # Processes, not threads: GDAL's COG writer holds the GIL, and writing is half the work. Each worker
    # rebuilds the (deterministic) landscape instead of receiving it, which costs less than pickling it.
    # "spawn" because forking a process that may run other threads (a server, Dask) can deadlock.
    pool = ProcessPoolExecutor(min(workers, len(dates)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(spec,))
    try:
        futures = [pool.submit(_write_date_in_worker, i, collection_dir) for i in dates]
        yield lambda _landscape: [a for future in futures for a in future.result()]
    finally:
        # On success everything is done already; on failure, do not wait for the remaining dates.
        pool.shutdown(wait=True, cancel_futures=True)


_worker_state: tuple[DemoSize, Landscape] | None = None
"""The size and landscape of a render worker process (set once by ``_start_worker``)."""


def _start_worker(spec: DemoSize) -> None:
    global _worker_state
    _worker_state = (spec, build_landscape(spec))


def _write_date_in_worker(date_index: int, collection_dir: Path) -> list[S2Acquisition]:
    assert _worker_state is not None, "render worker used before _start_worker"
    spec, landscape = _worker_state
    return write_acquisitions(landscape, spec, date_index, collection_dir)


def _usable_cpus() -> int:
    try:
        count = len(os.sched_getaffinity(0))  # honours container and taskset limits, unlike cpu_count
    except AttributeError:
        count = os.cpu_count() or 1
    return min(4, count)


def _existing_demo(catalog_path: Path) -> tuple[str, int] | None:
    """(size, version) of the demo output at ``catalog_path``; None if there is none.

    Raises if the file is some other STAC catalog, rather than deleting data the generator did not write.
    """
    if not catalog_path.exists():
        return None
    try:
        catalog = json.loads(catalog_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a truncated catalog.json of an interrupted run: regenerate
    if not isinstance(catalog, dict) or DEMO_SIZE_FIELD not in catalog:
        raise FileExistsError(
            f"{catalog_path} is a STAC catalog not written by `terracube demo`; "
            "choose an empty or demo-only output directory"
        )
    return str(catalog[DEMO_SIZE_FIELD]), int(catalog.get(DEMO_VERSION_FIELD, 0))


def _remove_previous_output(out_dir: Path) -> None:
    """Delete what an earlier run wrote (only that), catalog first so a half-deleted tree never looks complete."""
    _existing_demo(out_dir / CATALOG_FILE)  # refuses foreign catalogs
    (out_dir / CATALOG_FILE).unlink(missing_ok=True)
    (out_dir / PARCELS_FILE).unlink(missing_ok=True)
    for collection in DEMO_COLLECTIONS:
        if (out_dir / collection).is_dir():
            shutil.rmtree(out_dir / collection)
