"""End-to-end in real headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright).

The registry is filled by a real Prefect flow run (``pipelines/prefect_etl.py``, on Prefect's
ephemeral server) and a real Airflow DAG run (``pipelines/airflow_train.py``, ``dag.test()`` in the
Airflow environment ``.venvs/airflow``), both subprocesses writing to the same SQLite registry and
store. The app is served by uvicorn on a free loopback port. Screenshots go to
``test-artifacts/web/`` at the repository root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from web_helpers import XSS, Seeded, core_at, env_for, seed

import artifact_plugins as ap
from artifact_plugins.web import create_app

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "web"
PIPELINES = Path(__file__).parent / "pipelines"
AIRFLOW_PY = REPO / ".venvs" / "airflow" / "bin" / "python"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [a for a in (REPO / "scripts" / "lib" / "chromium-args").read_text().split("\n") if a[:1] == "-"]
READY = "body[data-ready='1']"
GRAPH_READY = "#lineage[data-ready='1']"


# -- infrastructure ----------------------------------------------------------------------------------


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without Prefect, Airflow or artifact settings, plus ``extra``."""
    drop = ("PREFECT_", "AIRFLOW_", "AIRFLOW__", "ARTIFACT_PLUGINS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra)
    return env


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


class Server:
    """uvicorn serving an ASGI app on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (installed by ``scripts/ensure-chromium`` when missing)."""
    if not os.access(CHROMIUM, os.X_OK):
        subprocess.run([str(REPO / "scripts" / "ensure-chromium")], check=True, timeout=900)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        pytest.fail("the browser tests need the 'playwright' package (dev extra); browsers come from Debian")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``new_page(**context_options)``: a fresh page; script errors and CSP violations fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not expected(m.text) else None)
        return page

    yield make
    for c in contexts:
        c.close()
    assert not errors, errors


def expected(console_error: str) -> bool:
    """Console errors a test provokes on purpose (the 401 of a page opened without its token)."""
    return console_error.startswith("Failed to load resource: the server responded with a status of 401")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(150)  # let the last frame paint
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def after(page: Any, action: Callable[[], Any], graph: bool = False) -> None:
    """Do ``action`` (which changes the view) and wait until the next view (and its graph) is drawn."""
    before = page.get_attribute("body", "data-nav") or "0"
    action()
    page.wait_for_selector(f"body[data-ready='1']:not([data-nav='{before}'])")
    if graph:
        page.wait_for_selector(GRAPH_READY)


def visit(page: Any, url: str, graph: bool = False) -> None:
    """Go to ``url`` and wait until its view (and graph) is drawn; a hash change is not a page load."""
    if page.url.split("#")[0] == url.split("#")[0] and "#" in url:
        after(page, lambda: page.goto(url), graph)
        return
    page.goto(url)
    page.wait_for_selector(READY)
    if graph:
        page.wait_for_selector(GRAPH_READY)


