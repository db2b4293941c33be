"""S3 and GCS stores against real servers: round trips, layout, dedup, existence checks, progress, config."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloud_helpers import STORE_BUCKET, Backend, unique, upstream_port
from servers import SECRET_KEY, FaultProxy

import artifact_plugins as ap
from artifact_plugins.core.client import close_clients, get_client
from artifact_plugins.core.errors import IntegrityError, InvalidConfigError, NotFoundError, StoreError
from artifact_plugins.core.hashing import digest_bytes
from artifact_plugins.core.progress import set_progress_factory
from artifact_plugins.core.storage import RemoteStore, blob_key, manifest_key, open_store
from artifact_plugins.core.storage.s3 import S3Store

BIG = 6 * 2**20 + 12345  # above the test multipart/resumable thresholds: several parts


def files_for(n: int, tag: str = "") -> dict[str, bytes]:
    """``n`` small distinct files plus one multi-part file."""
    out = {f"small/f{i:03d}.txt": f"{tag}file {i}\n".encode() * (i + 1) for i in range(n)}
    out["big/blob.bin"] = (tag.encode() or b"b") * 7 + os.urandom(BIG)
    return out


def log_dir(src: Path, name: str = "ds", **kwargs: Any) -> ap.ArtifactVersion:
    art = ap.Artifact(name, "dataset")
    art.add_dir(src)
    with ap.init(job_type="producer") as run:
        return run.log_artifact(art, **kwargs)


def fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str) -> None:
    """Drop every cached client and use an empty download cache, as a new machine would."""
    monkeypatch.setenv("ARTIFACT_PLUGINS_CACHE_DIR", str(tmp_path / f"cache-{label}"))
    close_clients()


def test_round_trip_through_the_bucket(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = backend.use_store()
    files = files_for(12)
    src = make_tree("src", files)
    v = log_dir(src, aliases=["best"])
    assert (v.version, v.file_count) == ("v0", 13)

    keys = backend.keys(STORE_BUCKET, prefix + "/")
    blobs = {k for k in keys if k.startswith(f"{prefix}/blobs/blake3/")}
    assert blobs == {f"{prefix}/{blob_key(digest_bytes(b))}" for b in files.values()}
    assert [k for k in keys if "/manifests/blake3/" in k] == [
        f"{prefix}/manifests/blake3/{v.digest[7:9]}/{v.digest[7:]}.json.gz"
    ]

    fresh_process(tmp_path, monkeypatch, "consumer")
    with ap.init(job_type="consumer") as run:
        used = run.use_artifact("ds:best")
        root = used.download(tmp_path / "out", verify=True)
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data
    cache = get_client().download_cache
    # Small blobs came through the verified cache; the large one went straight to its
    # destination, verified part by part as it landed (no second full copy).
    assert cache.info().files == len(files) - 1
    assert cache.get(digest_bytes(files["big/blob.bin"])) is None

    # One entry alone, then the rest from the (now warm) cache without touching the bucket.
    fresh_process(tmp_path, monkeypatch, "single")
    entry = ap.Api().artifact("ds:v0").get_entry("big/blob.bin")
    assert entry.download(tmp_path / "one").read_bytes() == files["big/blob.bin"]


def test_blobs_are_sent_once_across_versions(
    backend: Backend, make_tree: Callable[..., Path], proxy_for: Callable[[int], FaultProxy]
) -> None:
    proxy = proxy_for(upstream_port(backend))
    prefix = backend.use_store(via=proxy.endpoint)
    files = files_for(20)
    src = make_tree("src", files)

    def creations() -> int:
        """Object uploads started (S3 PutObject/CreateMultipartUpload, GCS media/resumable uploads)."""
        if backend.kind == "s3":
            return sum(
                1
                for m, p in proxy.requests
                if p.startswith(f"/{STORE_BUCKET}/{prefix}/")
                and ((m == "PUT" and "partNumber=" not in p) or (m == "POST" and "uploads" in p))
            )
        return sum(
            1 for m, p in proxy.requests if m == "POST" and p.startswith(f"/upload/storage/v1/b/{STORE_BUCKET}/")
        )

    v0 = log_dir(src)
    assert creations() == len(files) + 1  # every blob and the manifest, once each

    proxy.clear()
    (src / "small/f000.txt").write_bytes(b"changed\n")
    (src / "small/new.txt").write_bytes(b"brand new\n")
    v1 = log_dir(src)
    assert v1.version == "v1"
    assert creations() == 3  # the two new contents and the new manifest

    proxy.clear()
    again = log_dir(src)  # unchanged content: the same version, nothing sent
    assert (again.version, again.digest) == ("v1", v1.digest)
    assert creations() == 0
    assert v0.digest != v1.digest
    assert len([k for k in backend.keys(STORE_BUCKET, prefix + "/blobs/")]) == len(files) + 2


def test_a_new_version_asks_the_bucket_about_its_blobs_and_its_manifest_once(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Touching does nothing on a bucket, so nothing is gained by looking again after it: one
    existence check per blob (a second round was one more listing of every reused blob). The
    re-log shortcut's look finds no manifest of the new content, and the log writes it without
    asking again (a write replaces whatever is there)."""
    backend.use_store()
    files = files_for(20)
    src = make_tree("src", files)
    log_dir(src)
    store = get_client().store
    asked: list[list[str]] = []
    looked: list[str] = []
    real_missing, real_has = store.missing, store.has

    def missing(keys: Any) -> set[str]:
        keys = list(keys)
        asked.append(keys)
        return real_missing(keys)

    def has(key: str) -> bool:
        looked.append(key)
        return real_has(key)

    monkeypatch.setattr(store, "missing", missing)
    monkeypatch.setattr(store, "has", has)
    (src / "small/f000.txt").write_bytes(b"changed\n")
    v1 = log_dir(src)
    assert v1.version == "v1"
    assert len(asked) == 1 and len(asked[0]) == len(files)
    assert looked.count(manifest_key(v1.digest)) == 1
    assert store.missing([blob_key(digest_bytes(b"changed\n"))]) == set()
    fresh_process(tmp_path, monkeypatch, "reader")
    root = ap.Api().artifact("ds:v1").download(tmp_path / "out")
    assert (root / "small/f000.txt").read_bytes() == b"changed\n"
    assert (root / "small/f001.txt").read_bytes() == files["small/f001.txt"]


