"""The ``artifacts`` command's error paths: messages shown as written, exit codes, CLI wording.

Every test runs the real CLI in-process (typer's CliRunner) against this test's store and
registry (the ``isolated`` fixture of conftest.py sets the ARTIFACT_PLUGINS_* variables).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from artifact_plugins.cli import app


def cli(*args: str) -> Result:
    """Run ``artifacts ARGS`` (wide console: no line wrapping inside messages)."""
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})


def flat(result: Result) -> str:
    """The output with runs of whitespace collapsed."""
    return " ".join(result.output.split())


def assert_refused(result: Result, exit_code: int, *fragments: str) -> None:
    """The command failed with ``exit_code`` and an ``error:`` line holding every fragment; no traceback."""
    assert result.exit_code == exit_code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    text = flat(result)
    assert "error:" in text
    for fragment in fragments:
        assert fragment in text, (fragment, text)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "f.txt"
    path.write_text("hello")
    return path


@pytest.fixture
def logged(data_file: Path) -> str:
    """Collection ``data`` with one version (v0), in the default project."""
    assert cli("put", str(data_file), "--name", "data").exit_code == 0
    return "data"


# -- 1. text is shown as written, never as Rich markup -------------------------------------------


@pytest.mark.parametrize("ref", ["a[/b]", "x[bold]y:v0"])
def test_bracketed_ref_is_reported_as_written(ref: str) -> None:
    result = cli("show", ref)
    assert_refused(result, 2, f"invalid artifact ref {ref!r}")


def test_bracketed_config_error_is_reported_as_written(data_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACT_PLUGINS_STORE", "s3://")
    assert_refused(cli("put", str(data_file), "--name", "x"), 2, "s3://bucket[/key-or-prefix]")


def test_ui_without_the_web_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn -> ImportError
    assert_refused(cli("ui"), 2, "pip install 'artifact-plugins[web]'")


def test_description_and_metadata_are_shown_as_written(data_file: Path) -> None:
    description, metadata = "a [red]b[/red] [/x]", '{"k": "[/b] [bold]z"}'
    put = cli("put", str(data_file), "-n", "data", "--description", description, "--metadata", metadata)
    assert put.exit_code == 0, put.output
    result = cli("show", "data")
    assert result.exit_code == 0, result.output
    assert description in result.output and metadata in result.output


def test_ui_host_is_reported_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    assert_refused(cli("ui", "--host", "no-such[/host]"), 2, "invalid --host 'no-such[/host]'")


# -- 2. exit codes of bad --root and a busy port ---------------------------------------------------


@pytest.mark.parametrize("below", ["", "sub"])
def test_get_into_a_regular_file_is_invalid_input(logged: str, data_file: Path, below: str) -> None:
    root = data_file / below if below else data_file
    assert_refused(cli("get", logged, "--root", str(root)), 2, f"invalid --root {str(root)!r}", "is not a directory")
    assert data_file.read_text() == "hello"


def test_verify_a_missing_root_says_it_does_not_exist(logged: str, tmp_path: Path) -> None:
    root = tmp_path / "no-such-dir"
    result = cli("verify", logged, "--root", str(root))
    assert_refused(result, 2, f"invalid --root {str(root)!r}", "does not exist")
    assert "f.txt" not in result.output  # no per-file "missing" report


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_ui_on_a_busy_port_refuses_and_does_not_claim_to_serve(busy_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: served.append(kw))
    result = cli("ui", "--port", str(busy_port))
    assert_refused(result, 2, f"port {busy_port}", "--port")
    assert "viewer on" not in result.output and not served


# -- 3. protected aliases: CLI advice -------------------------------------------------------------


@pytest.fixture
def protected(logged: str, tmp_path: Path) -> str:
    """``production`` is protected and points at data:v0; data:v1 exists."""
    (tmp_path / "g.txt").write_text("other")
    for args in (
        ("alias", "protect", "production"),
        ("alias", "set", "data:v0", "production"),
        ("put", str(tmp_path / "g.txt"), "--name", "data"),
    ):
        assert cli(*args).exit_code == 0
    return logged


@pytest.mark.parametrize(
    ("args", "verb"),
    [(("alias", "set", "data:v1", "production"), "move"), (("alias", "rm", "data", "production"), "remove")],
)
def test_protected_alias_advice_names_the_options(protected: str, args: tuple[str, ...], verb: str) -> None:
    result = cli(*args)
    assert_refused(result, 4, f"{verb} it with --expect v0 (or --force)")
    assert "set_alias" not in result.output and "force=True" not in result.output


def test_protected_alias_moves_with_the_advised_option(protected: str) -> None:
    assert cli("alias", "set", "data:v1", "production", "--expect", "v0").exit_code == 0
    assert cli("alias", "rm", "data", "production", "--expect", "v1").exit_code == 0


# -- 4. demo --format ------------------------------------------------------------------------------


def test_demo_refuses_an_unknown_format(tmp_path: Path) -> None:
    result = cli("demo", "--workdir", str(tmp_path / "demo"), "--format", "dot")
    assert_refused(result, 2, "invalid --format 'dot'", "mermaid, text")
    assert not (tmp_path / "demo").exists()


# -- 5. put says when it reused a version ---------------------------------------------------------


def test_put_says_when_it_reused_the_version(data_file: Path) -> None:
    first = cli("put", str(data_file), "--name", "data")
    again = cli("put", str(data_file), "--name", "data")
    assert first.output.startswith("logged ") and "data:v0" in first.output
    assert again.output.startswith("reused ") and "data:v0" in again.output
    as_json = cli("put", str(data_file), "--name", "data", "--json")
    assert '"created": false' in as_json.output


# -- 6. ls hints at other projects ---------------------------------------------------------------


def test_empty_ls_names_the_projects_with_artifacts(data_file: Path) -> None:
    assert cli("put", str(data_file), "--name", "bike-data", "-p", "bikes").exit_code == 0
    text = flat(cli("ls"))
    assert "no artifacts in project 'default'" in text and "bikes" in text
    assert "-p PROJECT" in text and "--all" in text
    assert "no artifacts" not in flat(cli("ls", "-p", "bikes"))


def test_empty_ls_without_other_projects_has_no_hint() -> None:
    assert "no artifacts" not in cli("ls").output


# -- 7. alias history validates; versions names the collection as typed ---------------------------


def test_alias_history_refuses_an_invalid_alias(logged: str) -> None:
    assert_refused(cli("alias", "history", logged, "v3"), 2, "invalid alias 'v3'")


@pytest.mark.parametrize("command", [("versions",), ("alias", "history")])
def test_missing_collection_is_named_as_typed(logged: str, command: tuple[str, ...]) -> None:
    result = cli(*command, "dat")
    assert_refused(result, 3, "artifact 'dat' not found", "data")
    assert ":latest" not in result.output
