"""Pipelines: declared, ordered graphs of stages, and the configs that instantiate them.

A :class:`Stage` names a processor, the ports of earlier stages it reads and the ports it
writes; port names are unique in a pipeline and each becomes a topic of the run. A
:class:`Pipeline` is stages in their fixed execution order; a stage may only read ports of
stages before it, so the order is a topological order and the graph has no cycles by
construction. A :class:`Catalog` holds pipelines by name; the composition root
(:mod:`engine.app.pipelines`) builds the shipped one and ``tape run --pipeline NAME`` picks from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from engine.events.control import InstrumentSpec
from engine.runtime.processor import Output, Port, Processor, StageContext

JOURNAL = "journal"


class ConfigError(ValueError):
    """A run config that cannot be used; the message says which key and what is allowed."""


@dataclass(frozen=True)
class ReportContext:
    """What a stage's end-of-run report is computed from: a pure function of these."""

    config: dict[str, Any]
    """The stage's resolved settings."""
    read: Callable[[str], Output | None]
    """Every event of a written port of the run, by port name (None: the pipeline has none)."""
    instrument: InstrumentSpec
    seed: int
    """The stage's seed (:func:`stage_seed`), for anything the report draws at random."""
    journal: tuple[int, int]
    """The run's journal range ``[start, stop)``."""


@dataclass(frozen=True)
class Stage:
    """One processor in a pipeline: its id, what it reads and writes, how it is built."""

    id: str
    build: Callable[[StageContext], Processor]
    outputs: tuple[Port, ...]
    inputs: tuple[str, ...] = ()
    """Ports of earlier stages this stage reads (every stage reads the journal)."""
    defaults: Callable[[InstrumentSpec], dict[str, Any]] = lambda _: {}
    """The stage's config for an instrument before the run config overrides it."""
    doc: str = ""
    report: Callable[[ReportContext], dict[str, Any]] | None = None
    """Summarises a complete run from the stage's config and the run's outputs (read by port
    name); the result goes into the manifest's ``report``. A pure function of the log, so
    anyone can recompute it."""


@dataclass(frozen=True)
class Pipeline:
    """Stages in execution order; see the module docstring."""

    name: str
    stages: tuple[Stage, ...]
    doc: str = ""
    transient: tuple[str, ...] = ()
    """Ports handed to later stages but never written: no topic, no hash, not replay-checked.
    For intermediate streams a benchmark or a lean pipeline does not need to keep (everything
    in them is recomputed from the journal on replay)."""

    def __post_init__(self) -> None:
        ids: set[str] = set()
        ports: set[str] = set()
        for stage in self.stages:
            if stage.id in ids:
                raise ValueError(f"pipeline {self.name}: stage id {stage.id!r} repeated")
            for name in stage.inputs:
                if name not in ports:
                    raise ValueError(
                        f"pipeline {self.name}: stage {stage.id!r} reads {name!r}, which no "
                        f"earlier stage writes (earlier ports: {sorted(ports) or 'none'})"
                    )
            for port in stage.outputs:
                if port.name in ports or port.name == JOURNAL:
                    raise ValueError(f"pipeline {self.name}: port {port.name!r} repeated")
                ports.add(port.name)
            ids.add(stage.id)
        unknown = sorted(set(self.transient) - ports)
        if unknown:
            raise ValueError(f"pipeline {self.name}: transient ports {unknown} are not its ports")

    def ports(self) -> list[tuple[Stage, Port]]:
        """Every output port with its stage, in execution order."""
        return [(stage, port) for stage in self.stages for port in stage.outputs]

    def written(self) -> list[tuple[Stage, Port]]:
        """The ports that become topics of a run (all but the transient ones)."""
        return [(stage, port) for stage, port in self.ports() if port.name not in self.transient]

    def producer_of(self, port_name: str) -> tuple[Stage, Port]:
        """The stage and port called ``port_name``."""
        for stage, port in self.ports():
            if port.name == port_name:
                return stage, port
        known = ", ".join(p.name for _, p in self.ports())
        raise ConfigError(f"pipeline {self.name} has no port {port_name!r} (ports: {known})")


class Catalog:
    """The pipelines a process can run, by name: a value built once by the composition root
    (:mod:`engine.app.pipelines`) and handed to whatever starts, replays or traces runs.

    There is no global registry: two catalogs never see each other, and a name given twice is
    an error rather than a silent replacement.
    """

    def __init__(self, *pipelines: Pipeline) -> None:
        self._by_name: dict[str, Pipeline] = {}
        for chosen in pipelines:
            if chosen.name in self._by_name:
                raise ValueError(f"pipeline name {chosen.name!r} given twice")
            self._by_name[chosen.name] = chosen

    def extended(self, *pipelines: Pipeline) -> Catalog:
        """A new catalog with this one's pipelines and ``pipelines`` (names must be new)."""
        return Catalog(*self._by_name.values(), *pipelines)

    def get(self, name: str) -> Pipeline:
        """The pipeline called ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(
                f"no pipeline named {name!r}; available: {', '.join(sorted(self._by_name))}"
            ) from None

    def __iter__(self) -> Iterator[Pipeline]:
        """Every pipeline, by name."""
        return iter([self._by_name[n] for n in sorted(self._by_name)])

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


class RunConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a run is asked to do (``--config FILE``, TOML or JSON; every key optional).

    ``stages`` overrides per-stage settings: ``{"book": {"levels": 5}}``.
    """

    pipeline: str = "default"
    seed: int = 0
    """Seeds every stage's random generator (each stage gets its own stream)."""
    snapshot_every: int = 1_000_000
    """Snapshot all processor state every this many journal events (0: never)."""
    stages: dict[str, dict[str, Any]] = {}


def resolve(catalog: Catalog, config: RunConfig, instrument: InstrumentSpec) -> dict[str, Any]:
    """The full config a run records: pipeline, seed, snapshot cadence, every stage's settings.

    Stage settings are the stage's defaults for the instrument, overridden by ``config``.
    """
    chosen = catalog.get(config.pipeline)
    unknown = sorted(set(config.stages) - {s.id for s in chosen.stages})
    if unknown:
        raise ConfigError(
            f"config sets stages {unknown} that pipeline {chosen.name} does not have "
            f"(its stages: {', '.join(s.id for s in chosen.stages)})"
        )
    if config.snapshot_every < 0:
        raise ConfigError(f"snapshot_every must be >= 0, got {config.snapshot_every}")
    stages = {
        s.id: {**s.defaults(instrument), **config.stages.get(s.id, {})} for s in chosen.stages
    }
    return {
        "pipeline": chosen.name,
        "seed": config.seed,
        "snapshot_every": config.snapshot_every,
        "stages": stages,
    }


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys: the bytes a config hash is taken over."""
    return msgspec.json.encode(value, order="sorted")


def config_hash(resolved: dict[str, Any]) -> str:
    """sha256 of a resolved config's canonical JSON."""
    return hashlib.sha256(canonical_json(resolved)).hexdigest()


def stage_seed(seed: int, stage_id: str) -> int:
    """A stage's own seed, derived from the run seed so stages never share a stream."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stage_id}".encode()).digest()[:8], "little")


def typed_config(cls: type[Any], stage_id: str, config: dict[str, Any]) -> Any:
    """``config`` as the dataclass ``cls``, refusing keys it does not have."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(config) - set(names))
    if unknown:
        raise ConfigError(
            f"stage {stage_id!r}: unknown setting(s) {unknown}; it takes {', '.join(names)}"
        )
    try:
        return msgspec.convert(config, type=cls)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"stage {stage_id!r}: {exc}") from None
