"""The bounded, verified, multi-process download cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from core_helpers import wait_all

import artifact_plugins as ap
from artifact_plugins.core.cache import DownloadCache
from artifact_plugins.core.errors import IntegrityError
from artifact_plugins.core.hashing import digest_bytes


def writer(data: bytes, fills: list[str] | None = None):
    def fill(tmp: str) -> None:
        if fills is not None:
            fills.append(tmp)
        Path(tmp).write_bytes(data)

    return fill


def cached_files(cache: DownloadCache) -> set[str]:
    if not cache.blobs.exists():
        return set()
    return {p.name for p in cache.blobs.rglob("*") if p.is_file()}


def test_fetch_verifies_and_caches(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10**6)
    data = b"blob bytes"
    d = digest_bytes(data)
    fills: list[str] = []
    p = cache.fetch(d, writer(data, fills))
    assert p.read_bytes() == data
    assert p == cache.path_for(d)
    assert cache.fetch(d, writer(b"never called", fills)) == p  # a hit does not fill again
    assert len(fills) == 1
    assert cache.get(d) == p
    info = cache.info()
    assert (info.files, info.bytes, info.max_bytes) == (1, len(data), 10**6)


def test_bad_bytes_raise_integrity_error_and_are_not_cached(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10**6)
    expected = digest_bytes(b"the real bytes")
    with pytest.raises(IntegrityError) as info:
        cache.fetch(expected, writer(b"tampered bytes"))
    assert expected in str(info.value)
    assert cache.get(expected) is None
    assert not cache.path_for(expected).exists()
    leftovers = [p for p in cache.blobs.rglob("*") if p.is_file()] if cache.blobs.exists() else []
    assert leftovers == []  # no temp file either
    # a later good fill succeeds
    assert cache.fetch(expected, writer(b"the real bytes")).read_bytes() == b"the real bytes"


def test_fetch_small_verifies_rereads_damaged_bodies_and_caches_by_link(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10**6)
    data = b"small blob"
    d = digest_bytes(data)
    bodies = [b"smaXl blob", b"small blob"]  # damaged once in transit, then right
    assert cache.fetch_small(d, lambda: bodies.pop(0), tmp_path / "out-a") == len(data)
    assert bodies == [] and (tmp_path / "out-a").read_bytes() == data
    cached = cache.path_for(d)
    assert cached.read_bytes() == data and os.path.samefile(cached, tmp_path / "out-a")  # one inode, two names
    assert cached_files(cache) == {cached.name}  # no temp file left

    # A hit reads nothing from the store and writes an independent copy.
    assert cache.fetch_small(d, lambda: pytest.fail("a hit must not read"), tmp_path / "out-b") == len(data)
    assert (tmp_path / "out-b").read_bytes() == data and not os.path.samefile(tmp_path / "out-a", tmp_path / "out-b")

    # Editing the first download in place edits the cached blob too: the next hit notices and refetches.
    (tmp_path / "out-a").write_bytes(b"edited!!!!")
    reads: list[int] = []
    cache.fetch_small(d, lambda: reads.append(1) or data, tmp_path / "out-c")
    assert reads == [1] and (tmp_path / "out-c").read_bytes() == data and cached.read_bytes() == data
    assert cache.get(d) == cached
    (tmp_path / "out-c").write_bytes(b"edited again")  # the path-returning read checks small blobs as well
    assert cache.get(d) is None and not cached.exists()


def test_fetch_small_gives_up_on_bytes_that_never_match(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10**6)
    expected = digest_bytes(b"the real bytes")
    reads: list[int] = []
    with pytest.raises(IntegrityError, match="3 attempts") as info:
        cache.fetch_small(expected, lambda: reads.append(1) or b"tampered bytes", tmp_path / "out")
    assert expected in str(info.value) and len(reads) == 3
    assert cached_files(cache) == set() and not (tmp_path / "out").exists()


def test_failing_fill_leaves_nothing(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10**6)
    d = digest_bytes(b"x")

    def boom(tmp: str) -> None:
        Path(tmp).write_bytes(b"partial")
        raise OSError("network down")

    with pytest.raises(OSError, match="network down"):
        cache.fetch(d, boom)
    assert cached_files(cache) == set()


def test_lru_eviction_order(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10**6)
    blobs = {name: name.encode() * 100 for name in ("a", "b", "c", "d")}  # 100 bytes each
    digests = {name: digest_bytes(data) for name, data in blobs.items()}
    now = time.time()
    for i, name in enumerate(blobs):
        p = cache.fetch(digests[name], writer(blobs[name]))
        os.utime(p, (now - 400 + i * 100, now - 400 + i * 100))  # a oldest ... d newest
    cache.get(digests["a"])  # a use refreshes a: now b is the least recently used

    freed = cache.evict(max_bytes=250)
    assert freed == (2, 200)
    remaining = {name for name, d in digests.items() if cache.path_for(d).exists()}
    assert remaining == {"a", "d"}
    assert cache.evict(max_bytes=250) == (0, 0)
    assert cache.info().bytes == 200


def test_cap_smaller_than_one_download_still_completes_then_evicts(tmp_path):
    cache = DownloadCache(tmp_path / "c", max_bytes=10)
    data = os.urandom(1000)
    p = cache.fetch(digest_bytes(data), writer(data))
    assert p.read_bytes() == data  # the fetch itself is never refused
    assert cache.evict() == (1, 1000)
    assert cache.info().files == 0


def test_download_through_the_cache_respects_its_cap(tmp_path, monkeypatch):
    """End to end: a non-local store goes through the download cache, which is trimmed afterwards."""
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_MAX_BYTES", "100")
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(5000))
    (src / "small.txt").write_text("small")
    with ap.init() as run:
        art = ap.Artifact("remote", "dataset")
        art.add_dir(src)
        run.log_artifact(art)
    api = ap.Api()
    store = api._client.store
    monkeypatch.setattr(store, "is_local", False, raising=False)
    out = api.artifact("remote:v0").download(tmp_path / "out")
    assert (out / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    assert (out / "small.txt").read_text() == "small"
    assert api._client.download_cache.info().bytes <= 100


WORKER = """
import os, sys, time, uuid
from pathlib import Path
from artifact_plugins.core.cache import DownloadCache
from artifact_plugins.core.hashing import digest_bytes

