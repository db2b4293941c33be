"""The ``artifacts`` command: inspect, log, fetch and manage artifacts from the shell.

Exit codes: 0 ok, 1 unexpected failure, 2 invalid input, 3 not found, 4 conflict,
5 file changed while logging, 6 integrity failure, 7 store failure, 8 registry failure.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from .core.errors import (
    ArtifactNotFoundError,
    ArtifactPluginsError,
    InvalidInputError,
    ProtectedAliasError,
)

app = typer.Typer(help="Versioned, content-addressed artifacts with lineage.", no_args_is_help=True)
alias_app = typer.Typer(help="Move, remove and inspect aliases.", no_args_is_help=True)
cache_app = typer.Typer(help="The local download cache.", no_args_is_help=True)
db_app = typer.Typer(help="The registry database.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention policies: which old versions to delete.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
app.add_typer(alias_app, name="alias")
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")

# Markup off: what these consoles print (names, descriptions, metadata, paths, error messages,
# table cells) is shown as written; the few styled words are Text objects.
out = Console(markup=False, highlight=False)
err = Console(stderr=True, markup=False, highlight=False)

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
ProjectOpt = Annotated[str | None, typer.Option("--project", "-p", help="Project (default: configured).")]
EntityOpt = Annotated[str | None, typer.Option("--entity", "-e", help="Entity (default: configured).")]


def _labelled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style``, then ``message`` as written (never read as markup)."""
    return Text.assemble((label, style), " ", message)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except ArtifactPluginsError as exc:
        err.print(_labelled("error:", "red", str(exc)))
        raise typer.Exit(exc.exit_code) from None


def _choice(option: str, value: str, choices: Mapping[str, T]) -> T:
    """``choices[value]``; an InvalidInputError naming the option, the value and the allowed values otherwise."""
    if value not in choices:
        raise InvalidInputError(f"invalid {option} {value!r}: expected one of {', '.join(sorted(choices))}")
    return choices[value]


def _api(project: str | None = None, entity: str | None = None) -> Any:
    from .core.api import Api

    return Api(project=project, entity=entity)


def _emit(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def _install_progress() -> None:
    if not err.is_terminal:
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from .core.progress import set_progress_factory

    class RichProgress:
        def __init__(self, label: str, total_bytes: int, total_files: int) -> None:
            self._p = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=err,
                transient=True,
            )
            self._task = self._p.add_task(label, total=total_bytes)
            self._show = total_bytes > 8 * 2**20 or total_files > 200

        def __enter__(self) -> RichProgress:
            if self._show:
                self._p.start()
            return self

        def advance(self, nbytes: int, files: int = 1) -> None:
            self._p.advance(self._task, nbytes)

        def __exit__(self, *exc: object) -> None:
            if self._show:
                self._p.stop()

    set_progress_factory(RichProgress)


def _version_row(v: Any) -> list[str]:
    from .core.progress import human_bytes

    return [
        v.version,
        ", ".join(v.aliases),
        v.digest[:23] + "…",
        human_bytes(v.size),
        str(v.file_count),
        v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
    ]


