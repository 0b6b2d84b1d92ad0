"""The size of a load, planned from the request's numbers before anything is built.

A lazy cube is cheap per pixel but not free per block: a world-sized extent at 10 m holds millions
of Dask blocks, and merely building their graph exhausts a server's memory. So the grid a load will
have is worked out first — from the extent (or the items' own footprints), the pixel size, the
number of days and bands — and a load over its limit is refused at once, naming the limit.

The same planning finds the items that really overlap the extent on the cube's grid: the catalog's
search runs on WGS84 boxes, which are wider than the native footprints, so an extent just outside
the data can find items that hold no pixel of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyproj

from processes.core.errors import NoDataAvailable, ProcessGraphComplexity
from processes.data.stac_items import Item, asset_field, crs_code, item_datetime
from processes.model.geometry import WGS84, BoundingBox, same_crs

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class LoadPlan:
    """What a load will stack: its items, its grid and how many values that makes."""

    items: list[Item]
    """The items whose footprint overlaps the extent (all found items without an extent)."""
    width: int
    height: int
    days: int
    """Days of the time dimension (1 for a collection without one)."""
    bands: int
    temporal: bool = True
    """Whether the cube has a time dimension."""

    @property
    def values(self) -> int:
        return self.width * self.height * self.days * self.bands

    def describe(self) -> str:
        spatial = f"bands {self.bands} × y {self.height:,} × x {self.width:,}"
        return f"t {self.days} × {spatial}" if self.temporal else spatial


def item_bounds(item: Item, assets: list[str], crs: pyproj.CRS) -> Bounds | None:
    """An item's footprint in ``crs``: exact from ``proj:transform``/``proj:shape`` when the item is in
    that CRS, else its WGS84 ``bbox`` transformed (a little wider than the footprint)."""
    props = item.get("properties") or {}
    code = crs_code(item)
    if code is not None and same_crs(code, crs):
        for key in assets:
            transform, shape = asset_field(item, key, "proj:transform"), asset_field(item, key, "proj:shape")
            if transform and shape:
                a, _, c, _, e, f = (float(v) for v in transform[:6])
                xs, ys = (c, c + a * shape[1]), (f, f + e * shape[0])
                return (min(xs), min(ys), max(xs), max(ys))
        if props.get("proj:bbox"):
            west, south, east, north = (float(v) for v in props["proj:bbox"][:4])
            return (west, south, east, north)
    if not item.get("bbox"):
        return None
    west, south, east, north = (float(v) for v in item["bbox"][:4])
    return BoundingBox(west, south, east, north, WGS84).to_crs(crs).bounds


def _overlaps(a: Bounds, b: Bounds) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plan_load(collection_id: str, items: list[Item], assets: list[str], crs: pyproj.CRS,
              resolution: float, bounds: Bounds | None, max_values: int | None, limit_name: str,
              way_out: str = "", *, temporal: bool = True) -> LoadPlan:
    """The plan of a load; raises ``NoDataAvailable`` when no item overlaps the extent on the cube's
    grid and ``ProcessGraphComplexity`` when the cube would hold more than ``max_values``. Without
    ``temporal`` (a collection without time dimension) all items make one mosaic."""
    footprints = [(item, item_bounds(item, assets, crs)) for item in items]
    if bounds is not None:
        kept = [item for item, box in footprints if box is None or _overlaps(box, bounds)]
        if not kept:
            raise NoDataAvailable(
                f"No data in collection '{collection_id}' within the spatial extent: the items found near it "
                "end before it on the collection's grid. Check the extent against the collection's extent."
            )
        west, south, east, north = bounds
    else:
        kept = items
        boxes = [box for _, box in footprints if box is not None]
        if not boxes:
            west = south = east = north = 0.0
        else:
            west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
            east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    width = max(0, math.ceil((east - west) / resolution - 1e-9))
    height = max(0, math.ceil((north - south) / resolution - 1e-9))
    stamps = [stamp for stamp in map(item_datetime, kept) if stamp is not None]
    days = len(pd.DatetimeIndex(stamps).normalize().unique()) if stamps and temporal else 1
    plan = LoadPlan(kept, width, height, days, len(assets), temporal)
    if max_values is not None and plan.values > max_values:
        raise ProcessGraphComplexity(
            f"Loading '{collection_id}' with these extents gives {plan.values:,} values ({plan.describe()}); "
            f"{limit_name} allows at most {max_values:,}. Narrow the spatial or temporal extent, load fewer "
            f"bands, or split the work into several requests. {way_out}".rstrip()
        )
    return plan


GROUND_METRES_PER_DEGREE = 111_320.0
"""Metres on the ground per degree of latitude (and of longitude at the equator)."""


def view_grid_resolution(native: float, crs: pyproj.CRS, view_metres: float | None) -> float:
    """The pixel size a load stacks for a view of ``view_metres`` per pixel (None: the native size).

    Maps are drawn from the coarsest power-of-two multiple of the native pixel size that is still no
    coarser than the view's pixels: the levels of a COG's overviews (2×, 4×, 8×, … the native size), so
    a zoomed-out map tile reads one small overview level instead of every native pixel it covers, and
    is never drawn from coarser data than a tile server would take.
    """
    if view_metres is None or native <= 0:
        return native
    target = view_metres / GROUND_METRES_PER_DEGREE if crs.is_geographic else view_metres
    factor = 1
    while native * factor * 2 <= target * (1 + 1e-9):
        factor *= 2
    return native * factor


def plan_summary(plan: LoadPlan) -> dict[str, Any]:
    return {"items": len(plan.items), "values": plan.values}