root, markers = Path(sys.argv[1]), Path(sys.argv[2])
go = markers.parent / "go"
while not go.exists():
    time.sleep(0.005)
cache = DownloadCache(root, 10**9)
for i in range(3):
    data = (f"blob {i} " * 20000).encode()
    def fill(tmp, i=i, data=data):
        (markers / f"{i}-{uuid.uuid4().hex}").touch()
        time.sleep(0.2)  # a slow download: the others must wait, not fetch it again
        Path(tmp).write_bytes(data)
    p = cache.fetch(digest_bytes(data), fill)
    assert p.read_bytes() == data
print("done")
"""


SMALL_WORKER = """
import sys, time
from pathlib import Path
from artifact_plugins.core.cache import DownloadCache
from artifact_plugins.core.hashing import digest_bytes

root, go = sys.argv[1], Path(sys.argv[2])
cache = DownloadCache(root, 10**9)
blobs = [b"%d" % i * 700 for i in range(200)]
while not go.exists():
    time.sleep(0.001)
out = Path(sys.argv[3])
for i, data in enumerate(blobs):
    assert cache.fetch_small(digest_bytes(data), lambda data=data: data, out / f"{i}") == len(data)
    assert (out / f"{i}").read_bytes() == data
print("done")
"""


@pytest.mark.timeout(120)
def test_small_blobs_fetched_by_racing_processes_land_whole(tmp_path):
    """Lock-free small fills: four processes race for the same 200 blobs; every read is right and
    the cache ends with each blob once, whole, and no temp file."""
    import subprocess
    import sys
    import textwrap

    root, go, outs = tmp_path / "shared-cache", tmp_path / "go", tmp_path / "outs"
    for n in range(4):
        (outs / str(n)).mkdir(parents=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SMALL_WORKER), str(root), str(go), str(outs / str(n))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    go.touch()
    assert [o.strip() for o in wait_all(procs)] == ["done"] * 4
    cache = DownloadCache(root, 10**9)
    files = [p for p in cache.blobs.rglob("*") if p.is_file()]
    assert len(files) == 200 and not [p for p in files if p.name.startswith(".tmp-")]
    for p in files:
        assert "blake3:" + p.name == digest_bytes(p.read_bytes())


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_concurrent_fetch_from_processes_fills_each_blob_once(tmp_path):
    import subprocess
    import sys
    import textwrap

    root, markers = tmp_path / "shared-cache", tmp_path / "markers"
    markers.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKER), str(root), str(markers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    (tmp_path / "go").touch()
    outs = wait_all(procs)
    assert [o.strip() for o in outs] == ["done"] * 4
    fills = sorted(p.name.split("-")[0] for p in markers.iterdir())
    assert fills == ["0", "1", "2"]
    cache = DownloadCache(root, 10**9)
    assert cache.info().files == 3
