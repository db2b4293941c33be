"""Retention: which versions a collection's policy and the versions' TTLs allow deleting.

A version is never a candidate while any alias points at it (``latest`` included, so the
newest version always stays) — protected aliases are aliases, so protected versions stay too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .registry import VersionRecord


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the newest ``keep_last`` versions and/or the versions younger than ``keep_within``.

    With both set, a version stays when either rule keeps it. Versions past their own TTL are
    candidates whatever the policy says (unless aliased).
    """

    keep_last: int | None = None
    keep_within: timedelta | None = None


@dataclass(frozen=True)
class Expiry:
    """A version retention would delete, and why."""

    version: VersionRecord
    reason: str


def expired_versions(versions: list[VersionRecord], policy: RetentionPolicy | None, now: datetime) -> list[Expiry]:
    """The committed, unaliased versions that ``policy`` and their TTLs allow deleting, oldest first."""
    committed = sorted((v for v in versions if v.state == "committed"), key=lambda v: v.index)
    newest_first = list(reversed(committed))
    out = []
    for rank, v in enumerate(newest_first):
        if v.aliases:
            continue
        if v.ttl_seconds is not None and v.created_at + timedelta(seconds=v.ttl_seconds) <= now:
            out.append(Expiry(v, f"TTL of {v.ttl_seconds}s passed"))
            continue
        if policy is None or (policy.keep_last is None and policy.keep_within is None):
            continue
        kept_by_count = policy.keep_last is not None and rank < policy.keep_last
        kept_by_age = policy.keep_within is not None and now - v.created_at < policy.keep_within
        if not (kept_by_count or kept_by_age):
            rules = []
            if policy.keep_last is not None:
                rules.append(f"not among the newest {policy.keep_last}")
            if policy.keep_within is not None:
                rules.append(f"older than {policy.keep_within}")
            out.append(Expiry(v, " and ".join(rules)))
    return sorted(out, key=lambda e: e.version.index)