@app.command("ls")
def ls(
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    type: Annotated[str | None, typer.Option()] = None,
    all_projects: Annotated[bool, typer.Option("--all", help="Every project.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List artifact collections."""
    with _errors():
        api = _api(project, entity)
        cols = api.artifact_collections("*" if all_projects else project, type)
        if not cols and not all_projects:
            _hint_other_projects(api, type)
        if as_json:
            _emit([c.__dict__ for c in cols])
            return
        t = RichTable("project", "type", "name", "versions", "latest")
        for c in cols:
            t.add_row(
                c.project,
                c.type,
                c.name,
                str(c.version_count),
                f"v{c.latest_index}" if c.latest_index is not None else "-",
            )
        out.print(t)


def _hint_other_projects(api: Any, type: str | None) -> None:
    """On an empty listing, name the projects that do have artifacts (on stderr)."""
    here = api.settings.project
    others = sorted({c.project for c in api.artifact_collections("*", type)} - {here})
    if others:
        err.print(
            f"no artifacts in project {here!r}; projects with artifacts: {', '.join(others)} "
            "(choose one with -p PROJECT, or list them all with --all)"
        )


@contextmanager
def _as_collection(name: str) -> Iterator[None]:
    """Word a not-found error as ``artifact NAME not found`` with NAME as the user wrote it (no implied
    ``:latest``), keeping the registry's near-match hint."""
    try:
        yield
    except ArtifactNotFoundError as exc:
        hint = str(exc).partition("; ")[2]  # names cannot contain ';': the first "; " starts the hint
        raise ArtifactNotFoundError(f"artifact {name!r} not found" + (f"; {hint}" if hint else "")) from None


@app.command()
def versions(name: str, project: ProjectOpt = None, entity: EntityOpt = None, as_json: JsonOpt = False) -> None:
    """List the versions of a collection."""
    with _errors(), _as_collection(name):
        api = _api(project, entity)
        vs = api.artifact_versions(None, name)
        if not vs:
            api.artifact(name)  # raises a not-found error with hints
        if as_json:
            _emit([v.to_dict() for v in vs])
            return
        t = RichTable("version", "aliases", "digest", "size", "files", "created")
        for v in vs:
            t.add_row(*_version_row(v))
        out.print(t)


def _run_line(run: Any) -> str:
    """A run as one line: job type, name, status (``crashed`` shows here too) and its link."""
    return f"{run.job_type} {run.name} [{run.status}] {run.url or ''}".rstrip()


@app.command()
def show(
    ref: str,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    files: Annotated[bool, typer.Option("--files", help="List entries.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show one version: digest, size, aliases, metadata, producer and consumers."""
    with _errors():
        v = _api(project, entity).artifact(ref)
        producer = v.logged_by()
        consumers = v.used_by()
        data = v.to_dict()
        data["logged_by"] = producer.__dict__ if producer else None
        data["used_by"] = [r.__dict__ for r in consumers]
        if files:
            data["files"] = [e.entry.to_json() for e in v.files()]
        if as_json:
            _emit(data)
            return
        out.print(Text.assemble((v.qualified_name, "bold"), f"  ({v.type})"))
        for key in ("digest", "size", "file_count", "aliases", "tags", "description", "created_at"):
            out.print(f"  {key:12} {data[key]}")
        out.print(f"  {'metadata':12} {json.dumps(v.metadata)}")
        if producer:
            out.print(f"  {'logged by':12} {_run_line(producer)}")
        for r in consumers:
            out.print(f"  {'used by':12} {_run_line(r)}")
        for e in data.get("files", []):
            out.print(f"    {e['path']}  {e['size']}  {e['digest'][:23]}…")


@app.command()
def put(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to log.")],
    name: Annotated[str, typer.Option("--name", "-n")],
    type: Annotated[str, typer.Option("--type", "-t")] = "dataset",
    alias: Annotated[list[str] | None, typer.Option("--alias", "-a")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object.")] = None,
    job_type: Annotated[str, typer.Option()] = "cli",
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Log files and directories as a new version (dedup: identical content reuses the version)."""
    with _errors():
        from .core.artifact import Artifact
        from .core.run import init

        meta = None
        if metadata is not None:
            try:
                meta = json.loads(metadata)
            except ValueError as exc:
                raise InvalidInputError(f"--metadata {metadata!r} is not valid JSON: {exc}") from None
        art = Artifact(name, type, description=description, metadata=meta)
        for p in paths:
            if p.is_dir():
                art.add_dir(p, name=p.name if len(paths) > 1 else None)
            else:
                art.add_file(p)
        _install_progress()
        with init(job_type=job_type, project=project, entity=entity) as run:
            v = run.log_artifact(art, aliases=alias or [], tags=tag or [])
        producer = v.logged_by()
        created = producer is not None and producer.id == run.id  # else: same content, version reused
        if as_json:
            _emit({**v.to_dict(), "created": created})
        elif created:
            out.print(f"logged {v.qualified_name} {v.digest} aliases={v.aliases}")
        else:
            out.print(f"reused {v.qualified_name} (same content, no new version) {v.digest} aliases={v.aliases}")


def _check_root(root: Path, *, must_exist: bool) -> None:
    """Refuse a ``--root`` that is not a directory (or, unless ``must_exist``, cannot become one)."""
    candidates = [root] if must_exist else [root, *root.absolute().parents]
    found = next((p for p in candidates if os.path.lexists(p)), None)
    if found is None:
        raise InvalidInputError(f"invalid --root {str(root)!r}: the directory does not exist")
    if not found.is_dir():
        what = "it" if found == root else repr(str(found))
        raise InvalidInputError(f"invalid --root {str(root)!r}: {what} exists and is not a directory")


@app.command()
def get(
    ref: str,
    root: Annotated[Path | None, typer.Option(help="Download root.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only entries under this path.")] = None,
    verify: Annotated[bool, typer.Option(help="Re-hash what was written.")] = False,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a version (or part of it)."""
    with _errors():
        if root is not None:
            _check_root(root, must_exist=False)
        _install_progress()
        v = _api(project, entity).artifact(ref)
        path = v.download(root, path_prefix=prefix, verify=verify)
        if as_json:
            _emit({"qualified_name": v.qualified_name, "digest": v.digest, "path": str(path.resolve())})
        else:
            out.print(f"{v.qualified_name} -> {path}")


@contextmanager
def _protected_advice(api: Any, ref: str, alias: str, verb: str) -> Iterator[None]:
    """Re-word a :class:`ProtectedAliasError` with the command's options (``--expect vN`` / ``--force``)
    instead of the library's keyword arguments; ``verb`` is what the command does to the alias."""
    try:
        yield
    except ProtectedAliasError:
        current = _alias_target(api, ref, alias) or "vN"
        raise ProtectedAliasError(
            f"alias {alias!r} is protected in this project and points at {current}; "
            f"{verb} it with --expect {current} (or --force)"
        ) from None


def _alias_target(api: Any, ref: str, alias: str) -> str | None:
    """The version (``"v3"``) ``alias`` of the collection of ``ref`` points at, or None if that is unknown."""
    from .core.naming import Ref, parse_ref

    try:
        parsed = parse_ref(ref)
        return str(api.artifact(str(Ref(parsed.name, parsed.project, parsed.entity, alias=alias))).version)
    except ArtifactPluginsError:
        return None


@alias_app.command("set")
def alias_set(
    ref: str,
    alias: str,
    expect: Annotated[str | None, typer.Option("--expect", help="Only if the alias is at this version.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Move a protected alias without --expect.")] = False,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS at the version REF resolves to (compare-and-swap with --expect vN)."""
    with _errors():
        api = _api(project, entity)
        with _protected_advice(api, ref, alias, "move"):
            v = api.set_alias(ref, alias, expected=expect, force=force)
        if as_json:
            _emit(v.to_dict())
        else:
            out.print(f"{alias} -> {v.qualified_name}")


@alias_app.command("rm")
def alias_rm(
    name: str,
    alias: str,
    expect: Annotated[str | None, typer.Option("--expect")] = None,
    force: Annotated[bool, typer.Option("--force", help="Remove a protected alias without --expect.")] = False,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
) -> None:
    """Remove ALIAS from collection NAME."""
    with _errors():
        api = _api(project, entity)
        with _protected_advice(api, name, alias, "remove"):
            api.remove_alias(name, alias, expected=expect, force=force)
        out.print(f"removed {alias} from {name}")


@alias_app.command("history")
def alias_history(
    name: str,
    alias: Annotated[str | None, typer.Argument()] = None,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every move of ALIAS (or of all aliases) of collection NAME."""
    with _errors(), _as_collection(name):
        if alias is not None:
            from .core.naming import validate_alias

            validate_alias(alias)
        events = _api(project, entity).alias_history(name, alias)
        if as_json:
            _emit([e.__dict__ for e in events])
            return
        t = RichTable("at", "alias", "from", "to")
        for e in events:
            t.add_row(e.at.isoformat(timespec="seconds"), e.alias, e.previous or "-", e.version or "(removed)")
        out.print(t)


@alias_app.command("protect")
def alias_protect(
    alias: str,
    off: Annotated[bool, typer.Option("--off", help="Stop protecting it.")] = False,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
) -> None:
    """Protect ALIAS in a project: moving it then needs --expect or --force."""
    with _errors():
        api = _api(project, entity)
        api.protect_alias(alias, protected=not off)
        out.print(f"protected aliases: {', '.join(api.protected_aliases()) or '(none)'}")


@app.command()
def diff(
    old: str,
    new: str,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show what changed from version OLD to version NEW."""
    with _errors():
        d = _api(project, entity).diff(old, new)
        if as_json:
            _emit(d.to_dict())
            return
        out.print(f"{d.old} -> {d.new}: {d.summary()}")
        for c in d.added:
            out.print(f"  + {c.path} ({c.new_size} B)")
        for c in d.removed:
            out.print(f"  - {c.path} ({c.old_size} B)")
        for c in d.modified:
            out.print(f"  ~ {c.path} ({c.old_size} B -> {c.new_size} B)")
        for c in d.renamed:
            out.print(f"  > {c.old_path} -> {c.path}")
        for c in d.references_changed:
            out.print(f"  @ {c.path} (remote object changed)")


@app.command()
def verify(
    ref: str,
    root: Annotated[Path | None, typer.Option(help="Verify a download root instead of the store.")] = None,
    references: Annotated[bool, typer.Option("--references", help="Check reference entries for drift.")] = False,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-hash a version's stored blobs (or a download root); exit 6 on any mismatch.

    With --references, compare reference entries with the live objects instead (no download).
    """
    with _errors():
        if references:
            drift = _api(project, entity).verify_references(ref)
            if as_json:
                _emit(drift)
            else:
                for path, state in sorted(drift.items()):
                    out.print(f"  {state:9} {path}")
                out.print(f"{len(drift)} references checked")
            if any(state != "unchanged" for state in drift.values()):
                raise typer.Exit(6)
            return
        if root is not None:
            _check_root(root, must_exist=True)
        report = _api(project, entity).verify(ref, str(root) if root else None)
        if as_json:
            _emit(report.to_dict())
        else:
            for m in report.mismatches:
                out.print(f"  {m.problem:8} {m.path}")
            status = "ok" if report.ok else f"{len(report.mismatches)} mismatches"
            out.print(f"{report.target}: {report.checked_files} files verified, {status}")
        if not report.ok:
            raise typer.Exit(6)


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"24h"``, ``"7d"``, ``"90s"`` -> timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.replace(".", "", 1).isdigit():
        raise InvalidInputError(f"invalid duration {text!r}: expected a number with s, m, h, d or w, such as 24h")
    return timedelta(seconds=float(value) * units[unit])


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run/--delete", help="Only report (default), or delete.")] = True,
    grace: Annotated[str, typer.Option(help="Never touch objects younger than this: 24h, 7d, 30m.")] = "24h",
    as_json: JsonOpt = False,
) -> None:
    """Garbage-collect blobs and manifests that no committed version references."""
    with _errors():
        report = _api().gc(dry_run=dry_run, grace=parse_duration(grace))
        if as_json:
            _emit(report.__dict__)
        else:
            out.print(report.summary())


@retention_app.command("set")
def retention_set(
    name: str,
    keep_last: Annotated[int | None, typer.Option(help="Keep the newest N versions.")] = None,
    keep_within: Annotated[str | None, typer.Option(help="Keep versions younger than this, e.g. 30d.")] = None,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
) -> None:
    """Set (with no options: clear) the retention policy of collection NAME."""
    with _errors():
        within = parse_duration(keep_within) if keep_within else None
        _api(project, entity).set_retention(name, keep_last=keep_last, keep_within=within)
        out.print(f"{name}: keep_last={keep_last} keep_within={within}")


@retention_app.command("apply")
def retention_apply(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    project: ProjectOpt = None,
    entity: EntityOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete versions that retention policies or TTLs expire (aliased versions always stay)."""
    with _errors():
        plan = _api(project, entity).apply_retention(project, dry_run=dry_run)
        if as_json:
            _emit([{"version": f"{e.version.collection}:{e.version.version}", "reason": e.reason} for e in plan])
            return
        verb = "would delete" if dry_run else "deleted"
        for e in plan:
            out.print(f"{verb} {e.version.collection}:{e.version.version} ({e.reason})")
        out.print(f"{verb} {len(plan)} versions; `artifacts gc --delete` frees their storage")


_RENDERERS: dict[str, Callable[[Any], str]] = {
    "text": lambda g: g.to_text(),
    "json": lambda g: g.to_json(indent=2),
    "mermaid": lambda g: g.to_mermaid(),
    "dot": lambda g: g.to_dot(),
}
_DEMO_RENDERERS = {name: _RENDERERS[name] for name in ("text", "mermaid")}


@app.command()
def lineage(
    ref: str,
    format: Annotated[str, typer.Option("--format", "-f", help="text, json, mermaid or dot")] = "text",
    direction: Annotated[str, typer.Option(help="upstream, downstream or both")] = "both",
    depth: Annotated[int | None, typer.Option()] = None,
    collapse: Annotated[str, typer.Option(help="explode, group or type")] = "group",
    project: ProjectOpt = None,
    entity: EntityOpt = None,
) -> None:
    """Print the lineage graph around a version."""
    with _errors():
        render = _choice("--format", format, _RENDERERS)
        graph = _api(project, entity).lineage(ref, direction=direction, depth=depth, collapse=collapse)
        print(render(graph))


@cache_app.command("info")
def cache_info(as_json: JsonOpt = False) -> None:
    """Size and location of the download cache."""
    with _errors():
        from .core.client import get_client
        from .core.progress import human_bytes

        info = get_client().download_cache.info()
        if as_json:
            _emit(info.__dict__)
        else:
            out.print(f"{info.path}: {info.files} blobs, {human_bytes(info.bytes)} of {human_bytes(info.max_bytes)}")


@cache_app.command("clean")
def cache_clean(
    max_bytes: Annotated[str, typer.Option("--max-bytes", help="Target size, e.g. 10GiB or 0.")] = "0",
    as_json: JsonOpt = False,
) -> None:
    """Evict least recently used blobs until the cache is at most --max-bytes."""
    with _errors():
        from .core.client import get_client
        from .core.config import parse_size
        from .core.progress import human_bytes

        cache = get_client().download_cache
        files, freed = cache.evict(parse_size(max_bytes))
        cache.clean_stale_temp()
        if as_json:
            _emit({"files": files, "bytes": freed})
        else:
            out.print(f"freed {files} blobs, {human_bytes(freed)}")


@db_app.command("upgrade")
def db_upgrade(
    registry: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: configured).")] = None,
    revision: Annotated[str, typer.Option()] = "head",
) -> None:
    """Apply registry schema migrations."""
    with _errors():
        from .core.config import Settings
        from .core.redact import redact_uri
        from .core.registry.db import create_registry_engine, current_revision, upgrade

        url = registry or Settings.resolve().registry
        engine = create_registry_engine(url)
        before = current_revision(engine)
        upgrade(engine, revision)
        out.print(f"{redact_uri(url)}: {before or 'empty'} -> {current_revision(engine)}")


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path("demo-work"),
    format: Annotated[str, typer.Option("--format", "-f", help="text or mermaid")] = "text",
) -> None:
    """Run the walkthrough pipeline (preprocess -> train -> evaluate) and print the lineage."""
    with _errors():
        from .core.config import Settings
        from .demo import run_demo

        render = _choice("--format", format, _DEMO_RENDERERS)
        settings = Settings.resolve()
        err.print(f"store: {settings.describe()['store']}\nregistry: {settings.describe()['registry']}")
        print(render(run_demo(workdir)))


def _check_bindable(host: str, port: int) -> None:
    """Refuse, naming them, a host that does not resolve or a port that cannot be bound (in use, privileged).

    Binds like the server will (every address of ``host``, SO_REUSEADDR) and lets go at once.
    """
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise InvalidInputError(f"invalid --host {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    for family, kind, proto, _canonical, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise InvalidInputError(
                    f"cannot serve on port {port} of {host}: {exc.strerror or exc}; choose another with --port"
                ) from None


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Interface to bind (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8765,
    token: Annotated[str | None, typer.Option(help="Require this access token (header, or ?token= once).")] = None,
) -> None:
    """Serve the read-only lineage viewer (needs the 'web' extra)."""
    with _errors():
        try:
            import uvicorn

            from .web import create_app
        except ImportError as exc:
            raise InvalidInputError(f"the viewer needs: pip install 'artifact-plugins[web]' ({exc})") from None
        loopback = host in ("127.0.0.1", "localhost", "::1")
        _check_bindable(host, port)
        if not loopback and not token:
            err.print(
                _labelled(
                    "warning:",
                    "yellow",
                    f"serving beyond loopback without --token: anyone who can reach {host}:{port} "
                    "can read the registry",
                )
            )
        hosts = ["127.0.0.1", "localhost", "[::1]", "::1"] if loopback else None
        url = f"http://{'[::1]' if host == '::1' else host}:{port}/" + (f"?token={token}" if token else "")
        err.print(f"artifacts viewer on {url}")
        uvicorn.run(create_app(token=token, allowed_hosts=hosts), host=host, port=port, log_level="warning")


def main() -> None:
    """Entry point of the ``artifacts`` command."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
