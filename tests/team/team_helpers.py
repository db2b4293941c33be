"""Real worker processes for the team-mode tests (importable helpers, not fixtures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

WORKER = Path(__file__).with_name("_worker.py")


class Workers:
    """Real worker processes racing on one action; ``start()`` releases them all at once."""

    def __init__(self, env: dict[str, str], registry: str) -> None:
        self.work = Path(env["TEAM_WORK"])
        self.work.mkdir(parents=True, exist_ok=True)
        self.signal = self.work / f"start-{uuid.uuid4().hex}"
        self.env = {**os.environ, **env, "ARTIFACT_PLUGINS_REGISTRY": registry}
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, action: str, indices: range | list[int], **extra_env: str) -> list[subprocess.Popen[str]]:
        """Start one worker per index (they wait for the start signal)."""
        new = [
            subprocess.Popen(
                [sys.executable, str(WORKER), action, str(i), str(self.signal)],
                env={**self.env, **extra_env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in indices
        ]
        self.procs += new
        return new

    def start(self) -> None:
        """Wait until every worker is ready (imported, set up), then release them together."""
        deadline = time.monotonic() + 120
        while len(list(self.work.glob(f"{self.signal.name}.ready.*"))) < len(self.procs):
            for p in self.procs:
                if p.poll() not in (None, 0):
                    raise AssertionError(f"worker failed before start: {p.stderr.read() if p.stderr else ''}")
            assert time.monotonic() < deadline, "workers never became ready"
            time.sleep(0.02)
        self.signal.touch()

    @staticmethod
    def results(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[dict[str, object]]:
        """Wait for ``procs`` and parse their JSON result lines."""
        out = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"worker failed: {stderr[-3000:]}"
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        return out


def race(action: str, n: int, env: dict[str, str], registry: str, **extra_env: str) -> list[dict[str, object]]:
    """Run ``n`` workers of ``action`` against ``registry`` all at once; return their results."""
    workers = Workers(env, registry)
    procs = workers.spawn(action, range(n), **extra_env)
    workers.start()
    return workers.results(procs)
