"""The tile cache: a bounded memory LRU per worker, a disk cache shared by workers and kept across restarts."""

from __future__ import annotations

import os

from backend.maps.cache import TileCache


def _key(service="s-1", revision=1, z=14, x=1, y=2, encoding="png"):
    return (service, revision, z, x, y, encoding)


def test_the_memory_cache_drops_the_least_recently_used_tile_past_its_bound():
    cache = TileCache(max_bytes=250)
    cache.put(_key(x=1), b"a" * 100)
    cache.put(_key(x=2), b"b" * 100)
    assert cache.get(_key(x=1)) is not None  # now the most recently used
    cache.put(_key(x=3), b"c" * 100)
    assert cache.get(_key(x=2)) is None
    assert cache.get(_key(x=1)).data == b"a" * 100
    assert cache.get(_key(x=3)).media_type == "image/png"


def test_a_tile_is_served_with_a_strong_etag_of_its_bytes():
    cache = TileCache()
    first = cache.put(_key(), b"tile")
    assert first.etag.startswith('"') and first.etag == TileCache().put(_key(x=9), b"tile").etag
    assert cache.put(_key(x=8), b"other").etag != first.etag


def test_zero_megabytes_turns_the_memory_cache_off():
    cache = TileCache(max_bytes=0)
    cache.put(_key(), b"tile")
    assert cache.get(_key()) is None


def test_the_disk_cache_is_shared_and_outlives_the_worker(tmp_path):
    TileCache(max_bytes=0, folder=tmp_path).put(_key(encoding="webp"), b"webp bytes")
    found = TileCache(folder=tmp_path).get(_key(encoding="webp"))
    assert found is not None and found.data == b"webp bytes" and found.media_type == "image/webp"


def test_a_new_revision_removes_the_services_older_tiles_from_disk(tmp_path):
    cache = TileCache(folder=tmp_path)
    cache.put(_key(revision=1), b"old")
    cache.put(_key(service="s-2", revision=1), b"another service")
    cache.put(_key(revision=2, x=5), b"new")
    assert not (tmp_path / "s-1" / "1").exists()
    assert TileCache(folder=tmp_path).get(_key(revision=1)) is None
    assert TileCache(folder=tmp_path).get(_key(service="s-2", revision=1)) is not None


def test_forgetting_a_service_removes_its_tiles_everywhere(tmp_path):
    cache = TileCache(folder=tmp_path)
    cache.put(_key(), b"tile")
    cache.forget("s-1")
    assert cache.get(_key()) is None
    assert not (tmp_path / "s-1").exists()


def test_the_disk_cache_is_trimmed_oldest_first(tmp_path):
    cache = TileCache(max_bytes=0, folder=tmp_path, max_disk_bytes=1000)
    for x in range(6):
        cache.put(_key(x=x), bytes(300))
        path = tmp_path / "s-1" / "1" / "14" / str(x) / "2.png"
        os.utime(path, (1000 + x, 1000 + x))
    cache.trim()
    kept = sorted(int(p.parent.name) for p in (tmp_path / "s-1" / "1" / "14").glob("*/2.png"))
    assert kept == [3, 4, 5]


def test_a_service_id_never_leaves_the_cache_folder(tmp_path):
    cache = TileCache(folder=tmp_path / "cache")
    cache.put(_key(service="../../etc"), b"tile")
    assert all(str(p).startswith(str(tmp_path / "cache")) for p in tmp_path.rglob("*.png"))
