"""Errors of the log. Each message says what is wrong, where, and what to do about it."""

from __future__ import annotations

from pathlib import Path


class LogError(Exception):
    """Base class of every log error."""


class TopicNotFoundError(LogError):
    """The named topic does not exist in this data directory."""

    def __init__(self, topic: str, root: Path, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none"
        super().__init__(
            f"topic {topic!r} does not exist in {root} (topics there: {listing}). "
            "Check the name with `tape topics`, or pass --data to point at another directory."
        )


class TopicExistsError(LogError):
    """A topic was created twice with different settings."""


class PartitionLockedError(LogError):
    """Another writer holds the partition's lock; a partition has exactly one writer."""


class OffsetOutOfRangeError(LogError):
    """An offset before the log start or past its end was asked for."""


class CorruptionError(LogError):
    """Stored bytes fail their checksum or framing somewhere other than the torn tail."""

    def __init__(self, segment: Path, offset: int, position: int, what: str) -> None:
        self.segment = segment
        self.offset = offset
        self.position = position
        super().__init__(
            f"corrupt log segment {segment}: {what} (batch starting at offset {offset}, "
            f"byte {position} of the file). The log refuses to read past it. Restore the "
            "segment from a replica or backup; if the data is expendable, move the partition "
            "directory aside and re-ingest."
        )


class LogUnavailableError(LogError):
    """The log cannot be reached or written (broker down, directory unusable); nothing was lost
    silently: the message says what did not happen and how to retry."""


class DiskFullError(LogError):
    """The file system holding the data directory ran out of space while a topic grew.

    Says what ran out, where (the data directory and the topic), how much the write needed and
    how much was free, so the user can make room and run the command again.
    """

    def __init__(self, root: Path, topic: str, needed: int, free: int, cause: OSError) -> None:
        self.root, self.topic, self.needed, self.free = root, topic, needed, free
        super().__init__(
            f"no space left on the device holding the data directory {root}: writing to topic "
            f"{topic!r} needed {_size(needed)} more and {_size(free)} was free "
            f"({cause.strerror}). Free some space or use another --data directory."
        )


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")
