"""Pure pieces of the viewer: the manifest diff, the no-script pages, the guard, and the ``artifacts ui`` command."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from typer.testing import CliRunner

from artifact_plugins.core.manifest import Manifest, ManifestEntry
from artifact_plugins.web.diff import diff_metadata, diff_versions
from artifact_plugins.web.pages import runs_fallback, shell, version_fallback
from artifact_plugins.web.service import safe_url


def entries(refs: dict[str, str] | None = None, **files: str) -> Manifest:
    """A manifest of ``path=content-id`` pairs (the digest encodes the content id; ``__`` is ``/``);
    ``refs`` maps paths to reference URIs."""
    out = []
    for key, content in files.items():
        path = key.replace("__", "/")
        digest = "blake3:" + content.encode().hex().ljust(64, "0")
        out.append(ManifestEntry(path=path, digest=digest, size=len(content), ref=(refs or {}).get(path)))
    return Manifest(out)


def test_diff_classifies_every_change() -> None:
    old = entries(a="1", b="2", c="3", d__x="4", same="5")
    new = entries(a="1", b="22", c2="3", e="6", same="5")
    d = diff_versions(old, new)
    assert [f["path"] for f in d["added"]] == ["e"]
    assert [f["path"] for f in d["removed"]] == ["d/x"]
    assert [f["path"] for f in d["modified"]] == ["b"]
    assert [(r["old_path"], r["new_path"]) for r in d["renamed"]] == [("c", "c2")]
    assert d["summary"] == {
        "added": 1,
        "removed": 1,
        "modified": 1,
        "renamed": 1,
        "references_changed": 0,
        "unchanged": 2,
        "added_bytes": 1,
        "removed_bytes": 1,
    }
    assert not d["truncated"]


def test_diff_pairs_duplicate_content_renames_in_path_order_and_keeps_copies_as_added() -> None:
    old = entries(a1="x", a2="x", keep="x")
    new = entries(b1="x", b2="x", b3="x", keep="x")
    d = diff_versions(old, new)
    assert [(r["old_path"], r["new_path"]) for r in d["renamed"]] == [("a1", "b1"), ("a2", "b2")]
    assert [f["path"] for f in d["added"]] == ["b3"] and d["removed"] == []


def test_diff_reports_moved_references_apart_and_keeps_their_uri() -> None:
    old = entries({"r": "s3://b/k", "gone": "s3://b/g"}, r="etag1", gone="g")
    new = entries({"r": "s3://b/k"}, r="etag2")
    d = diff_versions(old, new)
    assert [c["path"] for c in d["references_changed"]] == ["r"] and d["modified"] == []
    assert d["removed"] == [{"path": "gone", "digest": old.entries["gone"].digest, "size": 1, "ref": "s3://b/g"}]


def test_diff_limits_lists_but_not_counts() -> None:
    d = diff_versions(entries(), entries(**{f"f{i}": str(i) for i in range(10)}), limit=3)
    assert len(d["added"]) == 3 and d["summary"]["added"] == 10 and d["truncated"]


def test_metadata_diff() -> None:
    changes = diff_metadata({"a": 1, "b": 2, "c": {"x": 1}}, {"a": 1, "b": 3, "d": 4, "c": {"x": 2}})
    assert changes == {
        "added": {"d": 4},
        "removed": {},
        "changed": {"b": {"old": 2, "new": 3}, "c": {"old": {"x": 1}, "new": {"x": 2}}},
    }


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://prefect.example/runs/1", True),
        ("http://localhost:8080/dags/x", True),
        ("HTTPS://X", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<b>", False),
        ("//evil.example", False),
        ("", False),
    ],
)
def test_safe_url(url: Any, safe: bool) -> None:
    assert safe_url(url) == (url if safe else None)


def run(**kw: Any) -> dict[str, Any]:
    base = {
        "id": "r1",
        "name": "<b>n</b>",
        "job_type": "j",
        "orchestrator": "airflow",
        "status": "ok",
        "url": "javascript:alert(1)",
        "used": [],
        "logged": [],
    }
    return {**base, **kw}


def test_fallback_pages_escape_and_drop_unsafe_links() -> None:
    html = runs_fallback([run(logged=[{"page": "versions/e/p/n/v0", "qualified_name": "e/p/n:v0<i>"}])])
    assert "<b>n</b>" not in html and "&lt;b&gt;n&lt;/b&gt;" in html and "javascript:" not in html
    assert '<a href="./versions/e/p/n/v0">e/p/n:v0&lt;i&gt;</a>' in html
    assert "No artifacts" in runs_fallback([])
    v = {
        "qualified_name": "<x>",
        "digest": "d",
        "type": "t",
        "size": 1,
        "file_count": 1,
        "aliases": ["<a>"],
        "created_at": None,
        "description": "<script>",
        "metadata": {"<k>": "<v>"},
        "logged_by": run(url="https://ok.example/?a=1&b=<2>"),
        "used_by": [],
    }
    page = version_fallback(v)
    assert "<script>" not in page and "<x>" not in page and "<k>" not in page
    assert 'href="https://ok.example/?a=1&amp;b=&lt;2&gt;"' in page


def test_shell_escapes_its_slots() -> None:
    page = shell(base='"><script>', route='#/x"><script>', title="<t>")
    assert "<script>" not in page.split("<body>")[0].replace('<script src="static/', "")
    assert "&lt;t&gt;" in page


def test_ui_command_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from artifact_plugins.cli import app

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: calls.append({"app": application, **kw}))
    port = _free_port()  # the command checks the port can be bound before it starts serving
    result = CliRunner().invoke(app, ["ui", "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == port
    assert f"http://127.0.0.1:{port}/" in result.output

    result = CliRunner().invoke(app, ["ui", "--token", "abc", "--host", "0.0.0.0", "--port", str(_free_port())])
    assert result.exit_code == 0, result.output
    assert calls[1]["host"] == "0.0.0.0" and "?token=abc" in result.output

    result = CliRunner().invoke(app, ["ui", "--host", "0.0.0.0"])
    assert "without --token" in result.output


def test_ui_app_refuses_foreign_hosts_and_needs_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from fastapi.testclient import TestClient

    from artifact_plugins.cli import app

    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: apps.append(application))
    assert CliRunner().invoke(app, ["ui", "--token", "abc", "--port", str(_free_port())]).exit_code == 0
    with TestClient(apps[0], base_url="http://127.0.0.1:8765") as c:
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/").status_code == 401
        assert c.get("/", headers={"Authorization": "Bearer abc"}).status_code == 200
    with TestClient(apps[0], base_url="http://evil.example") as c:
        assert c.get("/", headers={"Authorization": "Bearer abc"}).status_code == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