def xss_fired(page: Any) -> Any:
    return page.evaluate("window.__xss === undefined ? null : window.__xss")


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A registry filled by a real Prefect flow run, then a real Airflow DAG run, then a hotfix version."""
    assert AIRFLOW_PY.exists(), f"{AIRFLOW_PY} is missing: scripts/test builds the Airflow environment"
    root = tmp_path_factory.mktemp("e2e")
    artifacts = env_for(root / "registry")
    airflow_home = root / "airflow-home"
    (airflow_home / "dags").mkdir(parents=True)
    airflow_env = _clean_env(
        {
            **artifacts,
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__BASE_URL": "http://localhost:8080",
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        }
    )
    # Airflow's metadata DB migrates while the Prefect flow runs.
    migrate = subprocess.Popen(
        [str(AIRFLOW_PY), "-m", "airflow", "db", "migrate"],
        env=airflow_env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    prefect_env = _clean_env(
        {
            **artifacts,
            "PREFECT_HOME": str(root / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            # The ephemeral server migrates a new database while Airflow migrates its own, on two
            # cores: Prefect's default 20 s wait for it ran out on a slow machine (37 s needed).
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
    )
    flow = subprocess.run(
        [sys.executable, str(PIPELINES / "prefect_etl.py"), str(root / "prefect-work")],
        env=prefect_env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out, err = migrate.communicate(timeout=300)
    _check(flow, "the Prefect flow")
    _check(subprocess.CompletedProcess(migrate.args, migrate.returncode, out, err), "airflow db migrate")
    dag = subprocess.run(
        [str(AIRFLOW_PY), str(PIPELINES / "airflow_train.py")],
        env=airflow_env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    _check(dag, "the Airflow DAG run")
    with core_at(root / "registry") as settings:
        v0 = ap.Api(settings).artifact("bike-dataset:v0")
        work = v0.download(root / "hotfix")
        (work / "splits" / "test.csv").write_text((work / "splits" / "test.csv").read_text() + "48,9,88\n")
        (work / "splits" / "train.csv").rename(work / "splits" / "train_full.csv")
        (work / "README.md").write_text("Splits of the hourly rentals.\n")
        with ap.init(job_type="hotfix", name="hotfix-1", settings=settings) as run:
            art = ap.Artifact(
                "bike-dataset", "dataset", description="Fixed test split.", metadata={"train_rows": 39, "test_rows": 9}
            )
            art.add_dir(work)
            run.log_artifact(art, aliases=["staging"])
    yield root / "registry"


@dataclass
class Site:
    """A served viewer: its URL and the settings of the registry behind it."""

    url: str
    settings: ap.Settings


@pytest.fixture(scope="module")
def site(pipelines: Path) -> Iterator[Site]:
    """The viewer over the pipelines' registry, served by uvicorn."""
    with core_at(pipelines) as settings:
        server = Server(create_app(settings))
        yield Site(server.url, settings)
        server.stop()


# -- the walkthrough --------------------------------------------------------------------------------


