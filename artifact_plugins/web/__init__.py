"""The lineage viewer: a read-only web app over the artifact registry.

``create_app()`` returns a FastAPI app. ``artifacts ui`` serves it on 127.0.0.1; the Airflow plugin
mounts it under ``/artifacts`` behind Airflow's own auth. It answers GET/HEAD only.

Page (a single-page app; all URLs relative, so any mount prefix works)::

    ./                                   projects -> types -> collections -> versions, runs, lineage, diff
    ./versions/<entity>/<project>/<name>/<version>   a version page (deep link)
    ./runs?dag_id=&run_id=[&task_id=&map_index=]      the runs of an Airflow DAG run / task instance
    ./runs?group=<flow run id>                        the runs of a Prefect flow run

JSON (schemas at ``api/openapi.json``; errors are ``{"detail": "..."}``)::

    api/projects                                          projects, with counts per artifact type
    api/projects/<entity>/<project>/collections[?type=]   collections of a project
    api/collections/<entity>/<project>/<name>[?limit=&offset=]   aliases + versions, newest first
    api/versions/<entity>/<project>/<name>/<version>      detail: aliases, alias history, metadata,
                                                          description, producing/consuming runs
    api/versions/.../<version>/files[?path=]              one directory of the manifest
    api/versions/.../<version>/download/<path>            one file's bytes (attachment)
    api/runs[?group=&job_type=&orchestrator=&project=&dag_id=&run_id=&task_id=&map_index=]
    api/runs/<run id>                                     a run, what it logged/used, its group
    api/lineage?ref=<e/p/name:vN>|run=<id>[&direction=both&depth=&collapse=type|group|explode]
    api/diff/<entity>/<project>/<name>?from=v1&to=v2      added / removed / modified / renamed /
                                                          references changed, metadata changes
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
