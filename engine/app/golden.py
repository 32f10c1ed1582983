"""Golden replays: the expected hashes of the bundled sample sessions and their default runs.

``replays/golden.json`` records, for each sample session, the hash chain of its journal (so an
importer change that alters a single byte shows) and the manifest hashes of a ``default``
pipeline run over it. One session runs with a committed model bundle from ``models/``
(:data:`GOLDEN_BUNDLES`; ``models/README.md`` gives the command that trained it), so the
golden replays cover the CatBoost path and a run that places orders and gets fills. The test
suite recomputes both; ``scripts/golden.py --update`` rewrites the file, which is a deliberate
act explained in its commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog
from engine.log.journal import journal_topic
from engine.models import ModelStore
from engine.runtime.hashing import topic_chain
from engine.runtime.runs import execute
from engine.runtime.topology import RunConfig

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_FILE = ROOT / "replays" / "golden.json"
MODELS_DIR = ROOT / "models"
"""The committed model store."""
GOLDEN_SESSIONS = (
    "demo-aapl",
    "demo-btcusdt-spot",
    "demo-btcusdt-usdm",
    "demo-wdo",
    "demo-btcusdt-spot-day",
)
GOLDEN_PIPELINE = "default"
GOLDEN_BUNDLES = {
    "demo-btcusdt-spot-day": "37d44b5480d759d2553641ec6fb506d10bf6726b8d485dd59889f2e94c3ff470"
}
"""Sessions whose golden run uses a committed bundle of ``models/``, by session."""


def golden_models() -> ModelStore:
    """The store the golden runs read their bundles from: ``models/`` of the checkout."""
    return ModelStore(MODELS_DIR)


def measure(log: EmbeddedLog, sessions: tuple[str, ...] = GOLDEN_SESSIONS) -> dict[str, Any]:
    """Journal chains and ``default`` run hashes of ``sessions`` (ingested in ``log``)."""
    out: dict[str, Any] = {}
    for session in sessions:
        count, chain = topic_chain(log.reader(journal_topic(session)))
        bundle = GOLDEN_BUNDLES.get(session, "")
        config = RunConfig(
            pipeline=GOLDEN_PIPELINE, stages={"models": {"bundle": bundle}} if bundle else {}
        )
        manifest = execute(log, session, config, pipelines=SHIPPED, models=golden_models()).manifest
        out[session] = {
            "journal": {"count": count, "chain": chain},
            "pipeline": GOLDEN_PIPELINE,
            "bundle": bundle,
            "config_hash": manifest.config_hash,
            "outputs": {o.port: {"count": o.count, "chain": o.chain} for o in manifest.outputs},
            "outputs_hash": manifest.outputs_hash,
        }
    return out


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Readable lines for every value that differs between two ``measure`` results."""
    lines: list[str] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(f"{path}.{key}" if path else key, a.get(key), b.get(key))
        elif a != b:
            lines.append(f"{path}: expected {a!r}, got {b!r}")

    walk("", expected, actual)
    return lines
