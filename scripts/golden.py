"""Check or update the golden replay hashes in replays/golden.json.

    .venv/bin/python scripts/golden.py            # compare, exit 1 on any difference
    .venv/bin/python scripts/golden.py --update   # rewrite the file (explain why in the commit)

The samples are ingested into a temporary data directory exactly as ``tape demo`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.app.golden import GOLDEN_FILE, differences, measure
from engine.log import EmbeddedLog
from tests.conftest import ingest_samples


def main() -> int:
    """Compare (or with --update, rewrite) the golden hashes; the exit status says which."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite replays/golden.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ingest_samples(Path(tmp))
        actual = measure(EmbeddedLog(tmp))
    if args.update:
        GOLDEN_FILE.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN_FILE}")
        return 0
    expected = json.loads(GOLDEN_FILE.read_text())
    lines = differences(expected, actual)
    for line in lines:
        print(line)
    print("golden replays: " + ("DIFFERENT" if lines else "all identical"))
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
