"""A service's process made ready for its tiles: parsed once, then cut to each tile.

Every tile of a service evaluates the same graph; tiles differ only in the spatial extents of the
graph's top-level loads and in the defaults of the tile parameters (the rule in
``backend.maps.xyz``). So the process is parsed and checked once (:meth:`TileGraph.of`: the
structure, the node and process fields, the tile parameters declared) and each tile gets a copy of
the parsed nodes with its extents written in (:meth:`TileGraph.for_tile`), evaluated without a
second parse — parsing was a twentieth of a cold tile's time. Each tile still evaluates its own
deep copy of the nodes, so nothing a process does to its arguments reaches another tile. The pixel
sizes of the loaded collections, which set the margin around each tile, are read when the graph is
prepared (the collection document is built anew on every read).

:func:`service_graph` keeps the prepared graphs of the services a worker draws, keyed by service and
revision: a revision's process never changes (every change of a service raises its revision), so a
kept graph is never stale.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyproj

from backend.maps.store import ServiceRecord
from backend.maps.tiles import Tile
from backend.maps.xyz import PROCESS_PARAMETERS
from backend.services import Services
from processes.core.errors import OpenEOError
from processes.core.graph import ProcessGraph, parse_process_graph
from processes.model.geometry import WGS84, crs_of, geojson_geometries, is_geojson, parse_crs, transformer

LOADS = ("load_collection", "load_stac")
WEB_MERCATOR = pyproj.CRS.from_epsg(3857)
_TILE_PARAMETERS = {p["name"] for p in PROCESS_PARAMETERS}
KEPT_SERVICES = 64
"""Prepared graphs :func:`service_graph` keeps per worker (the services drawn most recently)."""


@dataclass(frozen=True)
class TileGraph:
    """A process parsed for tiles: its nodes (nested processes unwrapped, as the parser reads them)
    and the document they came from, with the tile parameters declared."""

    document: Mapping[str, Any]
    """The process, its ``parameters`` being the declared ones without the tile parameters."""
    graph: ProcessGraph
    pixel_sizes: tuple[float, ...]
    """Ground metres per pixel of the collections the top-level loads load, where known."""

    @classmethod
    def of(cls, services: Services, process: Mapping[str, Any]) -> TileGraph:
        """Parse and check ``process`` as every tile's evaluation would (the same errors)."""
        declared = [p for p in process.get("parameters") or []
                    if not (isinstance(p, dict) and p.get("name") in _TILE_PARAMETERS)]
        document = copy.deepcopy({**process, "parameters": declared + _tile_parameters(None)})
        graph = parse_process_graph(document)
        return cls({**document, "parameters": document["parameters"][:len(declared)], "process_graph": graph.nodes},
                   graph, _pixel_sizes(services, graph.nodes))

    def for_tile(self, tile: Tile) -> tuple[dict[str, Any], ProcessGraph] | None:
        """The process and its parsed graph for ``tile``: the tile's parameters declared with the tile's
        bounds (plus a margin) as defaults, and the top-level loads' spatial extents set to the tile, or to
        the tile intersected with their literal extent. None when the tile lies outside a load's literal
        extent (nothing to draw)."""
        nodes = copy.deepcopy(dict(self.graph.nodes))
        margin = self._margin(tile)
        west, south, east, north = tile.bounds_3857()
        padded = (west - margin, south - margin, east + margin, north + margin)
        for node in nodes.values():
            if node.get("process_id") not in LOADS:
                continue
            arguments = node["arguments"]
            extent = arguments.get("spatial_extent")
            if extent is None:
                arguments["spatial_extent"] = _bbox(padded, 3857)
                continue
            if has_reference(extent):
                continue  # the tile's parameters fill it
            literal = literal_bounds(extent)
            if literal is None:
                continue  # the load reports what is wrong with it
            (lw, ls, le, ln), crs = literal
            tw, ts, te, tn = transformer(WEB_MERCATOR, crs).transform_bounds(*padded, densify_pts=21)
            box = (max(lw, tw), max(ls, ts), min(le, te), min(ln, tn))
            if not (box[0] < box[2] and box[1] < box[3]):
                return None
            epsg = crs.to_epsg()
            arguments["spatial_extent"] = _bbox(box, epsg if epsg is not None else crs.to_wkt())
        lonlat = transformer(WEB_MERCATOR, WGS84).transform_bounds(*padded)
        document = {**self.document, "process_graph": nodes,
                    "parameters": [*self.document["parameters"], *_tile_parameters(lonlat)]}
        return document, ProcessGraph(nodes, self.graph.result_node)

    def _margin(self, tile: Tile) -> float:
        """EPSG:3857 metres added around the tile: 3 pixels of the coarsest loaded collection (where its
        pixel size is known), at least 8 tile pixels."""
        _, south, _, north = tile.bounds_4326()
        stretch = 1 / max(math.cos(math.radians((south + north) / 2)), 0.01)  # ground metres → 3857 metres
        return max([8 * tile.pixel_size, *(3 * size * stretch for size in self.pixel_sizes)])


