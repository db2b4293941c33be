"""Lineage graphs: which runs used which versions and logged which, around a version or run.

Runs of the same group (a Prefect flow run, an Airflow DAG run) are one unit of causality:
a version used by one task of a flow run is upstream of what another task of it logged.
``collapse`` chooses what a node is:

* ``explode`` — every version and every run (runs carry their group for clustering);
* ``group``  — every version; runs merged per group (the default);
* ``type``   — versions merged per artifact type and runs per job_type (the overview).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import InvalidInputError
from .registry import Registry, RunRecord, VersionRecord

Direction = Literal["upstream", "downstream", "both"]
Collapse = Literal["explode", "group", "type"]
COLLAPSES = ("explode", "group", "type")
#: Other names users reach for: "step"/"none" (no collapsing), "job_type" (the per-type overview).
_COLLAPSE_ALIASES = {"step": "explode", "none": "explode", "job_type": "type"}
DIRECTIONS = ("upstream", "downstream", "both")
MAX_NODES = 20_000


@dataclass(frozen=True)
class Node:
    """An artifact (version or type) or a run (step, group or job type)."""

    id: str
    kind: Literal["artifact", "run"]
    label: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """``used``: artifact -> run; ``logged``: run -> artifact."""

    source: str
    target: str
    kind: Literal["used", "logged"]


@dataclass
class LineageGraph:
    """Nodes and edges, exportable to JSON, Mermaid and Graphviz DOT."""

    nodes: list[Node]
    edges: list[Edge]
    collapse: str = "group"
    root: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "collapse": self.collapse,
            "root": self.root,
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [asdict(e) for e in self.edges],
        }

    def to_json(self, indent: int | None = None) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def _ids(self) -> dict[str, str]:
        return {n.id: f"n{i}" for i, n in enumerate(self.nodes)}

    def to_mermaid(self) -> str:
        """A ``flowchart LR`` (artifacts as rectangles, runs as rounded boxes; groups as subgraphs)."""
        ids = self._ids()

        def label(n: Node) -> str:
            text = n.label.replace('"', "'")
            return html.escape(text, quote=False)

        def shape(n: Node) -> str:
            return f'{ids[n.id]}["{label(n)}"]' if n.kind == "artifact" else f'{ids[n.id]}("{label(n)}")'

        lines = ["flowchart LR"]
        clusters: dict[str, list[Node]] = {}
        for n in self.nodes:
            g = n.data.get("group") if self.collapse == "explode" and n.kind == "run" else None
            if g:
                clusters.setdefault(g, []).append(n)
            else:
                lines.append(f"  {shape(n)}")
        for i, (g, members) in enumerate(clusters.items()):
            title = members[0].data.get("group_name") or g
            lines.append(f'  subgraph c{i}["{html.escape(title, quote=False).replace(chr(34), chr(39))}"]')
            lines += [f"    {shape(n)}" for n in members]
            lines.append("  end")
        for e in self.edges:
            arrow = "-->" if e.kind == "logged" else "-.->"
            lines.append(f"  {ids[e.source]} {arrow} {ids[e.target]}")
        lines.append("  classDef artifact fill:#e8f1fb,stroke:#2f6db5")
        lines.append("  classDef run fill:#f4f4f4,stroke:#666")
        for kind in ("artifact", "run"):
            of_kind = [ids[n.id] for n in self.nodes if n.kind == kind]
            if of_kind:
                lines.append(f"  class {','.join(of_kind)} {kind}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Graphviz DOT, left to right."""
        ids = self._ids()

        def q(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for n in self.nodes:
            style = 'shape=box,style=filled,fillcolor="#e8f1fb"' if n.kind == "artifact" else "shape=ellipse"
            lines.append(f"  {ids[n.id]} [label={q(n.label)},{style}];")
        for e in self.edges:
            style = "" if e.kind == "logged" else " [style=dashed]"
            lines.append(f"  {ids[e.source]} -> {ids[e.target]}{style};")
        lines.append("}")
        return "\n".join(lines)

    def to_text(self) -> str:
        """One line per edge, for terminals."""
        by_id = {n.id: n for n in self.nodes}
        out = [f"{by_id[e.source].label}  --{e.kind}-->  {by_id[e.target].label}" for e in self.edges]
        lonely = [n.label for n in self.nodes if not any(n.id in (e.source, e.target) for e in self.edges)]
        return "\n".join(out + lonely)


def build_lineage(
    registry: Registry,
    version_ids: Iterable[int],
    run_ids: Iterable[str],
    direction: str = "both",
    depth: int | None = None,
    collapse: str = "group",
) -> LineageGraph:
    """Walk the lineage from the given versions and runs and build the graph."""
    if direction not in DIRECTIONS:
        raise InvalidInputError(f"invalid lineage direction {direction!r}: expected one of {DIRECTIONS}")
    collapse = _COLLAPSE_ALIASES.get(collapse, collapse)
    if collapse not in COLLAPSES:
        accepted = ", ".join([*COLLAPSES, *_COLLAPSE_ALIASES])
        raise InvalidInputError(f"invalid collapse {collapse!r}: expected one of {accepted}")
    if depth is not None and depth < 0:
        raise InvalidInputError(f"invalid depth {depth!r}: must be >= 0 or None")
    start_versions = set(version_ids)
    start_runs = set(run_ids)
    versions: set[int] = set(start_versions)
    runs: dict[str, RunRecord] = {r.id: r for r in registry.runs(ids=start_runs)} if start_runs else {}
    edges: set[tuple[str, int, str]] = set()

    def expand_runs(rids: set[str]) -> set[str]:
        """Runs plus every run of their groups."""
        new = {rid for rid in rids if rid not in runs}
        if new:
            runs.update({r.id: r for r in registry.runs(ids=new)})
        groups = {runs[r].group for r in rids if r in runs and runs[r].group}
        members = {rid for ids in registry.group_run_ids(groups).values() for rid in ids}  # type: ignore[arg-type]
        missing = members - set(runs)
        if missing:
            runs.update({r.id: r for r in registry.runs(ids=missing)})
        return rids | members

    for d_name in ["upstream", "downstream"] if direction == "both" else [direction]:
        into, out_of = ("logged", "used") if d_name == "upstream" else ("used", "logged")
        frontier_v = set(start_versions)
        frontier_r = expand_runs(set(start_runs)) if start_runs else set()
        if frontier_r:
            for e in registry.edges(run_ids=frontier_r):
                edges.add((e.run_id, e.version_id, e.kind))
                if e.kind == out_of:
                    frontier_v.add(e.version_id)
            versions |= frontier_v
        level = 0
        seen_v: set[int] = set(frontier_v)
        while frontier_v and (depth is None or level < depth) and len(versions) + len(runs) < MAX_NODES:
            level += 1
            step_runs = set()
            for e in registry.edges(version_ids=frontier_v):
                if e.kind == into:
                    step_runs.add(e.run_id)
                    edges.add((e.run_id, e.version_id, e.kind))
            step_runs = expand_runs(step_runs)
            next_v = set()
            for e in registry.edges(run_ids=step_runs):
                edges.add((e.run_id, e.version_id, e.kind))
                if e.kind == out_of and e.version_id not in seen_v:
                    next_v.add(e.version_id)
            # keep only edges that lead in this direction's sense plus same-level context
            seen_v |= next_v
            versions |= next_v
            frontier_v = next_v
    # Keep only edges whose endpoints are in the graph.
    vrecs = {v.id: v for v in registry.versions_by_ids(versions | {vid for _, vid, _ in edges})}
    edges = {e for e in edges if e[1] in vrecs and e[0] in runs}
    roots = [f"v:{v}" for v in start_versions] + [f"r:{r}" for r in start_runs]
    return _collapse(vrecs, runs, edges, collapse, roots)


def _version_node(v: VersionRecord) -> Node:
    return Node(
        id=f"v:{v.id}",
        kind="artifact",
        label=f"{v.name}:{v.version}",
        data={
            "qualified_name": f"{v.collection}:{v.version}",
            "type": v.type,
            "digest": v.digest,
            "aliases": list(v.aliases),
            "size": v.size,
            "version_id": v.id,
        },
    )


def _run_node(r: RunRecord) -> Node:
    return Node(
        id=f"r:{r.id}",
        kind="run",
        label=f"{r.job_type}: {r.name}",
        data={
            "run_id": r.id,
            "orchestrator": r.orchestrator,
            "job_type": r.job_type,
            "group": r.group,
            "group_name": r.group_name,
            "url": r.url,
            "status": r.status,
        },
    )


def _collapse(
    vrecs: dict[int, VersionRecord],
    runs: dict[str, RunRecord],
    edges: set[tuple[str, int, str]],
    collapse: str,
    roots: list[str],
) -> LineageGraph:
    def run_key(r: RunRecord) -> tuple[str, str, dict[str, Any]]:
        if collapse == "type":
            return f"j:{r.job_type}", f"{r.job_type}", {"job_type": r.job_type, "orchestrator": r.orchestrator}
        if collapse == "group" and r.group:
            return (
                f"g:{r.group}",
                r.group_name or r.group,
                {"group": r.group, "group_name": r.group_name, "orchestrator": r.orchestrator, "url": r.group_url},
            )
        node = _run_node(r)
        return node.id, node.label, node.data

    def version_key(v: VersionRecord) -> tuple[str, str, dict[str, Any]]:
        if collapse == "type":
            return f"t:{v.type}", v.type, {"type": v.type}
        node = _version_node(v)
        return node.id, node.label, node.data

    nodes: dict[str, Node] = {}
    counts: dict[str, int] = {}
    for v in sorted(vrecs.values(), key=lambda v: (v.name, v.index)):
        nid, label, data = version_key(v)
        counts[nid] = counts.get(nid, 0) + 1
        nodes.setdefault(nid, Node(nid, "artifact", label, data))
    for r in sorted(runs.values(), key=lambda r: r.started_at):
        nid, label, data = run_key(r)
        counts[nid] = counts.get(nid, 0) + 1
        nodes.setdefault(nid, Node(nid, "run", label, data))
    out_edges: dict[tuple[str, str, str], Edge] = {}
    for rid, vid, kind in sorted(edges, key=lambda e: (e[1], e[0], e[2])):
        rn = run_key(runs[rid])[0]
        vn = version_key(vrecs[vid])[0]
        src, dst = (vn, rn) if kind == "used" else (rn, vn)
        out_edges.setdefault((src, dst, kind), Edge(src, dst, kind))  # type: ignore[arg-type]
    if collapse == "type":
        nodes = {
            k: Node(
                n.id, n.kind, f"{n.label} ×{counts[k]}" if counts[k] > 1 else n.label, {**n.data, "count": counts[k]}
            )
            for k, n in nodes.items()
        }
    if collapse != "explode":
        roots = [
            version_key(vrecs[int(r[2:])])[0]
            if r.startswith("v:") and int(r[2:]) in vrecs
            else run_key(runs[r[2:]])[0]
            if r.startswith("r:") and r[2:] in runs
            else r
            for r in roots
        ]
    return LineageGraph(list(nodes.values()), list(out_edges.values()), collapse, roots)