def test_missing_uses_listings_for_many_keys(backend: Backend, proxy_for: Callable[[int], FaultProxy]) -> None:
    proxy = proxy_for(upstream_port(backend))
    backend.use_store(via=proxy.endpoint)
    store = get_client().store
    assert isinstance(store, RemoteStore)
    present = [blob_key(digest_bytes(f"present {i}".encode())) for i in range(60)]
    for i, key in enumerate(present):
        store.put_bytes(key, f"present {i}".encode())
    absent = [blob_key(digest_bytes(f"absent {i}".encode())) for i in range(3000)]

    proxy.clear()
    assert store.missing(present + absent) == set(absent)
    assert len(proxy.requests) == 1  # a small store: one listing answers 3,060 keys

    proxy.clear()
    assert store.missing(present[:1] + absent[:1]) == set(absent[:1])
    assert len(proxy.requests) == 2  # two keys: one HEAD each
    assert store.missing([]) == set()


def test_missing_fans_out_and_falls_back_to_heads(backend: Backend, proxy_for: Callable[[int], FaultProxy]) -> None:
    proxy = proxy_for(upstream_port(backend))
    backend.use_store(via=proxy.endpoint)
    store = get_client().store
    assert isinstance(store, RemoteStore)
    # One crowded fan-out directory, and keys spread over the others.
    crowded = [f"blobs/blake3/ab/ab{i:02x}" + "0" * 60 for i in range(0, 256, 4)]
    spread = [blob_key(digest_bytes(f"spread {i}".encode())) for i in range(200)]
    for key in crowded + spread[::2]:
        store.put_bytes(key, b"x")
    store.page_size, store.quick_list_pages = 8, 2  # type: ignore[misc]  # small pages: every path runs
    queried_crowded = [crowded[0], "blobs/blake3/ab/ab01" + "0" * 60, crowded[-2], crowded[-1]]
    proxy.clear()
    expected = set(spread[1::2]) | {"blobs/blake3/ab/ab01" + "0" * 60}
    assert store.missing(queried_crowded + spread) == expected
    assert len(proxy.requests) < len(queried_crowded) + len(spread)
    lists = [p for _, p in proxy.requests if "list-type=2" in p or "prefix=" in p]
    assert len(lists) < len(proxy.requests)  # some single-object checks: the crowded directory was not paged through
    crowded_pages = [p for p in lists if "blake3%2Fab%2F" in p]
    assert 1 <= len(crowded_pages) <= 2  # 64 objects in pages of 8, but it stopped after the first


