"""Rendered map tiles kept for reuse: a memory LRU per worker, and optionally a disk cache shared by all.

A tile is keyed by its service, the service's ``revision`` (which grows with every change of the
service), ``z/x/y`` and its encoding, so a changed graph or configuration can never be served from an
older rendering: its tiles simply have new keys. Panning back over a map costs a dictionary lookup
(memory) or one file read (disk, shared by the gunicorn workers and kept across restarts).

- Memory: at most ``TERRACUBE_TILE_CACHE_MB`` MiB of encoded tiles per worker, least recently used
  dropped first; 0 turns it off.
- Disk (``TERRACUBE_TILE_CACHE_DIR``, off unless set): ``<dir>/<service>/<revision>/<z>/<x>/<y>.<encoding>``,
  written atomically (temporary file + rename). Writing a service's tile removes that service's
  folders of older revisions; the folder is trimmed to ``TERRACUBE_TILE_CACHE_DISK_MB``, oldest files
  first, and :meth:`TileCache.forget` drops a deleted service's tiles.

The ``ETag`` of a tile is a digest of its bytes, so a browser revalidating an unchanged tile gets 304.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from processes.formats.image import ENCODINGS

TileKey = tuple[str, int, int, int, int, str]
"""(service id, revision, z, x, y, encoding)."""


@dataclass(frozen=True)
class CachedTile:
    data: bytes
    """The encoded tile."""
    etag: str
    """A strong entity tag: a digest of ``data``, quoted."""
    media_type: str
    """``image/png``, ``image/jpeg`` or ``image/webp``."""

    @classmethod
    def of(cls, data: bytes, encoding: str) -> CachedTile:
        return cls(data, f'"{hashlib.sha256(data).hexdigest()[:32]}"', ENCODINGS[encoding])


class TileCache:
    """The memory LRU of one worker, in front of the optional disk cache."""

    TRIM_EVERY = 256
    """Disk writes between two checks of the disk cache's size."""

    def __init__(self, max_bytes: int = 64 * 2**20, folder: Path | None = None, max_disk_bytes: int = 2**30):
        self.max_bytes = max_bytes
        self.folder = folder
        self.max_disk_bytes = max_disk_bytes
        self._entries: OrderedDict[TileKey, CachedTile] = OrderedDict()
        self._bytes = 0
        self._writes = 0
        self._lock = threading.Lock()

    # --- reading and writing -----------------------------------------------------------------------
    def get(self, key: TileKey) -> CachedTile | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        path = self._path(key)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        entry = CachedTile.of(data, key[-1])
        self._remember(key, entry)
        return entry

    def put(self, key: TileKey, data: bytes) -> CachedTile:
        entry = CachedTile.of(data, key[-1])
        self._remember(key, entry)
        self._store(key, data)
        return entry

    def forget(self, service_id: str) -> None:
        """Drop every tile of a service (deleted, or changed: its old revisions)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == service_id]:
                self._bytes -= len(self._entries.pop(key).data)
        if self.folder is not None:
            shutil.rmtree(self.folder / _safe(service_id), ignore_errors=True)

    # --- memory ------------------------------------------------------------------------------------
    def _remember(self, key: TileKey, entry: CachedTile) -> None:
        if self.max_bytes <= 0:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous.data)
            self._entries[key] = entry
            self._bytes += len(entry.data)
            while self._bytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.data)

    # --- disk --------------------------------------------------------------------------------------
    def _path(self, key: TileKey) -> Path | None:
        if self.folder is None:
            return None
        service_id, revision, z, x, y, encoding = key
        return self.folder / _safe(service_id) / str(revision) / str(z) / str(x) / f"{y}.{encoding}"

    def _store(self, key: TileKey, data: bytes) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tile-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except OSError:
            return  # a full or read-only disk costs the cache, never the tile
        self._drop_older_revisions(key)
        with self._lock:
            self._writes += 1
            due = self._writes % self.TRIM_EVERY == 1
        if due:
            self.trim()

    def _drop_older_revisions(self, key: TileKey) -> None:
        assert self.folder is not None
        service = self.folder / _safe(key[0])
        try:
            revisions = [p for p in service.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) < key[1]]
        except OSError:
            return
        for old in revisions:
            shutil.rmtree(old, ignore_errors=True)

    def trim(self) -> None:
        """Remove the oldest tiles until the disk cache holds at most 90% of its bound."""
        if self.folder is None or not self.folder.is_dir():
            return
        files = []
        for root, _, names in os.walk(self.folder):
            for name in names:
                path = Path(root) / name
                try:
                    stat = path.stat()
                except OSError:
                    continue
                files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        if total <= self.max_disk_bytes:
            return
        for _, size, path in sorted(files):
            path.unlink(missing_ok=True)
            total -= size
            if total <= 0.9 * self.max_disk_bytes:
                break


def _safe(service_id: str) -> str:
    """A service id as one path segment (ids are generated, but a path is never built from raw input)."""
    return "".join(c for c in service_id if c.isalnum() or c in "-_") or "_"
