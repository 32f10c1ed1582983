"""A partition writer run as its own process by the integration tests.

    python writer_process.py ROOT TOPIC --batches N --max-batch M --delay S --seed K [--hold]

Appends batches of ``numbered_records`` (every record a pure function of its offset) with
fsync per batch, printing ``<base offset> <count> <crc32c of the batch>`` after each append
returns, i.e. once the batch is acknowledged. ``--batches 0`` appends until killed; ``--hold``
keeps the partition's lock until stdin closes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.log import EmbeddedLog, FsyncPolicy
from engine.log.format import crc
from tests.factories import numbered_records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("topic")
    parser.add_argument("--batches", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    writer = EmbeddedLog(args.root, FsyncPolicy()).writer(args.topic)
    print(f"ready {writer.next_offset}", flush=True)
    appended = 0
    while args.batches == 0 or appended < args.batches:
        records = numbered_records(writer.next_offset, rng.randint(1, args.max_batch))
        base = writer.append_array(records)
        print(f"{base} {len(records)} {crc(records)}", flush=True)
        appended += 1
        if args.delay:
            time.sleep(args.delay)
    if args.hold:
        sys.stdin.read()
    writer.close()
    print("closed", flush=True)


if __name__ == "__main__":
    main()
