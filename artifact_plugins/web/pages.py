"""The HTML shell of the single-page app, and the plain HTML shown when scripts are off.

The shell is one static template (``index.html``). Every URL in it is relative and resolved
against a ``<base href>`` that is itself relative (``./`` at the app root, ``../../../../`` on a
version page), so the app works wherever it is mounted (``/``, ``/artifacts``, behind a proxy)
without knowing its prefix. Every value put into the template is HTML-escaped.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from .service import safe_url


@dataclass(frozen=True)
class Asset:
    """A static file of the page, held in memory."""

    body: bytes
    media_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every file under ``static/`` by name (read once per process)."""
    out: dict[str, Asset] = {}
    root = resources.files(__package__) / "static"
    for item in root.iterdir():
        if not item.is_file():
            continue
        body = item.read_bytes()
        media = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/javascript", "image/svg+xml"):
            media += "; charset=utf-8"
        out[item.name] = Asset(body, media, '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"')
    return out


@cache
def asset_version() -> str:
    """A short hash of every static file: the cache-busting ``?v=`` of the asset URLs."""
    h = hashlib.blake2b(digest_size=6)
    for name, asset in sorted(assets().items()):
        h.update(name.encode() + asset.etag.encode())
    return h.hexdigest()


@cache
def _template() -> str:
    return (resources.files(__package__) / "index.html").read_text("utf-8")


def shell(*, base: str = "./", route: str = "", title: str = "Artifacts", fallback: str = "") -> str:
    """The page: ``base`` is the relative URL of the app root, ``route`` the initial ``#/...`` view.

    ``fallback`` is trusted HTML (build it with :func:`escape`) shown when scripts do not run.
    """
    return (
        _template()
        .replace("{{base}}", escape(base))
        .replace("{{route}}", escape(route))
        .replace("{{title}}", escape(title))
        .replace("{{v}}", asset_version())
        .replace("{{fallback}}", fallback)
    )


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _external(url: str | None, text: str) -> str:
    safe = safe_url(url)
    return f'<a href="{escape(safe)}" rel="noopener noreferrer">{escape(text)}</a>' if safe else escape(text)


def _run_line(run: dict[str, Any] | None) -> str:
    if run is None:
        return "-"
    return _external(run.get("url"), f"{run['job_type']} / {run['name']} ({run['orchestrator']}, {run['status']})")


def version_fallback(v: dict[str, Any]) -> str:
    """A version as plain HTML."""
    rows = [
        ("Digest", escape(v["digest"])),
        ("Type", escape(v["type"])),
        ("Size", f"{v['size']} bytes"),
        ("Files", str(v["file_count"])),
        ("Aliases", escape(", ".join(v["aliases"])) or "-"),
        ("Created", escape(v["created_at"] or "")),
        ("Description", escape(v["description"] or "") or "-"),
        ("Logged by", _run_line(v["logged_by"])),
        ("Used by", "<br>".join(_run_line(r) for r in v["used_by"]) or "-"),
        ("Metadata", "<pre>" + escape(json.dumps(v["metadata"], indent=2, default=str)) + "</pre>"),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{val}</td></tr>" for k, val in rows)
    return f"<h1>{escape(v['qualified_name'])}</h1><table>{table}</table>"


def runs_fallback(runs: list[dict[str, Any]]) -> str:
    """Runs and the versions they used and logged, as plain HTML."""
    if not runs:
        return "<p>No artifacts were used or logged here.</p>"

    def versions(items: list[dict[str, Any]]) -> str:
        return ", ".join(_link("./" + i["page"], i["qualified_name"]) for i in items) or "-"

    rows = "".join(
        "<tr><td>"
        + _external(r.get("url"), r["name"])
        + "</td><td>"
        + escape(r["job_type"])
        + "</td><td>"
        + escape(r["status"])
        + "</td><td>"
        + versions(r["used"])
        + "</td><td>"
        + versions(r["logged"])
        + "</td></tr>"
        for r in runs
    )
    return (
        "<h1>Runs</h1><table><tr><th>Run</th><th>Job type</th><th>Status</th><th>Used</th><th>Logged</th></tr>"
        + rows
        + "</table>"
    )
