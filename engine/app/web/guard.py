"""Validation of everything a request names: run ids, sessions, ports, offsets, ranges.

Every name is checked against a pattern and then against what exists (a run's manifest, a
session's journal, a port of that run), so nothing from a URL ever becomes a path or a topic
name that was not already in the data directory. Errors are :class:`BadRequestError` (400) or
:class:`NotFoundError` (404) with a message for the user.
"""

from __future__ import annotations

import math
import re

from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.runtime.manifest import RUN_ID, RunManifest, read_manifest

SESSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
PORT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_OFFSET = 2**63 - 1
MIN_POINTS, MAX_POINTS = 100, 20000


class BadRequestError(ValueError):
    """A parameter that is malformed (HTTP 400)."""


class NotFoundError(LookupError):
    """A parameter that names nothing in the data directory (HTTP 404)."""


def run_manifest(log: EmbeddedLog, run_id: str) -> RunManifest:
    """The manifest of an existing run."""
    if not RUN_ID.match(run_id):
        raise BadRequestError(
            f"invalid run id {run_id[:120]!r}: 1-100 characters from A-Z a-z 0-9 _ -"
        )
    if not (log.root / "runs" / run_id / "manifest.json").is_file():
        raise NotFoundError(f"no run {run_id!r} in this data directory")
    return read_manifest(log.root, run_id)


def session(log: EmbeddedLog, name: str) -> str:
    """An existing session's name."""
    if not SESSION.match(name) or ".." in name:
        raise BadRequestError(f"invalid session name {name[:120]!r}")
    if not log.has_topic(journal_topic(name)):
        raise NotFoundError(f"no session {name!r} in this data directory")
    return name


def port(manifest: RunManifest, name: str) -> str:
    """A port the run wrote."""
    if not PORT.match(name):
        raise BadRequestError(f"invalid port name {name[:70]!r}")
    ports = [o.port for o in manifest.outputs]
    if name not in ports:
        raise NotFoundError(
            f"run {manifest.run_id} has no port {name!r} (ports: {', '.join(ports)})"
        )
    return name


def offset(text: str) -> int:
    """A log offset: a non-negative integer."""
    if not text.isdigit() or int(text) > MAX_OFFSET:
        raise BadRequestError(f"invalid offset {text[:30]!r}: a whole number from 0")
    return int(text)


def time_ms(text: str | None, name: str) -> int | None:
    """An optional time in ms since the epoch (a float from the browser) as ns."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequestError(
            f"invalid {name} {text[:30]!r}: milliseconds since the epoch"
        ) from None
    if not math.isfinite(value) or abs(value) > 1e16:
        raise BadRequestError(f"invalid {name} {text[:30]!r}: milliseconds since the epoch")
    return int(value * 1_000_000)


def points(text: str | None, default: int) -> int:
    """How many points a chart may draw."""
    if text is None or text == "":
        return default
    if not text.isdigit() or not MIN_POINTS <= int(text) <= MAX_POINTS:
        raise BadRequestError(f"invalid points {text[:30]!r}: {MIN_POINTS}..{MAX_POINTS}")
    return int(text)
