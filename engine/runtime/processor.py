"""What a processor is to the runtime: ports, slices of the journal, and the contract.

A processor is a deterministic state machine. The runner hands it :class:`Slice` after
:class:`Slice` of one session journal, in offset order, together with what the stages before it
emitted for that same slice; it returns what it emits on each of its output ports. Nothing else
reaches it: time comes from events, randomness from :attr:`StageContext.rng`.

The contract every processor keeps (the runtime's tests check it for each one):

* Outputs depend only on the journal events and the config, never on how the journal was cut
  into slices: one event at a time (live) and a million at a time (replay) give the same bytes.
* ``snapshot()`` then ``restore()`` into a fresh instance continues exactly as if uninterrupted.
* Every output event carries the journal offset that caused it, and a port's causes never
  decrease (so the causal chain can be searched, and a topic can be cut back to a snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, TypeVar

import msgspec
import numpy as np

from engine.events.control import InstrumentSpec
from engine.events.types import Codec, EventType
from engine.models.bundle import ModelSource

Output = np.ndarray[Any, Any] | list[msgspec.Struct]
"""What a port emits for one slice: fixed-width records, or msgpack events in order."""


@dataclass(frozen=True)
class Port:
    """One output stream of a stage; it becomes the topic ``run.<run id>.<name>``.

    ``cause`` names the field of each event that holds the causing journal offset.
    """

    name: str
    event_type: EventType
    cause: str = "cause"

    @property
    def fixed(self) -> bool:
        """Whether the port carries fixed-width records (else msgpack structs)."""
        return self.event_type.codec is Codec.FIXED

    def causes(self, output: Output) -> np.ndarray[Any, Any]:
        """The causing journal offsets of ``output``'s events, as int64."""
        if isinstance(output, np.ndarray):
            return output[self.cause].astype(np.int64)
        return np.fromiter((getattr(e, self.cause) for e in output), np.int64, len(output))

    def empty(self) -> Output:
        """An output with no events."""
        if self.fixed:
            assert self.event_type.dtype is not None
            return np.zeros(0, self.event_type.dtype)
        return []


@dataclass(frozen=True)
class Slice:
    """Consecutive journal events ``[start, stop)`` and what earlier stages emitted for them.

    A slice is all market records (``market``, a ``MARKET_RECORD`` array) or all low-rate
    events (``control``), never a mix; ``inputs`` maps each port the stage reads to that port's
    output for this slice, with every event caused by an offset inside ``[start, stop)``.
    """

    start: int
    stop: int
    market: np.ndarray[Any, Any] | None = None
    control: tuple[msgspec.Struct, ...] = ()
    inputs: dict[str, Output] = field(default_factory=dict)
    """Output of each port the stage reads, for this slice, by port name."""
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Read-only views of the journal events derived once and shared by every stage of the
    slice (e.g. ``streams.columns.journal_columns``), so no two stages build them twice."""

    def __len__(self) -> int:
        return self.stop - self.start


class NoModelStoreError(LookupError):
    """A stage asked for a model artifact in a run that was given no model store."""


@dataclass(frozen=True)
class StageContext:
    """What a stage is built from: the session's instrument, its config, its seed, and where
    its model artifacts come from."""

    session: str
    instrument: InstrumentSpec
    config: dict[str, Any]
    seed: int
    """This stage's seed, derived from the run's seed and the stage id."""
    models: ModelSource | None = None
    """The run's model store (wired by ``engine.runtime.runs`` / the CLI, never opened here)."""

    def model(self, digest: str) -> bytes:
        """The bytes of model artifact ``digest``, verified against the hash.

        A stage reads models only through this, so the stage itself does no I/O and a replay
        with the same hashes loads exactly the same bytes.
        """
        if self.models is None:
            raise NoModelStoreError(
                f"stage needs model {digest[:16]}, but this run was given no model store"
            )
        return self.models.get(digest)

    @cached_property
    def rng(self) -> np.random.Generator:
        """The stage's only source of randomness, one generator seeded with :attr:`seed`.

        Its state is part of the stage's state: a stage that draws from it must include
        ``rng.bit_generator.state`` in its snapshot and set it back on restore.
        """
        return np.random.default_rng(self.seed)


class Processor(Protocol):
    """The interface the runner drives; see the module docstring for the contract."""

    def process(self, piece: Slice) -> tuple[Output, ...]:
        """Apply one slice; return one output per port, in port order."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as bytes that :meth:`restore` accepts."""
        ...

    def restore(self, state: bytes) -> None:
        """Replace the state with one :meth:`snapshot` produced."""
        ...

    def inspect(self) -> dict[str, Any]:
        """The state in readable form, for ``tape replay --until``."""
        ...


StateT = TypeVar("StateT", bound=msgspec.Struct)


def load_state(
    stage: str, raw: bytes, kind: type[StateT], version: int, config: object = None
) -> StateT:
    """Decode a stage's snapshot into ``kind``, refusing one this build cannot continue from.

    ``kind`` has a ``version`` field, compared with ``version``; when ``config`` is given it
    also has a ``config`` field, which must hold the same value (compared as msgpack, so a
    tuple and the list it was saved as agree): a state taken under another config would
    continue a different computation.
    """
    state: Any = msgspec.msgpack.decode(raw, type=kind)
    if state.version != version:
        raise ValueError(f"{stage} state version {state.version}; this build reads {version}")
    if config is not None and _packed(state.config) != _packed(config):
        raise ValueError(
            f"{stage} state was taken with another config: {_shown(state.config)}, not this "
            f"one: {_shown(config)}"
        )
    loaded: StateT = state
    return loaded


def _packed(value: object) -> bytes:
    return msgspec.msgpack.encode(value)


def _shown(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
