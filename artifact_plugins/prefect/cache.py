"""A Prefect cache policy keyed on the content digests of a task's input artifacts.

``INPUTS`` would hash an :class:`ArtifactRef` whole (including where it was downloaded) and a
ref string such as ``"dataset:latest"`` by its text, so a task would re-run when nothing changed
or be skipped when ``latest`` moved. :class:`ArtifactDigests` replaces every artifact input by
its content digest instead: the task re-runs exactly when the bytes of an input artifact
change::

    @task(cache_policy=ArtifactDigests() + TASK_SOURCE, persist_result=True)
    def train(data: ArtifactRef, lr: float) -> float: ...

    @task(cache_policy=ArtifactDigests(refs=("dataset",)), persist_result=True)
    def report(dataset: str) -> str: ...      # "dataset:latest" is resolved to its digest
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects

from .refs import ArtifactRef


@dataclass
class ArtifactDigests(CachePolicy):
    """Cache key from the digests of the artifact inputs (plus the other inputs, by default).

    * Every :class:`ArtifactRef` among the inputs, also inside lists, tuples, sets and dicts,
      counts by its digest alone.
    * Parameters named in ``refs`` hold ref strings; they are resolved against the store (from
      ``store_block`` or the environment) and count by the digest they resolve to. A ref that
      does not resolve disables caching for that call, so the task runs and reports the error.
    * Other inputs are hashed as :data:`prefect.cache_policies.INPUTS` does, unless
      ``include_other_inputs`` is false.

    Returns no key (no caching) when the task has no inputs to key on.
    """

    refs: tuple[str, ...] = ()
    include_other_inputs: bool = True
    store_block: str | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """The cache key for one call, or ``None`` to skip caching."""
        keyed: dict[str, Any] = {}
        found = False
        for name, value in sorted((inputs or {}).items()):
            if name in self.refs and isinstance(value, str):
                digest = self._resolve(value)
                if digest is None:
                    return None
                keyed[name], found = {"artifact": digest}, True
                continue
            transformed, has_artifact = _digests(value)
            if has_artifact:
                keyed[name], found = transformed, True
            elif self.include_other_inputs:
                keyed[name] = value
        if not keyed or (not found and not self.include_other_inputs):
            return None
        return hash_objects(keyed, raise_on_failure=True)

    def _resolve(self, ref: str) -> str | None:
        import artifact_plugins as ap

        from .tasks import resolve_settings

        try:
            return str(ap.Api(settings=resolve_settings(None, self.store_block)).artifact(ref).digest)
        except ap.errors.ArtifactPluginsError:
            return None


def _digests(value: Any) -> tuple[Any, bool]:
    """``value`` with every :class:`ArtifactRef` replaced by its digest, and whether any was found."""
    if isinstance(value, ArtifactRef):
        return {"artifact": value.digest}, True
    if isinstance(value, list | tuple):
        pairs = [_digests(v) for v in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if isinstance(value, set | frozenset):
        pairs = [_digests(v) for v in value]
        return sorted(repr(p[0]) for p in pairs), any(p[1] for p in pairs)
    if isinstance(value, Mapping):
        items = {k: _digests(v) for k, v in value.items()}
        return {k: p[0] for k, p in items.items()}, any(p[1] for p in items.values())
    return value, False


__all__ = ["ArtifactDigests"]