def test_click_through_to_a_version_and_explode_the_graph(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(site.url)
    page.wait_for_selector(READY)
    shot(page, "01-projects")
    after(page, lambda: page.click("a.card[data-project='default/bikes']"))
    assert page.locator("#collections tbody tr").count() == 4
    shot(page, "02-project")
    after(page, lambda: page.click("#collections a:text-is('bike-dataset')"))
    assert page.locator("#versions tbody tr").count() == 2
    shot(page, "03-collection")
    after(page, lambda: page.click("#versions a:text-is('v0')"))
    assert "bike-dataset:v0" in page.title() or page.locator("h1").inner_text().startswith("bike-dataset")
    details = page.locator("table.kv").first.inner_text()
    digest = ap.Api(site.settings).artifact("bike-dataset:v0").digest
    assert digest in details
    assert page.locator(".runcard .runname", has_text="preprocess").count() == 1  # logged by the Prefect task
    assert page.get_by_text("bike_train").count() >= 1  # used by the Airflow tasks
    shot(page, "04-version")

    after(page, lambda: page.click(".tabs a[data-tab='lineage']"), graph=True)
    collapsed = node_ids(page)
    expected = {"t:dataset", "t:raw-data", "t:model", "t:report", "j:preprocess", "j:ingest", "j:train", "j:evaluate"}
    assert expected <= collapsed
    assert all(not n.startswith(("v:", "r:")) for n in collapsed)
    shot(page, "05-lineage-collapsed")

    after(page, lambda: page.click("button[data-collapse='explode']"), graph=True)
    exploded = page.locator("g.node[data-kind='run']").all_text_contents()
    assert any(t.startswith("train") and "airflow" in t for t in exploded)
    assert any("preprocess" in t and "prefect" in t for t in exploded)
    assert page.locator("g.node.root").count() == 1 and "collapse=explode" in page.url
    shot(page, "06-lineage-exploded")

    after(page, lambda: page.click("g.node[data-kind='artifact']:has-text('bike-model:v0')"))
    assert page.locator("h1").inner_text().startswith("bike-model")
    assert page.locator(".runcard", has_text="Open in Airflow").count() >= 1
    href = page.locator(".runcard a.extlink").first.get_attribute("href")
    assert href and href.startswith("http://localhost:8080/dags/bike_train/runs/")
    shot(page, "07-model-version")


def node_ids(page: Any) -> set[str]:
    return set(page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.id)"))


def test_lineage_controls_depth_direction_and_open_a_run(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(site.url + "#/versions/default/bikes/bike-dataset/v0?tab=lineage&collapse=explode")
    page.wait_for_selector(GRAPH_READY)
    both = node_ids(page)
    after(page, lambda: page.select_option("#lineage-direction", "downstream"), graph=True)
    down = node_ids(page)
    assert down < both and "direction=downstream" in page.url
    after(page, lambda: page.select_option("#lineage-depth", "1"), graph=True)
    assert node_ids(page) <= down
    page.click("button[aria-label='Zoom in']")
    page.click("button[aria-label='Fit to view']")
    train_run = page.locator("g.node[data-kind='run']", has_text="airflow").filter(
        has=page.locator("text", has_text="train")
    )
    after(page, lambda: train_run.first.click())
    assert page.locator("h1").inner_text() == "train"
    assert page.locator("a.btn:has-text('Open in Airflow')").get_attribute("href").startswith("http://localhost:8080/")
    shot(page, "08-run")


def test_files_download_and_diff(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(site.url + "#/versions/default/bikes/bike-dataset/v1?tab=files")
    page.wait_for_selector(READY)
    after(page, lambda: page.click("#files a:has-text('splits/')"))
    assert page.locator(".pathbar strong").inner_text() == "splits"
    with page.expect_download() as info:
        page.click("#files tr:has-text('test.csv') a:text-is('Download')")
    download = info.value
    assert download.suggested_filename == "test.csv"
    assert Path(download.path()).read_text().endswith("48,9,88\n")
    shot(page, "09-files")

    visit(page, site.url + "#/collections/default/bikes/bike-dataset")
    after(page, lambda: page.click("button:text-is('Compare')"))
    stats = {s: page.locator(f".stat[data-stat='{s}'] .n").inner_text() for s in ("added", "modified", "renamed")}
    assert stats == {"added": "1", "modified": "1", "renamed": "1"}
    assert page.get_by_text("splits/train_full.csv").count() == 1
    shot(page, "10-diff")


def test_runs_of_an_airflow_dag_run_like_the_plugin_tab(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(site.url + "#/runs?orchestrator=airflow")
    page.wait_for_selector(READY)
    assert page.locator("#runs tbody tr").count() == 2
    href = page.locator("#runs tbody tr").first.locator("td").nth(5).locator("a").get_attribute("href")
    assert href is not None
    dag_id, _, run_id = parse_qs(href.split("?", 1)[1])["group"][0].partition("/")
    assert dag_id == "bike_train"
    page.goto(site.url + "runs?" + urlencode({"dag_id": dag_id, "run_id": run_id}))  # what Airflow's DAG-run tab opens
    page.wait_for_selector(GRAPH_READY)
    assert page.locator("#runs tbody tr").count() == 2 and "#/runs?group=" in page.url
    shot(page, "11-dag-run-tab")


def test_pipeline_payloads_render_as_text(site: Site, new_page: Callable[..., Any]) -> None:
    page = new_page(bypass_csp=True)  # escaping alone must make payloads inert
    base = "#/versions/default/bikes/raw-rentals/v0"
    for route, shown in (
        ("#/runs", True),
        (base, True),
        (base + "?tab=files", True),
        (base + "?tab=lineage&collapse=explode", False),
    ):
        visit(page, site.url + route, graph="lineage" in route)
        assert not shown or XSS in page.locator("#app").inner_text(), route
        assert xss_fired(page) is None and page.locator("img[src='x']").count() == 0, route


# -- hostile registry, token, mount prefix ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Seeded, str]]:
    """The viewer over a registry whose every free-text field carries a script-injection payload."""
    root = tmp_path_factory.mktemp("hostile")
    with core_at(root) as settings:
        seeded = seed(root, settings)
        server = Server(create_app(settings))
        yield seeded, server.url
        server.stop()


HOSTILE_ROUTES = [
    "#/",
    "#/projects/default/bikes",
    "#/collections/default/bikes/bike-dataset",
    "#/versions/default/bikes/bike-dataset/v0",
    "#/versions/default/bikes/bike-dataset/v0?tab=files",
    "#/versions/default/bikes/bike-dataset/v0?tab=lineage&collapse=explode",
    "#/versions/default/bikes/bike-dataset/v0?tab=lineage&collapse=group",
    "#/versions/default/bikes/bike-dataset/v0?tab=lineage",
    "#/runs",
    "#/runs?group=mydag%2Frun-1",
    "#/diff/default/bikes/bike-dataset?from=v0&to=v1",
    "#/versions/default/bikes/eval-report/v0",
]


def test_injection_payloads_are_inert_in_the_browser(hostile: tuple[Seeded, str], new_page: Callable[..., Any]) -> None:
    seeded, url = hostile
    for bypass in (True, False):  # with the page's CSP switched off, escaping alone must hold
        page = new_page(bypass_csp=bypass)
        for route in HOSTILE_ROUTES:
            visit(page, url + route)
            if "tab=lineage" in route or "group=" in route:
                page.wait_for_selector("#lineage[data-ready]")
            assert xss_fired(page) is None, route
            assert page.locator("img[src='x'], [onerror], [onload]").count() == 0, route
            assert page.locator("script").count() == 2, route  # dagre + app only
    visit(page, url + "#/versions/default/bikes/bike-dataset/v0")
    assert XSS in page.locator("#metadata").inner_text()
    assert XSS in page.locator("#description").inner_text()
    assert page.locator(".runcard .runname").first.inner_text() == XSS
    shot(page, "12-payloads-as-text")
    visit(page, url + f"#/runs/{seeded.evil_run}")
    assert page.locator("a[href^='javascript']").count() == 0
    assert page.locator("a.btn:has-text('DAG run')").get_attribute("href") == "https://airflow.example/dags/mydag"
    page.goto(url + "versions/default/bikes/bike-dataset/v0")  # the server-rendered deep link, booted
    page.wait_for_selector(READY)
    assert xss_fired(page) is None and page.url.endswith("/#/versions/default/bikes/bike-dataset/v0")


def test_token_once_in_the_url_then_a_cookie(hostile: tuple[Seeded, str], new_page: Callable[..., Any]) -> None:
    seeded, _ = hostile
    server = Server(create_app(seeded.settings, token="t0ken-for-tests"))
    try:
        page = new_page()
        denied = page.goto(server.url)
        assert denied is not None and denied.status == 401 and "artifacts ui" in page.content()
        page.goto(server.url + "versions/default/bikes/bike-dataset/v1?token=t0ken-for-tests")
        page.wait_for_selector("body[data-view='version'][data-ready='1']")
        assert "token" not in page.url
        after(page, lambda: page.click(".tabs a[data-tab='lineage']"), graph=True)
        assert page.locator("g.node").count() > 0
    finally:
        server.stop()


def test_works_mounted_under_a_prefix(hostile: tuple[Seeded, str], new_page: Callable[..., Any]) -> None:
    from fastapi import FastAPI

    seeded, _ = hostile
    host = FastAPI()
    host.mount("/artifacts", create_app(seeded.settings))
    server = Server(host)
    try:
        page = new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(server.url + "artifacts/versions/default/bikes/bike-dataset/v1")
        page.wait_for_selector("body[data-view='version'][data-ready='1']")
        assert page.url == server.url + "artifacts/#/versions/default/bikes/bike-dataset/v1"
        after(page, lambda: page.click(".tabs a[data-tab='lineage']"), graph=True)
        after(page, lambda: page.click(".crumbs a:text-is('default/bikes')"))
        assert requests and all(u.startswith(server.url + "artifacts/") for u in requests), requests
        shot(page, "13-mounted-under-artifacts")
    finally:
        server.stop()
