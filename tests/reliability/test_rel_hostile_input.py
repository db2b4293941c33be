"""Hostile input: property tests of every parser, tampered manifests, absurd sizes and depths.

Properties (hypothesis, fixed derandomized seeds): whatever string arrives as a name, ref, alias
or entry path, the answer is either the canonical value or an ``InvalidInputError`` (a
``ValueError``) naming it — never another exception, never a path that escapes its root.
Manifests round-trip exactly, and any mutation of a stored manifest is either refused or parses
into entries that pass every check. Tampered manifests in a real store are refused before a
single byte reaches the download root.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from rel_helpers import report, write_tree

import artifact_plugins as ap
from artifact_plugins.core.client import close_clients
from artifact_plugins.core.errors import (
    InvalidAliasError,
    InvalidInputError,
    InvalidMetadataError,
    InvalidNameError,
    InvalidPathError,
    InvalidRefError,
)
from artifact_plugins.core.manifest import DIGEST_HEADER, FORMAT, Manifest, make_entry
from artifact_plugins.core.metadata import validate_description, validate_metadata
from artifact_plugins.core.naming import (
    MAX_PATH_BYTES,
    normalize_entry_path,
    parse_ref,
    validate_alias,
    validate_name,
)
from artifact_plugins.core.storage import manifest_key

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="ap-rel-hypothesis-"))  # no .hypothesis in the checkout

PROPS = settings(
    max_examples=400,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
EXAMPLES: dict[str, int] = {}


def counted(name: str) -> None:
    EXAMPLES[name] = EXAMPLES.get(name, 0) + 1


# Unicode of every kind, lone surrogates included (file names that are not UTF-8 arrive that way).
any_char = st.characters(codec=None, categories=None)
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.lists(
        st.sampled_from(
            [
                *("a", "B", "é", "e\u0301", "/", ".", "..", "\\", "\x00", "\n", "\x7f", " ", ":", "@", "C:"),
                *("\udcff", "\u202e", "\ufeff", "ﬁ", "Å", "A\u030a", "\u3000", "%2e%2e", "~", "*", "CON", "nul"),
                *("v1", "latest"),
            ]
        ),
        max_size=30,
    ).map("".join),
    st.text(st.sampled_from("ab/."), min_size=1000, max_size=1100),
)
NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


@PROPS
@given(hostile_text)
def test_names_are_canonical_or_refused(raw: str) -> None:
    counted("names")
    try:
        value = validate_name(raw)
    except InvalidNameError as exc:
        assert isinstance(exc, ValueError) and "invalid artifact name" in str(exc)
        return
    assert value == raw and NAME_RE.fullmatch(value) and value not in (".", "..")


@PROPS
@given(hostile_text)
def test_aliases_never_look_like_versions(raw: str) -> None:
    counted("aliases")
    try:
        value = validate_alias(raw)
    except InvalidAliasError:
        return
    assert NAME_RE.fullmatch(value) and not re.fullmatch(r"v\d+", value)


@PROPS
@given(st.one_of(hostile_text, st.builds(lambda a, b: f"{a}:{b}", hostile_text, hostile_text)))
def test_refs_parse_to_a_fixed_point_or_are_refused(raw: str) -> None:
    counted("refs")
    try:
        ref = parse_ref(raw)
    except InvalidRefError as exc:
        assert "invalid" in str(exc)
        return
    assert parse_ref(str(ref)) == ref  # what parses re-parses identically
    for part in (ref.name, ref.project, ref.entity):
        assert part is None or NAME_RE.fullmatch(part)


@PROPS
@given(hostile_text)
def test_entry_paths_are_canonical_and_contained_or_refused(raw: str) -> None:
    counted("entry paths")
    try:
        path = normalize_entry_path(raw)
    except InvalidPathError as exc:
        assert len(str(exc)) < 4000  # a huge value is shown cut short, not pasted whole
        return
    assert path.encode("utf-8")  # encodable: no lone surrogates
    assert unicodedata.normalize("NFC", path) == path
    assert len(path.encode()) <= MAX_PATH_BYTES
    assert normalize_entry_path(path) == path
    segments = path.split("/")
    assert all(s not in ("", ".", "..") for s in segments) and not re.search(r"[\x00-\x1f\x7f\\]", path)
    root = "/srv/root"
    dest = os.path.normpath(os.path.join(root, path))
    assert os.path.commonpath([dest, root]) == root and dest != root


@PROPS
@given(st.text(st.sampled_from("aeiouAEIOU\u0301\u0308é/"), min_size=1, max_size=20))
def test_nfc_and_nfd_spellings_are_one_path_and_case_is_not_folded(raw: str) -> None:
    counted("NFC/NFD")
    try:
        nfc = normalize_entry_path(unicodedata.normalize("NFC", raw))
    except InvalidPathError:
        return
    assert normalize_entry_path(unicodedata.normalize("NFD", raw)) == nfc
    if raw.swapcase() != raw:
        with contextlib.suppress(InvalidPathError):
            assert normalize_entry_path(raw.swapcase()) != nfc  # case-only differences stay distinct


json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(any_char)
)
json_like = st.recursive(
    json_leaf | st.binary(max_size=4) | st.sets(st.integers(), max_size=2),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(any_char, max_size=12), inner, max_size=4),
    max_leaves=30,
)


@PROPS
@given(st.dictionaries(st.text(any_char, max_size=16), json_like, max_size=6))
def test_metadata_is_json_clean_or_refused(raw: dict[str, Any]) -> None:
    counted("metadata")
    try:
        clean = validate_metadata(raw)
    except InvalidMetadataError:
        return
    assert json.loads(json.dumps(clean, allow_nan=False)) == clean


entries = st.dictionaries(
    st.text(st.sampled_from("abcdé/._-"), min_size=1, max_size=30).map(lambda p: p.strip("/")).filter(bool),
    st.tuples(st.binary(max_size=8), st.integers(min_value=0, max_value=2**50)),
    max_size=12,
)


@PROPS
@given(entries)
def test_manifests_round_trip_exactly(raw: dict[str, tuple[bytes, int]]) -> None:
    counted("manifest round trips")
    items = []
    for path, (content, size) in raw.items():
        try:
            canonical = normalize_entry_path(path)
        except InvalidPathError:
            continue
        items.append(make_entry(canonical, "blake3:" + blake3(content).hexdigest(), size))
    assume(len({e.path for e in items}) == len(items))
    m = Manifest(items)
    again = Manifest.from_bytes(m.to_bytes(), expected_digest=m.digest())
    assert again.digest() == m.digest()
    assert sorted(e.to_json()["path"] for e in again) == sorted(e.path for e in m)
    assert {e.path: e.to_json() for e in again} == {e.path: e.to_json() for e in m}


MUTATIONS = st.sampled_from(
    [
        *("drop-field", "wrong-type", "duplicate", "escape", "absolute", "nfd", "huge-size", "negative-size"),
        *("bad-digest", "upper-digest", "extra-list", "ref-int", "format", "version", "entries-dict", "truncate"),
    ]
)


@PROPS
@given(entries.filter(bool), MUTATIONS, st.integers(min_value=0, max_value=10**6))
def test_mutated_manifests_are_refused_or_sound(raw: dict[str, tuple[bytes, int]], how: str, pick: int) -> None:
    counted("manifest mutations")
    docs = []
    for path, (content, size) in raw.items():
        try:
            docs.append(
                {"path": normalize_entry_path(path), "digest": "blake3:" + blake3(content).hexdigest(), "size": size}
            )
        except InvalidPathError:
            continue
    assume(docs and len({d["path"] for d in docs}) == len(docs))
    doc: dict[str, Any] = {"format": FORMAT, "version": 1, "entries": docs}
    victim = docs[pick % len(docs)]
    if how == "drop-field":
        del victim[["path", "digest", "size"][pick % 3]]
    elif how == "wrong-type":
        victim[["path", "digest", "size"][pick % 3]] = [1, 2]
    elif how == "duplicate":
        docs.append(dict(victim, digest="blake3:" + "0" * 64))
    elif how == "escape":
        victim["path"] = "../" * (1 + pick % 3) + "escaped.txt"
    elif how == "absolute":
        victim["path"] = "/etc/cron.d/x"
    elif how == "nfd":
        victim["path"] = "cafe\u0301.txt"
    elif how == "huge-size":
        victim["size"] = 2**50 + 1 + pick
    elif how == "negative-size":
        victim["size"] = -1 - pick
    elif how == "bad-digest":
        victim["digest"] = "sha256:" + "0" * 64
    elif how == "upper-digest":
        victim["digest"] = victim["digest"].upper()
    elif how == "extra-list":
        victim["extra"] = [1]
    elif how == "ref-int":
        victim["ref"] = 7
    elif how == "format":
        doc["format"] = "something-else"
    elif how == "version":
        doc["version"] = 2
    elif how == "entries-dict":
        doc["entries"] = {"a": 1}
    data = gzip.compress(json.dumps(doc).encode())
    if how == "truncate":
        data = data[: max(2, len(data) * (pick % 90 + 5) // 100)]
    try:
        m = Manifest.from_bytes(data)
    except InvalidInputError:
        return
    for e in m:  # whatever was accepted is sound
        assert normalize_entry_path(e.path) == e.path
        assert re.fullmatch(r"blake3:[0-9a-f]{64}", e.digest) and 0 <= e.size <= 2**50


def test_property_examples_are_recorded() -> None:
    assert sum(EXAMPLES.values()) > 0
    report(
        "test_hostile_input_properties",
        "hypothesis properties: names, refs, aliases, entry paths, metadata, manifests",
        trials=sum(EXAMPLES.values()),
        examples_by_property=dict(sorted(EXAMPLES.items())),
        faults_injected=sum(EXAMPLES.values()),
        bytes_verified=0,
    )


# -- tampered manifests in a real store --------------------------------------------------------------


def craft(entries: list[dict[str, Any]], extra_doc: dict[str, Any] | None = None) -> tuple[str, bytes]:
    h = blake3(DIGEST_HEADER)
    for e in sorted(entries, key=lambda e: str(e.get("path"))):
        h.update(f"{e.get('path')}\0{e.get('digest')}\n".encode())
    digest = "blake3:" + h.hexdigest()
    doc = {"format": FORMAT, "version": 1, "digest": digest, "entries": entries, **(extra_doc or {})}
    return digest, gzip.compress(json.dumps(doc).encode())


def gzip_bomb(expanded: int) -> bytes:
    """A valid gzip stream of ``expanded`` bytes of spaces (~1000x smaller), built in chunks."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * 2**20
    parts = [z.compress(b'{"format":"artifact-plugins-manifest","version":1,"entries":[')]
    for _ in range(expanded // len(chunk)):
        parts.append(z.compress(chunk))
    parts.append(z.compress(b"]}"))
    parts.append(z.flush())
    return b"".join(parts)


def deep_json(depth: int) -> bytes:
    return gzip.compress(
        b'{"format":"artifact-plugins-manifest","version":1,"entries":[' + b"[" * depth + b"]" * depth + b"]}"
    )


TAMPERS = {
    "escaping path": lambda good: craft([good, dict(good, path="../../outside.txt")]),
    "absolute path": lambda good: craft([good, dict(good, path="/tmp/ap-rel-absolute.txt")]),
    "non-canonical path": lambda good: craft([good, dict(good, path="sub/./x.txt")]),
    "duplicate paths": lambda good: craft([good, dict(good)]),
    "malformed digest": lambda good: craft([good, dict(good, path="b.txt", digest="blake3:xyz")]),
    "absurd size": lambda good: craft([good, dict(good, path="b.txt", size=2**62)]),
    "negative size": lambda good: craft([good, dict(good, path="b.txt", size=-5)]),
    "content does not match its digest": None,  # entries changed, recorded digest kept
    "not gzip": lambda good: ("", b"\x1f\x8bnot really gzip"),
    "truncated gzip": lambda good: ("", craft([good])[1][:20]),
    "not JSON": lambda good: ("", gzip.compress(b"{nope")),
    "nested 200k deep": lambda good: ("", deep_json(200_000)),
    "unknown format": lambda good: craft([good], {"format": "evil"}),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_manifest_is_refused_before_anything_is_written(
    tamper: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_tree(tmp_path / "src", {"a.txt": b"innocent\n"})
    art = ap.Artifact("victim", "dataset")
    art.add_dir(src)
    with ap.init(job_type="victim") as run:
        v = run.log_artifact(art)
    good = {"path": "a.txt", "digest": "blake3:" + blake3(b"innocent\n").hexdigest(), "size": 9}
    if tamper == "content does not match its digest":
        digest = v.digest
        _, data = craft([good, dict(good, path="smuggled.txt")])
    else:
        digest, data = TAMPERS[tamper](good)
        digest = digest or v.digest
    key = manifest_key(digest)
    (tmp_path / "store" / key).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "store" / key).unlink(missing_ok=True)
    (tmp_path / "store" / key).write_bytes(data)
    conn = sqlite3.connect(tmp_path / "registry.db")
    with conn:
        conn.execute("UPDATE versions SET digest = ?, manifest_key = ? WHERE id = ?", (digest, key, v.id))
    conn.close()
    close_clients()
    root = tmp_path / "download-root"
    tampered = ap.Api().artifact("victim:v0")
    with pytest.raises(InvalidInputError) as info:
        tampered.download(root)
    assert len(str(info.value)) < 2000
    assert not root.exists() or list(root.rglob("*")) == []
    assert not (tmp_path / "outside.txt").exists() and not Path("/tmp/ap-rel-absolute.txt").exists()
    with pytest.raises(InvalidInputError):
        tampered.verify()
    report(
        f"test_tampered_manifest_is_refused_before_anything_is_written[{tamper}]",
        f"tampered manifest: {tamper}",
        trials=2,
        faults_injected=1,
        error=str(info.value)[:300],
        bytes_verified=0,
    )


BOMB_CHILD = """
import resource, sys
from artifact_plugins.core import manifest
from artifact_plugins.core.errors import InvalidInputError
manifest.MAX_MANIFEST_BYTES = 64 * 2**20  # a small limit keeps the test fast; the code path is the same
data = open(sys.argv[1], "rb").read()
soft = 700 * 2**20  # address space: the limit fits, the whole bomb (1 GiB) does not
resource.setrlimit(resource.RLIMIT_AS, (soft, soft))
try:
    manifest.Manifest.from_bytes(data)
except InvalidInputError as exc:
    print("refused:", exc)
"""


def test_gzip_bomb_manifest_is_refused_without_exhausting_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip_bomb(2**30))
    proc = subprocess.run([sys.executable, "-c", BOMB_CHILD, str(bomb)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("refused:"), proc.stdout + proc.stderr
    assert "limit" in proc.stdout
    report(
        "test_gzip_bomb_manifest_is_refused_without_exhausting_memory",
        "manifest gzip bomb (1 GiB from ~1 MiB) under a 700 MiB address-space limit",
        trials=1,
        faults_injected=1,
        compressed_bytes=bomb.stat().st_size,
        error=proc.stdout.strip(),
        bytes_verified=0,
    )


def test_absurd_metadata_and_descriptions_are_refused_clearly() -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(100_000):
        cur["a"] = {}
        cur = cur["a"]
    cases = {
        "64 MiB string": {"blob": "x" * 64 * 2**20},
        "1 million keys": {f"k{i}": i for i in range(1_000_000)},
        "nested 100k deep": deep,
        "nested lists 100k deep": {"l": _deep_list(100_000)},
    }
    errors = {}
    for label, meta in cases.items():
        with pytest.raises(InvalidMetadataError) as info:
            ap.Artifact("ds", "dataset", metadata=meta)
        assert len(str(info.value)) < 1000, label
        errors[label] = str(info.value)[:200]
    with pytest.raises(InvalidMetadataError):
        validate_description("d" * 10 * 2**20)
    report(
        "test_absurd_metadata_and_descriptions_are_refused_clearly",
        "metadata and descriptions far beyond sane sizes and depths",
        trials=len(cases) + 1,
        faults_injected=len(cases) + 1,
        errors=errors,
        bytes_verified=0,
    )


def _deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(depth):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


def test_huge_values_are_named_briefly() -> None:
    """Refusals name the bad value, cut short: a 10 MB name makes a short error, not a 10 MB one."""
    huge = "x" * 10_000_000 + "/"
    for fn, exc_type in (
        (validate_name, InvalidNameError),
        (validate_alias, InvalidAliasError),
        (parse_ref, InvalidRefError),
        (normalize_entry_path, InvalidPathError),
    ):
        with pytest.raises(exc_type) as info:
            fn(huge)
        assert len(str(info.value)) < 1000 and "xxxx" in str(info.value)


def test_case_only_differences_are_distinct_collections_and_entries(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"File.txt": b"upper\n", "file.txt": b"lower\n"})
    with ap.init(job_type="case") as run:
        for name in ("Data", "data", "DATA"):
            art = ap.Artifact(name, "dataset")
            art.add_dir(src)
            with art.new_file("who.txt") as f:
                f.write(name)
            run.log_artifact(art)
    api = ap.Api()
    assert sorted(c.name for c in api.artifact_collections()) == ["DATA", "Data", "data"]
    for name in ("Data", "data", "DATA"):
        v = api.artifact(f"{name}:latest")
        root = v.download(tmp_path / "out" / name)
        assert (root / "who.txt").read_text() == name
        assert (root / "File.txt").read_bytes() == b"upper\n" and (root / "file.txt").read_bytes() == b"lower\n"


def test_nfc_nfd_twin_files_are_refused_when_they_differ(tmp_path: Path) -> None:
    """Two files whose names differ only in normalisation map to one entry path: if their
    bytes differ the directory is refused (naming the path); identical bytes merge."""
    differ = write_tree(tmp_path / "differ", {"caf\u00e9.txt": b"nfc\n", "cafe\u0301.txt": b"nfd\n"})
    same = write_tree(tmp_path / "same", {"caf\u00e9.txt": b"same\n", "cafe\u0301.txt": b"same\n"})
    with pytest.raises(InvalidInputError, match=re.escape("caf\u00e9.txt")):
        ap.Artifact("twins", "dataset").add_dir(differ)
    art = ap.Artifact("twins", "dataset")
    art.add_dir(same)
    assert sorted(art.entries) == ["caf\u00e9.txt"]
