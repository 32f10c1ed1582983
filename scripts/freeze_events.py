"""Append a frozen sample of every catalogue type that has none to tests/frozen/events.txt.

    .venv/bin/python scripts/freeze_events.py

Run it once when you add an event type or a new version of one (docs/architecture.md, "Adding
a version of an event"). It never rewrites an existing line: those are bytes an older Tapedeck
wrote, and tests/unit/test_event_versions.py proves they still decode.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec.inspect as mi
import numpy as np

from engine.events import CATALOGUE, Codec, EventType, encode

FROZEN = Path(__file__).resolve().parent.parent / "tests" / "frozen" / "events.txt"


def sample(event_type: EventType) -> bytes:
    """Canonical bytes of one event of ``event_type``, every field set to a distinct value."""
    if event_type.codec is Codec.MSGPACK:
        assert event_type.struct is not None
        info = mi.type_info(event_type.struct)
        assert isinstance(info, mi.StructType)
        return encode(event_type.struct(*[_value(f.type, k) for k, f in enumerate(info.fields)]))
    assert event_type.dtype is not None
    record = np.zeros(1, event_type.dtype)
    for k, name in enumerate(event_type.dtype.names or ()):
        field = event_type.dtype.fields[name][0]  # type: ignore[index]
        base = field.subdtype[0] if field.subdtype else field
        record[name] = (
            event_type.type_id
            if name == "type_id"
            else ((k + 1) * 3 if base.kind in "iu" else (k + 1) * 0.25)
        )
    return record.tobytes()


def _value(t: Any, k: int) -> Any:
    if isinstance(t, mi.Metadata):
        return _value(t.type, k)
    if isinstance(t, mi.IntType):
        return 1000 + k
    if isinstance(t, mi.FloatType):
        return 0.5 + k
    if isinstance(t, mi.StrType):
        return f"s{k}"
    if isinstance(t, mi.BoolType):
        return k % 2 == 0
    if isinstance(t, mi.StructType):
        return t.cls(*[_value(f.type, k + j) for j, f in enumerate(t.fields)])
    if isinstance(t, mi.ListType | mi.VarTupleType):
        return [_value(t.item_type, k)]
    if isinstance(t, mi.DictType):
        return {}
    raise TypeError(f"no sample value for a field of type {t}; extend scripts/freeze_events.py")


def main() -> int:
    have = {line.split()[0] for line in FROZEN.read_text().splitlines() if line[:1] not in "#"}
    missing = [t for t in CATALOGUE if t.qualified_name not in have]
    with FROZEN.open("a") as out:
        for event_type in missing:
            out.write(f"{event_type.qualified_name} {sample(event_type).hex()}\n")
    print(
        f"appended {len(missing)} frozen sample(s): {', '.join(t.qualified_name for t in missing)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
