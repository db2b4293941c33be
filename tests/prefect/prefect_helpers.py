"""Reading back what Prefect recorded: artifacts by key and events (polled; pages of at most 50)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import Artifact
from prefect.client.schemas.sorting import ArtifactSort
from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventNameFilter, EventOccurredFilter
from prefect.events.schemas.events import ReceivedEvent
from prefect.events.worker import EventsWorker
from prefect.types._datetime import now

EVENT_LIMIT = 50  # the server refuses larger pages


def prefect_artifacts(key: str, flow_run_id: Any = None) -> list[Artifact]:
    """Every Prefect artifact version with ``key`` (newest first), optionally of one flow run."""
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])) if flow_run_id else None,
            sort=ArtifactSort.CREATED_DESC,
        )


def run_artifacts(flow_run_id: Any) -> list[Artifact]:
    """Every Prefect artifact attached to a flow run (keyed or not)."""
    with get_client(sync_client=True) as client:
        return client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def read_events(
    names: list[str],
    *,
    flow_run_id: Any = None,
    resource_id: str | None = None,
    expect: int = 1,
    timeout: float = 30.0,
    settle: float = 0.0,
) -> list[ReceivedEvent]:
    """Poll the server until at least ``expect`` matching events are stored (it persists in batches).

    ``flow_run_id`` keeps only events related to that flow run; ``resource_id`` only events about
    that resource. ``settle`` keeps polling that many seconds after ``expect`` is reached, for
    tests that assert there are no *more* events than expected.
    """
    EventsWorker.drain_all(timeout=30)
    deadline = time.monotonic() + timeout
    since = now("UTC") - timedelta(hours=1)
    settled_at: float | None = None
    while True:
        found = _read_all(names, flow_run_id, resource_id, since)
        if len(found) >= expect:
            settled_at = settled_at or time.monotonic()
            if time.monotonic() - settled_at >= settle:
                return found
        if time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _read_all(names: list[str], flow_run_id: Any, resource_id: str | None, since: Any) -> list[ReceivedEvent]:
    filt = EventFilter(
        occurred=EventOccurredFilter(since=since, until=now("UTC") + timedelta(minutes=5)),
        event=EventNameFilter(name=names),
        any_resource=([EventAnyResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"])] if flow_run_id else None),
    )
    events: list[ReceivedEvent] = []
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=filt, limit=EVENT_LIMIT)
        events.extend(page.events)
        while page.next_page is not None:
            page = client.read_events_page(str(page.next_page))
            events.extend(page.events)
    if resource_id is not None:
        events = [e for e in events if e.resource.id == resource_id]
    return events
