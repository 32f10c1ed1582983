"""The golden replays: sample journals and their default runs hash exactly as recorded.

A failure here means an importer or processor now produces different bytes. If that change is
intended, run ``scripts/golden.py --update`` and say why in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.app.golden import GOLDEN_BUNDLES, GOLDEN_FILE, differences, golden_models, measure
from engine.app.pipelines import SHIPPED
from engine.log import EmbeddedLog
from engine.runtime import verify


def test_golden_replays_match_the_recorded_hashes(samples: Path) -> None:
    expected = json.loads(GOLDEN_FILE.read_text())
    log = EmbeddedLog(samples)
    actual = measure(log)
    assert set(expected) == set(actual)
    assert differences(expected, actual) == [], "\n".join(differences(expected, actual))
    for run in sorted((samples / "runs").iterdir()):
        assert verify(log, run.name, pipelines=SHIPPED, models=golden_models()).identical, run.name


def test_a_golden_replay_trades_with_a_committed_bundle() -> None:
    """At least one golden session runs the CatBoost path and places orders that fill."""
    expected = json.loads(GOLDEN_FILE.read_text())
    for session, bundle in GOLDEN_BUNDLES.items():
        assert expected[session]["bundle"] == bundle
        assert (golden_models().directory / bundle).is_file()
        outputs = expected[session]["outputs"]
        assert outputs["orders"]["count"] > 0
        assert outputs["executions"]["count"] > outputs["orders"]["count"]  # acks and fills
    assert GOLDEN_BUNDLES


def test_differences_name_the_changed_value() -> None:
    a = {"s": {"outputs": {"book": {"count": 3, "chain": "ab"}}}}
    b = {"s": {"outputs": {"book": {"count": 3, "chain": "cd"}}}}
    assert differences(a, b) == ["s.outputs.book.chain: expected 'ab', got 'cd'"]