def test_progress_accounts_every_byte(backend: Backend, make_tree: Callable[..., Path], tmp_path: Path) -> None:
    backend.use_store()
    files = files_for(5)
    src = make_tree("src", files)
    seen: list[tuple[str, int, int, list[tuple[int, int]]]] = []

    class Recorder:
        def __init__(self, label: str, total_bytes: int, total_files: int) -> None:
            self.calls: list[tuple[int, int]] = []
            seen.append((label, total_bytes, total_files, self.calls))

        def __enter__(self) -> Recorder:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def advance(self, nbytes: int, files: int = 1) -> None:
            self.calls.append((nbytes, files))

    set_progress_factory(Recorder)
    try:
        v = log_dir(src)
        v.download(tmp_path / "out")
    finally:
        set_progress_factory(None)
    total = sum(len(b) for b in files.values())
    by_label = {label.split(" ")[0]: (tb, tf, calls) for label, tb, tf, calls in seen}
    for kind in ("uploading", "downloading"):
        tb, tf, calls = by_label[kind]
        assert (tb, tf) == (total, len(files))
        assert sum(n for n, _ in calls) == total and sum(f for _, f in calls) == len(files)
        assert len(calls) > len(files), "large files report bytes as they move, not only when done"


def test_store_uri_and_endpoint_refuse_credentials(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidConfigError, match=r"\*\*\*@") as exc:
        open_store(f"{backend.kind}://AKIAEXAMPLE:{SECRET_KEY}@bucket/prefix")
    assert SECRET_KEY not in str(exc.value)
    with pytest.raises(InvalidConfigError):
        open_store(f"{backend.kind}://bucket/prefix?region=x")
    if backend.kind == "s3":
        monkeypatch.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", f"http://user:{SECRET_KEY}@127.0.0.1:1")
        with pytest.raises(InvalidConfigError) as exc:
            open_store("s3://bucket/prefix")
        assert SECRET_KEY not in str(exc.value)


