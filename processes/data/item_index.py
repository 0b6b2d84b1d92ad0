"""The item index of a static collection: each item's id, time interval and footprint, and where to read it.

A static catalog on disk can hold hundreds of thousands of item files. Holding them all as objects
takes gigabytes, and pystac's link resolution is quadratic in the number of links of a collection;
reading them all for every search takes seconds. The index holds what a search tests — the time
interval as two ``int64`` columns of microseconds, the footprint as a shapely array — and the item's
file. A search is then a few vectorised comparisons, and only the matching items' files are read.

The index of a catalog on disk is kept in ``index_dir`` (the back-end's data folder) between runs,
keyed by the collection file. When a collection is opened, every item file's modification time and
size are compared with the stored ones (a ``stat`` per file, a fraction of a second for 100,000 items)
and only new or changed files are read again, so an edited catalog is never searched with stale
times or footprints.

Items held in memory (``load_stac`` of a single item, a remote catalog) are indexed the same way, with
the item dicts themselves as their sources.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from processes.data.stac_items import (
    Item,
    StacSourceError,
    absolute_hrefs,
    footprint,
    item_interval,
    read_json_object,
)

log = logging.getLogger(__name__)

INDEX_VERSION = 1
"""Bump when the stored index's layout changes: older files are then rebuilt."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def microseconds(moment: datetime) -> int:
    """Microseconds since the epoch of a zoned datetime: the index's time unit (exact, as datetimes are,
    and ``int64`` from year 1 to 9999, which open interval ends use)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def read_item_file(path: str) -> Item:
    """The item of a file on disk, asset hrefs absolute."""
    item = read_json_object(path)
    if item.get("type") != "Feature":
        raise StacSourceError(f"'{path}' is linked as a STAC item but is not one (no \"type\": \"Feature\").")
    return absolute_hrefs(item, path)


@dataclass(frozen=True)
class _Row:
    id: str
    start: int
    end: int
    bbox: tuple[float, float, float, float]
    wkb: bytes


def _row(item: Item) -> _Row:
    start, end = item_interval(item)
    geometry = footprint(item)
    return _Row(str(item.get("id")), microseconds(start), microseconds(end), tuple(geometry.bounds),
                shapely.to_wkb(geometry))


@dataclass(frozen=True)
class _Columns:
    """The index's columns, one row an item (the layout of the stored index too)."""

    ids: np.ndarray  # bytes (UTF-8)
    starts: np.ndarray  # int64 microseconds
    ends: np.ndarray
    bboxes: np.ndarray  # float64 (n, 4): the footprint's bounds, for a first cut
    wkb: np.ndarray  # uint8: the footprints as WKB, one after the other (in the order of the files)
    wkb_starts: np.ndarray  # int64: where each row's footprint starts in ``wkb``
    wkb_ends: np.ndarray

    @classmethod
    def of_rows(cls, rows: Sequence[_Row]) -> _Columns:
        ends = np.cumsum([len(row.wkb) for row in rows], dtype="int64")
        return cls(
            ids=np.array([row.id.encode() for row in rows], dtype="S"),
            starts=np.array([row.start for row in rows], dtype="int64"),
            ends=np.array([row.end for row in rows], dtype="int64"),
            bboxes=np.array([row.bbox for row in rows], dtype="float64").reshape(len(rows), 4),
            wkb=np.frombuffer(b"".join(row.wkb for row in rows), dtype="uint8"),
            wkb_starts=ends - np.array([len(row.wkb) for row in rows], dtype="int64"),
            wkb_ends=ends,
        )

    def rows(self) -> list[_Row]:
        data = self.wkb.tobytes()
        return [
            _Row(item_id.decode(), start, end, tuple(bbox), data[a:b])
            for item_id, start, end, bbox, a, b in zip(self.ids.tolist(), self.starts.tolist(), self.ends.tolist(),
                                                       self.bboxes.tolist(), self.wkb_starts.tolist(),
                                                       self.wkb_ends.tolist(), strict=True)
        ]

    def footprints(self, positions: np.ndarray) -> np.ndarray:
        data = memoryview(self.wkb.data)
        return shapely.from_wkb([bytes(data[a:b]) for a, b in zip(self.wkb_starts[positions].tolist(),
                                                                  self.wkb_ends[positions].tolist(), strict=True)])

    def reordered(self, order: np.ndarray) -> _Columns:
        """The rows in ``order`` (the footprints stay where they are; their offsets move)."""
        return _Columns(self.ids[order], self.starts[order], self.ends[order], self.bboxes[order], self.wkb,
                        self.wkb_starts[order], self.wkb_ends[order])


class _Files:
    """Item files as one folder and the names below it (a few bytes an item, not a Python string each)."""

    def __init__(self, paths: Sequence[str]):
        self.folder = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0]) if paths else ""
        cut = len(self.folder) + 1 if self.folder else 0
        self.names = np.array([path[cut:].encode() for path in paths], dtype="S")

    def __getitem__(self, position: int) -> str:
        name = self.names[position].decode()
        return os.path.join(self.folder, name) if self.folder else name

    def reordered(self, order: np.ndarray) -> _Files:
        files = object.__new__(_Files)
        files.folder, files.names = self.folder, self.names[order]
        return files


