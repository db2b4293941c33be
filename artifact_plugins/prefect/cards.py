"""Markdown for the Prefect UI: the per-collection card and the inputs card.

Pure rendering from core objects, no Prefect calls, so it is cheap to test. Mermaid renders in
Prefect's markdown artifacts but with strict security (no clickable nodes), so every link is
also written as plain markdown under the chart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .context import ui_base_url

if TYPE_CHECKING:
    from artifact_plugins.core.api import Api
    from artifact_plugins.core.lineage import LineageGraph
    from artifact_plugins.core.registry import RunRecord
    from artifact_plugins.core.version import ArtifactVersion

MAX_CHART_NODES = 60  # beyond this the chart is redrawn one hop deep
MAX_CONSUMERS = 3  # consuming runs listed per version row
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")


def text(value: object) -> str:
    """``value`` as inline markdown text, with markdown and table syntax escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(value)).replace("\n", " ")


def code(value: object) -> str:
    """``value`` as inline code (backticks removed: names never contain them)."""
    return "`" + str(value).replace("`", "'") + "`"


def link(label: str, url: str | None) -> str:
    """A markdown link, or the escaped label alone when there is no URL."""
    return f"[{text(label)}]({url})" if url else text(label)


def human_size(size: int) -> str:
    """Bytes in a human unit (``1.2 MB``)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"  # pragma: no cover - loop always returns


def short_digest(digest: str) -> str:
    """The first 12 hex digits of a ``blake3:<hex>`` digest."""
    return digest.split(":", 1)[-1][:12]


def collection_url(key: str) -> str | None:
    """The Prefect UI page of a keyed artifact (its version timeline)."""
    base = ui_base_url()
    return f"{base}/artifacts/key/{key}" if base else None


def run_link(run: RunRecord | None) -> str:
    """``[job_type: name](task run page)``, followed by its flow run page when known."""
    if run is None:
        return "—"
    main = link(f"{run.job_type}: {run.name}", run.url)
    if run.group_url and run.group_url != run.url:
        main += f" ([flow run]({run.group_url}))"
    return main


def recent_versions(api: Api, version: ArtifactVersion, limit: int) -> list[ArtifactVersion]:
    """The newest ``limit`` versions of ``version``'s collection, newest first."""
    versions = api.artifact_versions(None, f"{version.entity}/{version.project}/{version.name}")
    return list(reversed(versions))[:limit] or [version]


def _consumers(version: ArtifactVersion) -> str:
    runs = version.used_by()
    shown = ", ".join(run_link(r) for r in runs[-MAX_CONSUMERS:])
    hidden = len(runs) - MAX_CONSUMERS
    return (f"{shown} (+{hidden} more)" if hidden > 0 else shown) or "—"


def version_table(versions: Sequence[ArtifactVersion]) -> list[str]:
    """Markdown table rows: version, aliases, digest, size, files, created, producer, consumers."""
    rows = [
        "| Version | Aliases | Digest | Size | Files | Created (UTC) | Logged by | Used by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in versions:
        aliases = ", ".join(code(a) for a in v.aliases) or "—"
        created = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        rows.append(
            f"| {v.version} | {aliases} | {code(short_digest(v.digest))} | {human_size(v.size)} | {v.file_count} "
            f"| {created} | {run_link(v.logged_by())} | {_consumers(v)} |"
        )
    return rows


def lineage_section(graph: LineageGraph, artifact_key: Any) -> list[str]:
    """The Mermaid chart, then plain links to every run and artifact in it."""
    lines = ["```mermaid", graph.to_mermaid(), "```", ""]
    runs = [n for n in graph.nodes if n.kind == "run"]
    artifacts = [n for n in graph.nodes if n.kind == "artifact"]
    if runs:
        lines.append("**Runs**")
        lines += [f"- {link(n.label, n.data.get('url'))}" for n in runs]
        lines.append("")
    if artifacts:
        lines.append("**Artifacts**")
        for n in artifacts:
            qualified = str(n.data.get("qualified_name", n.label))
            entity, project, rest = [*qualified.split("/", 2), "", ""][:3]
            key = artifact_key(entity, project, rest.split(":", 1)[0]) if rest else None
            lines.append(f"- {link(qualified, collection_url(key) if key else None)}")
        lines.append("")
    return lines


def collection_markdown(
    collection: str,
    type: str,
    versions: Sequence[ArtifactVersion],
    *,
    total: int,
    lineage: LineageGraph | None,
    artifact_key: Any,
) -> str:
    """The keyed card of a collection: header, version table (newest first), lineage chart."""
    newest = versions[0]
    lines = [
        f"## {code(collection)}",
        "",
        f"Type {code(type)} · {total} version(s) · newest {code(newest.version)} "
        f"({code(newest.digest)}) · managed by artifact\\_plugins",
        "",
    ]
    if newest.description:
        lines += [text(newest.description), ""]
    if total > len(versions):
        lines += [f"Showing the newest {len(versions)} of {total} versions.", ""]
    lines += version_table(versions)
    lines.append("")
    if lineage is not None:
        lines += [f"### Lineage of {code(newest.version)}", ""]
        lines += lineage_section(lineage, artifact_key)
    return "\n".join(lines)


def chart_for(version: ArtifactVersion, depth: int) -> LineageGraph:
    """The lineage graph drawn on a card: ``depth`` hops around ``version``, fewer if it is large."""
    graph = version.lineage(direction="both", depth=depth, collapse="group")
    if len(graph.nodes) > MAX_CHART_NODES and depth > 1:
        graph = version.lineage(direction="both", depth=1, collapse="group")
    return graph


def inputs_markdown(version: ArtifactVersion, artifact_key: str) -> str:
    """The inputs card on a consuming run: what was used, its identity and who produced it."""
    rows: Iterable[tuple[str, str]] = (
        ("Artifact", code(version.qualified_name)),
        ("Type", code(version.type)),
        ("Digest", code(version.digest)),
        ("Aliases", ", ".join(code(a) for a in version.aliases) or "—"),
        ("Size", f"{human_size(version.size)} in {version.file_count} file(s)"),
        ("Created (UTC)", version.created_at.strftime("%Y-%m-%d %H:%M:%S")),
        ("Logged by", run_link(version.logged_by())),
        ("History", link(f"{version.project}/{version.name} versions", collection_url(artifact_key))),
    )
    lines = [f"### Input {code(version.qualified_name)}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"