def _tile_parameters(lonlat: tuple[float, float, float, float] | None) -> list[dict[str, Any]]:
    """The tile parameters as the process declares them: optional, with the tile's bounds as defaults."""
    if lonlat is None:
        return [{**p, "optional": True} for p in PROCESS_PARAMETERS]
    values: dict[str, Any] = {f"spatial_extent_{side}": v for side, v in zip(("west", "south", "east", "north"),
                                                                              lonlat, strict=True)}
    values["spatial_extent_crs"] = 4326
    values["spatial_extent"] = _bbox(lonlat, 4326)
    return [{**p, "optional": True, "default": values[p["name"]]} for p in PROCESS_PARAMETERS]


_kept: OrderedDict[tuple[str, int], TileGraph] = OrderedDict()
_kept_lock = threading.Lock()


def service_graph(services: Services, service: ServiceRecord) -> TileGraph:
    """The service's process prepared for tiles, parsed once per worker and revision (an invalid one
    raises every time, as its tiles' evaluation did)."""
    key = (service.id, service.revision)
    with _kept_lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
            return found
    prepared = TileGraph.of(services, service.process)
    with _kept_lock:
        _kept[key] = prepared
        while len(_kept) > KEPT_SERVICES:
            _kept.popitem(last=False)
    return prepared


def _pixel_sizes(services: Services, nodes: Mapping[str, Any]) -> tuple[float, ...]:
    sizes = []
    for node in nodes.values():
        collection_id = node.get("arguments", {}).get("id")
        if node.get("process_id") != "load_collection" or not isinstance(collection_id, str):
            continue
        try:
            document = services.catalog.get(collection_id).stac_collection()
            x = document["cube:dimensions"]["x"]
            step = float(x["step"])
            if crs_of(x.get("reference_system", 4326)).is_geographic:
                step *= 111_320.0
        except (OpenEOError, KeyError, TypeError, ValueError, pyproj.exceptions.CRSError):
            continue
        sizes.append(step)
    return tuple(sizes)


def collection_bounds(services: Services, collection_id: Any) -> tuple[float, float, float, float] | None:
    """The WGS84 bounding box of a collection's spatial extent, or None for an unknown id or extent."""
    if not isinstance(collection_id, str):
        return None
    try:
        bbox = [float(v) for v in services.catalog.get(collection_id).stac_collection()["extent"]["spatial"]["bbox"][0]]
    except (OpenEOError, KeyError, IndexError, TypeError, ValueError):
        return None
    if len(bbox) == 6:  # with heights: west, south, bottom, east, north, top
        bbox = [bbox[0], bbox[1], bbox[3], bbox[4]]
    return (bbox[0], bbox[1], bbox[2], bbox[3]) if len(bbox) == 4 else None


def literal_bounds(extent: Any) -> tuple[tuple[float, float, float, float], pyproj.CRS] | None:
    """``(west, south, east, north), crs`` of a literal extent (bbox or GeoJSON), or None."""
    if is_geojson(extent):
        geoms = geojson_geometries(extent, "load_collection", "spatial_extent")
        if not geoms:
            return None
        bounds = np.array([g.bounds for g in geoms])
        return (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max()), WGS84
    if isinstance(extent, Mapping) and all(k in extent for k in ("west", "south", "east", "north")):
        values = [extent[k] for k in ("west", "south", "east", "north")]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            crs = parse_crs(extent.get("crs"), "load_collection", "spatial_extent")
            return (float(values[0]), float(values[1]), float(values[2]), float(values[3])), crs
    return None


def has_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return "from_parameter" in value or "from_node" in value or any(has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(has_reference(v) for v in value)
    return False


def _bbox(bounds: tuple[float, float, float, float], crs: Any) -> dict[str, Any]:
    return {"west": bounds[0], "south": bounds[1], "east": bounds[2], "north": bounds[3], "crs": crs}