def test_store_errors_name_the_store_not_the_secrets(
    backend: Backend, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.use_store()
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", f"{backend.kind}://no-such-bucket-{unique('x')}/p")
    close_clients()
    src = make_tree("src", {"a.txt": b"a"})
    with pytest.raises(StoreError) as exc:
        log_dir(src)
    message = str(exc.value)
    assert "no-such-bucket" in message and SECRET_KEY not in message
    with pytest.raises(NotFoundError):
        ap.Api().artifact("ds:latest")


def test_a_blob_deleted_from_the_bucket_is_reported(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = backend.use_store()
    src = make_tree("src", {"a.txt": b"will vanish"})
    v = log_dir(src)
    backend.delete(STORE_BUCKET, f"{prefix}/{blob_key(digest_bytes(b'will vanish'))}")
    fresh_process(tmp_path, monkeypatch, "after-delete")
    with pytest.raises(StoreError, match="missing from the store"):
        ap.Api().artifact(f"ds:{v.version}").download(tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()


def test_a_carried_over_blob_deleted_from_the_bucket_is_refused_or_sent_again(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """A new version of a draft carried over from an earlier one: a blob gone from the bucket is
    refused by name when nothing local has its bytes, and sent again when a local file does."""
    prefix = backend.use_store()
    v0 = log_dir(make_tree("src", {"keep.txt": b"kept", "lost.txt": b"deleted by hand"}))
    backend.delete(STORE_BUCKET, f"{prefix}/{blob_key(digest_bytes(b'deleted by hand'))}")

    refused = v0.new_draft()
    with refused.new_file("added.txt") as f:
        f.write("new")
    with ap.init(job_type="producer") as run, pytest.raises(StoreError, match=r"carried over.*'lost\.txt'"):
        run.log_artifact(refused)
    assert [v.version for v in ap.Api().artifact_versions("dataset", "ds")] == ["v0"]

    restored = v0.new_draft()
    copy = tmp_path / "copy.txt"
    copy.write_bytes(b"deleted by hand")
    restored.add_file(copy, "copy-of-lost.txt")
    with ap.init(job_type="producer") as run:
        v1 = run.log_artifact(restored)
    out = v1.download(tmp_path / "out")
    assert (out / "lost.txt").read_bytes() == b"deleted by hand"


def test_wrong_credentials_fail_cleanly(
    s3: Backend, make_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.use_store()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-do-not-print")
    close_clients()
    with pytest.raises(StoreError) as exc:
        log_dir(make_tree("src", {"a.txt": b"a"}))
    message = str(exc.value)
    assert "403" in message and "credentials" in message and "wrong-secret-do-not-print" not in message
    assert SECRET_KEY not in message


def test_damaged_blobs_in_the_bucket_are_refused_on_download(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes that do not match their key never reach a destination or the cache: the large blob is
    checked part by part as it lands, the small one in memory (read again, then refused)."""
    prefix = backend.use_store()
    files = files_for(2)
    v = log_dir(make_tree("src", files))
    for rel in ("big/blob.bin", "small/f001.txt"):
        good = files[rel]
        damaged = bytes([good[0] ^ 0xFF]) + good[1:]  # same size, first byte flipped
        backend.put(STORE_BUCKET, f"{prefix}/{blob_key(digest_bytes(good))}", damaged)
        fresh_process(tmp_path, monkeypatch, f"damaged-{rel.replace('/', '-')}")
        out = tmp_path / f"out-{rel.replace('/', '-')}"
        with pytest.raises(IntegrityError, match="expected " + digest_bytes(good)):
            ap.Api().artifact(v.qualified_name).download(out)
        assert not (out / rel).exists()
        leftovers = [p.name for p in out.rglob("*") if ".tmp-" in p.name]
        assert leftovers == []
        assert get_client().download_cache.get(digest_bytes(good)) is None
        backend.put(STORE_BUCKET, f"{prefix}/{blob_key(digest_bytes(good))}", good)  # repaired
    root = ap.Api().artifact(v.qualified_name).download(tmp_path / "out")
    assert {rel: (root / rel).read_bytes() for rel in files} == files


@pytest.mark.parametrize("lean", [True, False])
def test_small_objects_take_one_presigned_request_each(
    s3: Backend,
    make_tree: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proxy_for: Callable[[int], FaultProxy],
    lean: bool,
) -> None:
    """Small blobs go up and come down as one presigned request each (no boto3 call) unless
    switched off; either way the server sees one PUT and one GET per blob, and refusals
    (here: injected 503s) fall back to the boto3 call, which retries them."""
    proxy = proxy_for(upstream_port(s3))
    if not lean:
        monkeypatch.setenv("ARTIFACT_PLUGINS_S3_LEAN_REQUESTS", "0")
    prefix = s3.use_store(via=proxy.endpoint)
    files = {f"f{i}.txt": b"%d\n" % i * (i + 1) for i in range(12)}
    src = make_tree("src", files)
    store = get_client().store
    assert isinstance(store, S3Store)
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))

    log_dir(src)
    blob_puts = [p for m, p in proxy.requests if m == "PUT" and f"/{prefix}/blobs/" in p]
    assert len(blob_puts) == len(files)
    assert calls.count("PutObject") == (0 if lean else len(files) + 1)  # + the manifest

    fresh_process(tmp_path, monkeypatch, f"lean-{lean}")
    store = get_client().store
    assert isinstance(store, S3Store)
    calls.clear()
    store.client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    proxy.clear()
    proxy.fail(3, 503, match=lambda m, p: "/blobs/" in p)
    root = ap.Api().artifact("ds:latest").download(tmp_path / "out")
    assert {rel: (root / rel).read_bytes() for rel in files} == files
    blob_gets = [p for m, p in proxy.requests if m == "GET" and f"/{prefix}/blobs/" in p]
    assert len(blob_gets) == len(files) + 3  # each refusal costs exactly one more request
    if lean:  # each refused presigned GET was followed by a boto3 call (whose own retries absorb the rest)
        assert 1 <= calls.count("GetObject") <= 3
    else:
        assert calls.count("GetObject") == len(files) + 1  # + the manifest


def _count_library_listings(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Calls of the client library's own listing (boto3's paginator, google-cloud-storage's
    ``list_blobs``), recorded as they happen."""
    calls: list[str] = []
    name = "get_paginator" if isinstance(store, S3Store) else "list_blobs"
    real = getattr(store.client, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(store.client, name, counted)
    return calls


def _is_listing(backend: Backend, method: str, path: str) -> bool:
    if backend.kind == "s3":
        return method == "GET" and "list-type=2" in path
    return method == "GET" and f"/b/{STORE_BUCKET}/o?" in path


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "library"])
def test_listings_page_through_odd_names_without_the_librarys_parsing(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, proxy_for: Callable[[int], FaultProxy], lean: bool
) -> None:
    """Listings are plain requests parsed on their own (S3: a presigned ``ListObjectsV2``; GCS: the
    JSON of ``objects.list``), far less CPU per page than the libraries' objects; names that need
    escaping come back intact, page after page."""
    proxy = proxy_for(upstream_port(backend))
    if not lean:
        monkeypatch.setenv(f"ARTIFACT_PLUGINS_{'S3' if backend.kind == 's3' else 'GCS'}_LEAN_REQUESTS", "0")
    prefix = backend.use_store(via=proxy.endpoint)
    store = get_client().store
    assert isinstance(store, RemoteStore)
    names = ["a b.txt", "a+b.txt", "pct%41.txt", "ünï/cödé.bin", "x&y<z>.txt", *(f"n/{i:03d}" for i in range(20))]
    for name in names:
        backend.put(STORE_BUCKET, f"{prefix}/odd/{name}", name.encode())
    store.page_size = 7  # type: ignore[misc]  # several pages
    library = _count_library_listings(store, monkeypatch)
    proxy.clear()
    listed = list(store.iter_objects("odd/"))
    assert sorted(o.key for o in listed) == sorted(f"odd/{n}" for n in names)
    assert {o.key: o.size for o in listed} == {f"odd/{n}": len(n.encode()) for n in names}
    assert all(abs(o.mtime - listed[0].mtime) < 600 for o in listed)
    assert len([p for m, p in proxy.requests if _is_listing(backend, m, p)]) == -(-len(names) // 7)
    assert len(library) == (0 if lean else 1)


def test_a_refused_lean_listing_is_finished_by_the_library(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, proxy_for: Callable[[int], FaultProxy]
) -> None:
    """A page the plain request did not get (here: an injected 503) is fetched by the library's
    own listing from the last name listed, which retries it: nothing listed twice, nothing lost."""
    proxy = proxy_for(upstream_port(backend))
    prefix = backend.use_store(via=proxy.endpoint)
    store = get_client().store
    assert isinstance(store, RemoteStore)
    names = [f"k/{i:03d}" for i in range(30)]
    for name in names:
        backend.put(STORE_BUCKET, f"{prefix}/{name}", b"x")
    store.page_size = 8  # type: ignore[misc]
    library = _count_library_listings(store, monkeypatch)
    pages = {"n": 0}

    def second_page(method: str, path: str) -> bool:
        if _is_listing(backend, method, path):
            pages["n"] += 1
            return pages["n"] == 2
        return False

    proxy.fail(1, 503, match=second_page)
    assert [o.key for o in store.iter_objects("k/")] == names
    assert len(library) == 1


def test_listing_bodies_are_parsed_strictly() -> None:
    from artifact_plugins.core.storage.s3_lean import _parse_listing

    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    item = "<Contents><Key>{}</Key><Size>3</Size><LastModified>2026-12-03T10:00:00.000Z</LastModified></Contents>"
    body = f"<ListBucketResult {ns}><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
    body += item.format("a+b%2Bc%C3%BC") + "<NextContinuationToken>t1</NextContinuationToken></ListBucketResult>"
    items, token = _parse_listing(body.encode())
    assert items == [("a b+cü", 3, 1796292000.0)] and token == "t1"
    plain = f"<ListBucketResult {ns}><IsTruncated>false</IsTruncated>{item.format('a+b')}</ListBucketResult>"
    assert _parse_listing(plain.encode()) == ([("a+b", 3, 1796292000.0)], None)
    for bad in (
        f"<Error {ns}><Code>SlowDown</Code></Error>",
        f"<ListBucketResult {ns}><IsTruncated>true</IsTruncated></ListBucketResult>",  # no token
        f"<ListBucketResult {ns}><Contents><Key>k</Key></Contents></ListBucketResult>",  # no size
    ):
        with pytest.raises(ValueError):
            _parse_listing(bad.encode())


def test_gcs_listing_pages_are_parsed_strictly() -> None:
    from artifact_plugins.core.storage.gcs_lean import _parse_page

    item = {"name": "a b", "size": "3", "updated": "2026-12-03T10:00:00.000Z"}
    assert _parse_page({"items": [item], "nextPageToken": "t1"}) == ([("a b", 3, 1796292000.0)], "t1")
    assert _parse_page({}) == ([], None)
    for bad in ([item], {"items": [{"name": "x"}]}, {"items": [item], "nextPageToken": 5}):
        with pytest.raises((ValueError, KeyError)):
            _parse_page(bad)


def test_a_changed_directory_is_stored_as_a_delta_in_the_bucket(
    backend: Backend, make_tree: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a few files changed, the bucket gets their blobs and a delta manifest (every blob is
    still asked about there); a fresh client reads the version whole, and gc keeps the delta's base
    manifest once the base version is deleted."""
    from datetime import timedelta

    from artifact_plugins.core import artifact as artifact_mod
    from artifact_plugins.core.manifest import Delta, read_stored
    from artifact_plugins.core.storage import manifest_key

    monkeypatch.setattr(artifact_mod, "TREE_MIN_FILES", 5)  # remember directories this small
    prefix = backend.use_store()
    files = {f"small/f{i:03d}.txt": f"file {i}".encode() for i in range(12)}
    src = make_tree("src", files)
    for p in src.rglob("*.txt"):
        os.utime(p, (1_600_000_000, 1_600_000_000))  # settled: outside the checksum cache's racy window
    v0 = log_dir(src)
    (src / "small/f003.txt").write_bytes(b"changed")
    os.utime(src / "small/f003.txt", (1_600_000_100, 1_600_000_100))
    v1 = log_dir(src)
    data = get_client().store.get_bytes(manifest_key(v1.digest))
    stored = read_stored(data)
    assert isinstance(stored, Delta) and stored.base == v0.digest
    assert [e.path for e in stored.entries] == ["small/f003.txt"]
    # Compressed in a bucket, whole and delta alike (a local store keeps small ones uncompressed).
    whole = get_client().store.get_bytes(manifest_key(v0.digest))
    assert len(data) < len(gzip.decompress(data)) and len(whole) < len(gzip.decompress(whole))
    v0.delete()
    report = ap.Api().gc(dry_run=False, grace=timedelta(0))
    assert report.deleted_manifests == [] and report.deleted_blobs == [blob_key(digest_bytes(b"file 3"))]
    assert f"{prefix}/{manifest_key(v0.digest)}" in backend.keys(STORE_BUCKET, prefix + "/")
    close_clients()
    out = ap.Api().artifact("ds:v1").download(tmp_path / "out")
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == {
        **files,
        "small/f003.txt": b"changed",
    }
