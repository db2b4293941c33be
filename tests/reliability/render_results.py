"""Fill the results table of RELIABILITY.md from the counters the reliability tests wrote.

    python tests/reliability/render_results.py          # print the table
    python tests/reliability/render_results.py --write  # replace it in RELIABILITY.md

Each test writes ``test-artifacts/reliability/<test>.json`` (see ``rel_helpers.report``); a test
that failed writes nothing, so a missing row means a missing pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "test-artifacts" / "reliability"
DOC = REPO / "RELIABILITY.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SHOWN = ("trials", "faults_injected", "bytes_verified", "failures")


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def details(doc: dict[str, object]) -> str:
    skip = {*SHOWN, "test", "scenario", "finished_at", "seconds", "error", "errors", "requests"}
    parts = []
    for key, value in sorted(doc.items()):
        if key in skip or key.startswith("bytes_hashed"):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts).replace("|", "/")


def table() -> str:
    docs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    lines = [
        "| test | scenario | trials | faults injected | bytes verified | failures | details |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    total = dict.fromkeys(SHOWN, 0)
    for d in docs:
        for k in SHOWN:
            total[k] += int(d.get(k, 0))  # type: ignore[call-overload]
        lines.append(
            f"| `{d['test']}` | {d['scenario']} | {d.get('trials', 0)} | {d.get('faults_injected', 0)} | "
            f"{human(int(d.get('bytes_verified', 0)))} | {d.get('failures', 0)} | {details(d)} |"  # type: ignore[call-overload]
        )
    lines.append(
        f"| **total** ({len(docs)} results) | | **{total['trials']}** | **{total['faults_injected']}** | "
        f"**{human(total['bytes_verified'])}** | **{total['failures']}** | |"
    )
    when = max((str(d.get("finished_at", "")) for d in docs), default="")
    return f"Last run finished {when}.\n\n" + "\n".join(lines)


def main() -> None:
    text = table()
    if "--write" not in sys.argv:
        print(text)
        return
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
