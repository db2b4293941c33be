"""The exception hierarchy. Every error the library raises on purpose derives from
:class:`ArtifactPluginsError`; invalid input additionally derives from :class:`ValueError` and
lookups that find nothing from :class:`LookupError`, so callers can catch either family."""

from __future__ import annotations


class ArtifactPluginsError(Exception):
    """Base class of every error raised by artifact_plugins."""

    exit_code = 1


class InvalidInputError(ArtifactPluginsError, ValueError):
    """A value broke a rule; the message names the value and the rule."""

    exit_code = 2


class InvalidNameError(InvalidInputError):
    """An artifact name, type, project or entity does not follow the naming rule."""


class InvalidAliasError(InvalidInputError):
    """An alias does not follow the alias rule (or looks like a version such as ``v3``)."""


class InvalidRefError(InvalidInputError):
    """A reference string such as ``project/name:alias`` does not parse."""


class InvalidPathError(InvalidInputError):
    """An entry path is absolute, escapes its root, or contains forbidden characters."""


class InvalidMetadataError(InvalidInputError):
    """Metadata is not a JSON object of finite, serialisable values."""


class InvalidConfigError(InvalidInputError):
    """A configuration value (store URI, registry URL, size) is not usable."""


class NotFoundError(ArtifactPluginsError, LookupError):
    """Something that was asked for does not exist."""

    exit_code = 3


class ArtifactNotFoundError(NotFoundError):
    """No committed version matches a reference."""


class EntryNotFoundError(NotFoundError):
    """A version has no entry at the requested path."""


class RunNotFoundError(NotFoundError):
    """No run with that id exists."""


class ConflictError(ArtifactPluginsError):
    """The operation raced with, or contradicts, what is already stored."""

    exit_code = 4


class AliasConflictError(ConflictError):
    """A compare-and-swap alias move found the alias somewhere other than expected."""

    def __init__(self, alias: str, current: str | None, expected: str | None, collection: str) -> None:
        self.alias, self.current, self.expected, self.collection = alias, current, expected, collection
        super().__init__(
            f"alias {alias!r} of {collection} points at {current or 'nothing'}, "
            f"expected {expected or 'nothing'}; re-read it and retry"
        )


class ProtectedAliasError(ConflictError):
    """A protected alias (such as ``production``) would move without ``expected=`` or ``force=True``."""


class TypeMismatchError(ConflictError):
    """A collection already exists with another artifact type."""


class AliasedVersionError(ConflictError):
    """A version still carries aliases and cannot be deleted without ``delete_aliases=True``."""


class DistributedConflictError(ConflictError):
    """Two parts of a distributed artifact put different content at the same path."""


class ArtifactFinalizedError(ConflictError):
    """A draft that was already logged cannot be changed any more."""


class StoreTurnLostError(ConflictError):
    """A garbage collection went ahead of a commit between its asking the store which blobs it
    has and its recording transaction (the store's generation moved, or the commit was held up
    past its turn's lease); nothing was recorded (the commit is run again from the start)."""


class FileChangedError(ArtifactPluginsError):
    """A file changed while it was being hashed or stored."""

    exit_code = 5


class IntegrityError(ArtifactPluginsError):
    """Bytes read back do not match their recorded digest."""

    exit_code = 6


class StoreError(ArtifactPluginsError):
    """The blob store failed (I/O, permissions, missing blob)."""

    exit_code = 7


class RegistryError(ArtifactPluginsError):
    """The metadata registry failed or is at an unexpected schema revision."""

    exit_code = 8
