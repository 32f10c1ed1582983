"""docs/events.md is generated from the catalogue; it must never drift from the code."""

from pathlib import Path

from engine.events.catalogue import CATALOGUE
from engine.events.docs import render_markdown

DOC = Path(__file__).parents[2] / "docs" / "events.md"


def test_events_doc_is_current() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/events.md is stale: run `.venv/bin/python -m engine.events.docs > docs/events.md`"
    )


def test_every_event_type_and_field_is_documented() -> None:
    text = DOC.read_text()
    for event_type in CATALOGUE:
        assert f"`{event_type.name}` v{event_type.version}" in text
        assert event_type.doc, f"{event_type.name} has no docstring"
        for field in event_type.fields:
            assert field.description, f"{event_type.name}.{field.name} has no description"
