"""The deterministic runtime: pipelines of processors over a session journal, runs with
manifests, bit-for-bit replay, snapshots and resume, causal traces. See docs/replay.md."""

from engine.runtime.driver import ContractError, Driver, Topology
from engine.runtime.manifest import RunError, RunManifest, list_runs, output_topic, read_manifest
from engine.runtime.processor import Output, Port, Processor, Slice, StageContext
from engine.runtime.replay import Verification, offset_at_time, state_at, verify
from engine.runtime.runner import Runner
from engine.runtime.runs import RunOutcome, execute
from engine.runtime.topology import Catalog, ConfigError, Pipeline, RunConfig, Stage
from engine.runtime.trace import Link, trace

__all__ = [
    "Catalog",
    "ConfigError",
    "ContractError",
    "Driver",
    "Link",
    "Output",
    "Pipeline",
    "Port",
    "Processor",
    "RunConfig",
    "RunError",
    "RunManifest",
    "RunOutcome",
    "Runner",
    "Slice",
    "Stage",
    "StageContext",
    "Topology",
    "Verification",
    "execute",
    "list_runs",
    "offset_at_time",
    "output_topic",
    "read_manifest",
    "state_at",
    "trace",
    "verify",
]
