"""Faults the simulator injects into its stream, from flags or from its control endpoint.

``KIND[:ARG]@AT`` (flag ``--fault``) acts just before stream message ``AT`` (0-based, counting
stream messages only, not REST snapshots) is sent; from the control endpoint a fault acts
before the next message. Kinds:

``drop:N``
    the next ``N`` messages are not sent (the exchange's book still moves): a sequence gap.
``close[:N]``
    every client connection is closed (code 1011); the stream waits for a client to connect
    again and then carries on, ``N`` messages back (default 0: where it stopped), as a venue
    whose reconnect replays a little of what was already sent.
``stall:SECONDS``
    nothing is sent for that long; connections stay open.
``malformed``
    one frame that is not valid JSON (the next message cut in half) goes out before it.
``pace:X``
    not a fault, but scheduled the same way: from here on replay at ``X`` times the recorded
    pace (``pace:0``: as fast as the clients read), e.g. a burst at a known message.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("drop", "close", "stall", "malformed", "pace")


class FaultError(ValueError):
    """A fault that cannot be understood; the message says what is allowed."""


@dataclass(frozen=True)
class Fault:
    """One fault: what, its argument, and the stream message it precedes (None: the next)."""

    kind: str
    arg: float = 0.0
    at: int | None = None

    def __str__(self) -> str:
        arg = f":{self.arg:g}" if self.arg else ""
        return f"{self.kind}{arg}" + (f"@{self.at}" if self.at is not None else "")


def parse(text: str) -> Fault:
    """``KIND[:ARG][@AT]`` as a :class:`Fault` (see the module docstring)."""
    spec, _, at_text = text.partition("@")
    kind, _, arg_text = spec.partition(":")
    if kind not in KINDS:
        raise FaultError(f"unknown fault {kind!r} in {text!r}: use one of {', '.join(KINDS)}")
    try:
        arg = float(arg_text) if arg_text else 0.0
        at = int(at_text) if at_text else None
    except ValueError:
        raise FaultError(
            f"bad fault {text!r}: expected KIND[:NUMBER][@MESSAGE], e.g. drop:5@1000"
        ) from None
    if arg < 0 or (at is not None and at < 0):
        raise FaultError(f"bad fault {text!r}: numbers must not be negative")
    if kind in ("drop", "stall") and arg <= 0:
        raise FaultError(f"fault {kind!r} needs a positive argument, e.g. {kind}:5")
    return Fault(kind, arg, at)


def from_json(body: object) -> Fault:
    """A fault posted to ``/control``: ``{"fault": KIND, "count"|"seconds"|"replay": N}``."""
    if not isinstance(body, dict) or not isinstance(body.get("fault"), str):
        raise FaultError('expected a JSON object like {"fault": "drop", "count": 5}')
    arg = body.get("count", body.get("seconds", body.get("replay", 0)))
    if not isinstance(arg, int | float):
        raise FaultError(f"the fault's number must be a number, got {arg!r}")
    return parse(f"{body['fault']}:{arg}" if arg else str(body["fault"]))
