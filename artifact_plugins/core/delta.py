"""Storing a new version's manifest as a delta of the version it was made from.

A draft that re-adds a directory whose last scan was committed as version V knows, from the
checksum cache (:class:`~.hashing.TreeMark`), which of its entries are V's and which changed (if
V's manifest was exactly that directory); a draft made by ``V.new_draft()`` compares its entries
with V's. Either way the new manifest is stored as the changed entries and the removed paths
against V's whole base (V itself, or the whole manifest V's own delta is of): the manifest
written, like the rest of such a log, is proportional to what changed.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, NamedTuple

from .errors import ArtifactPluginsError

if TYPE_CHECKING:
    from .client import Client
    from .manifest import Manifest

#: A delta is stored only while it changes at most this share of the entries (and never more
#: than :data:`MIN_DELTA_LIMIT` entries for small manifests): a version read costs its base
#: plus the delta, so at most 1/8 more than a whole manifest.
DELTA_SHARE = 8
MIN_DELTA_LIMIT = 64


class DeltaSource(NamedTuple):
    """What a draft knows of the committed version it was made from (``new_draft``), or that its
    only directory was last logged as."""

    #: That version's digest.
    version: str
    #: How its manifest is stored: ``""`` whole, else the base of its delta; ``None``: not known.
    stored_base: str | None
    #: The draft's entry paths that are not as in that version.
    changed: list[str]
    #: That version's entry paths the draft no longer has.
    removed: list[str]
    #: How many entries the draft had when this was taken (a directory's: it must have no others).
    entries: int


class DeltaPlan(NamedTuple):
    """How to store a manifest as a delta: of which whole manifest, which of the new manifest's
    paths are added or changed against it, and which of its paths are removed."""

    base: str
    changed: Collection[str]
    removed: Collection[str]


def plan_delta(client: Client, manifest: Manifest, source: DeltaSource) -> DeltaPlan | None:
    """The delta to store ``manifest`` as, starting from ``source`` (whose version the caller
    has found still committed, in its turn at the store); ``None`` to store it whole: the delta
    would be too large, or the source version's stored manifest cannot be read."""
    changed, removed = set(source.changed), set(source.removed)
    base = source.version
    if source.stored_base != "":
        try:
            prior = client.stored_delta_outline(source.version, source.stored_base)
        except ArtifactPluginsError:
            return None
        if prior is not None:  # the version is itself a delta: the new one is of the same base
            base = prior.base
            changed.update(prior.paths)
            removed.update(prior.removed)
            removed.update(prior.paths)  # those not in the new manifest stay removed
    entries = manifest.entries
    changed = {p for p in changed if p in entries}
    removed = {p for p in removed if p not in entries}
    if base == manifest.digest() or len(changed) + len(removed) > max(MIN_DELTA_LIMIT, len(entries) // DELTA_SHARE):
        return None
    return DeltaPlan(base, changed, removed)
