"""Batch job results: files in the job's folder and their STAC 1.0 description.

A raster cube saved as GTiff with a time dimension becomes one COG per date (``<band-or-result>_
<YYYY-MM-DD>.tif``); other formats give one file. ``results.json`` in the folder is a STAC
Collection whose assets carry ``type``, ``roles``, ``file:size``, ``proj:*`` and ``raster:bands``
(read back from the written files, so they describe what is really there). The API serves it with
hrefs rewritten to signed download URLs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import rasterio

from processes.formats import get_output_format
from processes.formats.blocks import progress_meter
from processes.library.save_result import SaveResult
from processes.model.raster_cube import is_raster_cube, time_dim

STAC_FILE = "results.json"


def save_job_result(value: Any, folder: Path, log: Callable[[str, str], None] | None = None) -> list[Path]:
    """Write a job's result value into ``folder``; returns the files written. ``log(level, message)``
    hears which output is being written; the progress meter (if any) how many there will be."""
    folder.mkdir(parents=True, exist_ok=True)
    if not isinstance(value, SaveResult):
        # No save_result in the graph: GTiff for raster cubes, JSON for anything else.
        fmt = get_output_format("GTiff" if is_raster_cube(value) else "JSON")
        value = SaveResult(value, fmt, fmt.check(value, {}))
    data = value.data
    t = time_dim(data) if is_raster_cube(data) else None
    meter = progress_meter.get()
    if value.format.name == "GTiff" and t is not None and data.sizes[t] > 1:
        count = data.sizes[t]
        if meter is not None:
            meter.expect_outputs(count)
        written = []
        for i in range(count):
            stamp = pd.Timestamp(data[t].values[i])
            target = folder / f"result_{stamp:%Y-%m-%dT%H%M%SZ}.tif"
            if log is not None:
                log("info", f"Writing {target.name} ({i + 1} of {count}).")
            value.format.write(data.isel({t: [i]}), target, value.options)
            written.append(target)
        return written
    target = folder / value.filename
    if log is not None:
        log("info", f"Writing {target.name}.")
    value.write(target)
    return [target]


def _raster_fields(path: Path) -> dict[str, Any]:
    with rasterio.open(path) as src:
        fields: dict[str, Any] = {
            "proj:epsg": src.crs.to_epsg() if src.crs else None,
            "proj:shape": [src.height, src.width],
            "proj:bbox": list(src.bounds),
            "proj:transform": list(src.transform)[:6],
            "raster:bands": [],
            "eo:bands": [],
        }
        for i in range(1, src.count + 1):
            tags = src.tags(i)
            band: dict[str, Any] = {"data_type": src.dtypes[i - 1]}
            if src.nodata is not None:
                band["nodata"] = "nan" if src.nodata != src.nodata else src.nodata
            if "STATISTICS_MINIMUM" in tags:
                band["statistics"] = {
                    "minimum": float(tags["STATISTICS_MINIMUM"]), "maximum": float(tags["STATISTICS_MAXIMUM"]),
                    "mean": float(tags["STATISTICS_MEAN"]), "stddev": float(tags["STATISTICS_STDDEV"]),
                    "valid_percent": float(tags.get("STATISTICS_VALID_PERCENT", 100)),
                }
            fields["raster:bands"].append(band)
            fields["eo:bands"].append({"name": src.descriptions[i - 1] or f"band_{i}"})
        fields["datetime"] = src.tags().get("datetime")
    return fields


def _wgs84_bbox(fields: dict[str, Any]) -> list[float] | None:
    if not fields.get("proj:epsg"):
        return None
    from pyproj import Transformer

    transformer = Transformer.from_crs(fields["proj:epsg"], 4326, always_xy=True)
    return list(transformer.transform_bounds(*fields["proj:bbox"]))


def write_stac(job: Any, files: list[Path], folder: Path, media_type: str) -> dict[str, Any]:
    """Describe the written files as a STAC Collection; saved as ``results.json``."""
    assets: dict[str, Any] = {}
    boxes = []
    times = []
    for path in files:
        asset: dict[str, Any] = {
            "href": path.name,
            "type": media_type,
            "roles": ["data"],
            "title": path.name,
            "file:size": path.stat().st_size,
        }
        if path.suffix == ".tif":
            fields = _raster_fields(path)
            when = fields.pop("datetime")
            asset.update({k: v for k, v in fields.items() if v is not None})
            if when:
                asset["datetime"] = when
                times.append(when)
            box = _wgs84_bbox(fields)
            if box:
                boxes.append(box)
        assets[path.name] = asset
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)] \
        if boxes else [-180.0, -90.0, 180.0, 90.0]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    interval = [min(times), max(times)] if times else [now, now]
    document = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        ],
        "id": job.id,
        "title": job.title or f"Results of batch job {job.id}",
        "description": job.description or f"Results of the openEO batch job {job.id}.",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
        "assets": assets,
        "links": [],
        "openeo:status": "finished",
        "created": now,
    }
    (folder / STAC_FILE).write_text(json.dumps(document, indent=1))
    return document


def read_stac(folder: Path) -> dict[str, Any]:
    return json.loads((folder / STAC_FILE).read_text())