class ItemIndex:
    """The items of one collection, in time order (see module docstring)."""

    def __init__(self, columns: _Columns, sources: _Files | list[Item]):
        order = np.lexsort((columns.ids, columns.starts))  # by time, then id
        if np.any(order != np.arange(order.size)):
            columns = columns.reordered(order)
            sources = sources.reordered(order) if isinstance(sources, _Files) else [sources[i] for i in order]
        self._columns = columns
        self._sources = sources

    def __len__(self) -> int:
        return int(self._columns.ids.size)

    @classmethod
    def of_items(cls, items: Sequence[Item]) -> ItemIndex:
        """An index of items held in memory."""
        return cls(_Columns.of_rows([_row(item) for item in items]), list(items))

    @classmethod
    def of_files(cls, paths: Sequence[str], index_file: Path | None = None) -> ItemIndex:
        """An index of item files, reusing what ``index_file`` stored of unchanged files."""
        files = _Files(paths)
        stats = np.array([_stat(path) for path in paths], dtype="int64").reshape(len(paths), 2)
        stored = _read_index(index_file) if index_file is not None else None
        if stored is not None and stored[0] == files.folder and np.array_equal(stored[1], files.names) \
                and np.array_equal(stored[2], stats):
            return cls(stored[3], files)  # nothing changed: the common case, with no item read
        known = {}
        if stored is not None:
            folder, names, old_stats, columns = stored
            for name, stat, row in zip(names.tolist(), old_stats.tolist(), columns.rows(), strict=True):
                known[os.path.join(folder, name.decode()) if folder else name.decode()] = (tuple(stat), row)
        rows = []
        for path, stat in zip(paths, stats.tolist(), strict=True):
            seen = known.get(path)
            rows.append(seen[1] if seen is not None and seen[0] == tuple(stat) else _row(read_item_file(path)))
        columns = _Columns.of_rows(rows)
        if index_file is not None:
            _write_index(index_file, files, stats, columns)
        return cls(columns, files)

    # --- searching ----------------------------------------------------------------------------
    def matching(self, area: Any | None, start: int | None, end: int | None, *, closed: bool = False) -> np.ndarray:
        """Positions (in time order) of the items whose footprint intersects ``area`` and whose interval
        meets ``[start, end)`` (``closed``: ``[start, end]``, as STAC APIs mean it)."""
        columns = self._columns
        keep = np.ones(len(self), dtype=bool)
        if start is not None:
            keep &= columns.ends >= start
        if end is not None:
            keep &= (columns.starts <= end) if closed else (columns.starts < end)
        if area is not None:
            west, south, east, north = area.bounds
            boxes = columns.bboxes
            keep &= (boxes[:, 0] <= east) & (boxes[:, 2] >= west) & (boxes[:, 1] <= north) & (boxes[:, 3] >= south)
        positions = np.flatnonzero(keep)
        if area is not None and positions.size:
            positions = positions[shapely.intersects(columns.footprints(positions), area)]
        return positions

    def item(self, position: int) -> Item:
        """The whole item at ``position`` (read from its file, or a copy of the one held)."""
        if isinstance(self._sources, _Files):
            return read_item_file(self._sources[position])
        return copy.deepcopy(self._sources[position])  # callers may change what they get

    def items(self, positions: Sequence[int] | np.ndarray) -> Iterator[Item]:
        for position in positions:
            yield self.item(int(position))

    def position(self, item_id: str) -> int | None:
        found = np.flatnonzero(self._columns.ids == item_id.encode())
        return int(found[0]) if found.size else None


# --- the stored index --------------------------------------------------------------------------------
def index_file_for(collection_file: Path, index_dir: Path) -> Path:
    key = hashlib.sha256(str(collection_file.resolve()).encode()).hexdigest()[:24]
    return index_dir / f"items-{key}.npz"


def _stat(path: str) -> tuple[int, int]:
    try:
        status = os.stat(path)
    except OSError:
        raise StacSourceError(f"STAC item file '{path}' linked by the catalog does not exist.") from None
    return status.st_mtime_ns, status.st_size


def _read_index(index_file: Path) -> tuple[str, np.ndarray, np.ndarray, _Columns] | None:
    """The stored index: ``(folder, names, stats, columns)``, or None when there is none (or it is unreadable)."""
    if not index_file.is_file():
        return None
    try:
        with np.load(index_file, allow_pickle=False) as stored:
            if int(stored["version"]) != INDEX_VERSION:
                return None
            columns = _Columns(**{name: stored[name] for name in _Columns.__dataclass_fields__})
            return str(stored["folder"]), stored["names"], stored["stats"], columns
    except Exception as exc:  # a damaged or foreign file: rebuilt, never trusted
        log.warning("the item index %s cannot be read (%s); it is built again", index_file, exc)
        return None


def _write_index(index_file: Path, files: _Files, stats: np.ndarray, columns: _Columns) -> None:
    try:
        index_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=index_file.parent, suffix=".npz", delete=False) as file:
            np.savez(file, version=np.array(INDEX_VERSION), folder=np.array(files.folder), names=files.names,
                     stats=stats, **{name: getattr(columns, name) for name in _Columns.__dataclass_fields__})
        os.replace(file.name, index_file)  # whole or not at all: a reader never sees half an index
    except OSError as exc:
        log.warning("the item index %s cannot be written (%s); the catalog is indexed again next time", index_file, exc)
