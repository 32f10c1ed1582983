"""Append and read throughput of the embedded log, per event codec and fsync policy.

Usage: ``.venv/bin/python bench/log_bench.py [--records N] [--dir DIR]``

Fixed-width: 64-byte ``market.trade`` records appended as numpy batches, read back as
zero-copy arrays (every batch CRC32C-checked on first read, and a field summed so the bytes
are really touched). msgpack: ``session.closed`` events encoded one by one and appended in
batches, then read and decoded back into Structs. Prints one table row per case.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.events import decode, encode
from engine.events.control import SessionClosed
from engine.events.market import TRADE, new_records
from engine.log import EmbeddedLog, FsyncPolicy, TopicCodec, TopicConfig


def _fixed_batch(n: int, start: int) -> np.ndarray:
    records = new_records(TRADE, n)
    records["ts_event"] = 1_700_000_000_000_000_000 + np.arange(start, start + n) * 1000
    records["ts_recv"] = records["ts_event"] + 250_000
    records["price"] = 5_853_300 + (np.arange(n) % 100)
    records["size"] = 100
    records["trade_id"] = np.arange(start, start + n)
    records["side"] = 1
    return records


def bench_fixed(root: Path, policy: str, total: int, batch: int) -> tuple[float, float, int]:
    log = EmbeddedLog(root, FsyncPolicy.parse(policy))
    log.create_topic("trades", TopicConfig("market.trade", 1, TopicCodec.FIXED, record_size=64))
    batches = [_fixed_batch(batch, i * batch) for i in range(total // batch)]
    with log.writer("trades") as writer:
        start = time.perf_counter()
        for records in batches:
            writer.append_array(records)
        append_s = time.perf_counter() - start
    reader = log.reader("trades")
    start = time.perf_counter()
    offset, checksum = 0, 0
    while (got := reader.read(offset, 1 << 20)) is not None:
        checksum += int(got.view(TRADE.dtype)["size"].sum())
        offset = got.next_offset
    read_s = time.perf_counter() - start
    assert offset == total, "read back the wrong number of records"
    assert checksum == 100 * total, "read back the wrong records"
    return append_s, read_s, total * 64


def bench_msgpack(root: Path, policy: str, total: int, batch: int) -> tuple[float, float, int]:
    log = EmbeddedLog(root, FsyncPolicy.parse(policy))
    log.create_topic("control", TopicConfig("session.closed", 1, TopicCodec.MSGPACK))
    events = [
        SessionClosed(1_700_000_000_000_000_000 + i, i, "bench", "end of input")
        for i in range(total)
    ]
    written = 0
    with log.writer("control") as writer:
        start = time.perf_counter()
        for lo in range(0, total, batch):
            chunk = events[lo : lo + batch]
            writer.append_records([(e.ts_event, None, None, encode(e)) for e in chunk])
        append_s = time.perf_counter() - start
    reader = log.reader("control")
    start = time.perf_counter()
    offset, decoded = 0, 0
    while (got := reader.read(offset, batch)) is not None:
        decoded += sum(1 for v in got.values() if decode(v).ts_recv >= 0)
        offset = got.next_offset
    read_s = time.perf_counter() - start
    assert decoded == total
    written = sum(len(encode(e)) for e in events[:1000]) * total // 1000
    return append_s, read_s, written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=5_000_000, help="fixed-width records per case"
    )
    parser.add_argument("--msgpack-records", type=int, default=1_000_000)
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to write (default: a temp dir on the repo's disk)",
    )
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="tape-bench-", dir=Path(__file__).parent))
    cases: list[tuple[str, str, int, Callable[..., tuple[float, float, int]], int]] = []
    for policy in ("batch", "interval:100", "never"):
        cases += [("fixed 64 B", policy, b, bench_fixed, args.records) for b in (10_000, 100_000)]
        cases.append(("msgpack", policy, 10_000, bench_msgpack, args.msgpack_records))
    cpu = platform.processor() or platform.machine()
    host = f"{platform.node()}: {os.cpu_count()} cores, {cpu}"
    print(f"# {datetime.now(UTC):%Y-%m-%d} {host}, Python {platform.python_version()}")
    print("| events | fsync | batch | records | append ev/s | MB/s | read ev/s | MB/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    try:
        for i, (kind, policy, batch, fn, total) in enumerate(cases):
            root = base / f"case{i}"
            append_s, read_s, nbytes = fn(root, policy, total, batch)
            print(
                f"| {kind} | {policy} | {batch:,} | {total:,} | {total / append_s:,.0f} | "
                f"{nbytes / append_s / 1e6:,.0f} | {total / read_s:,.0f} | "
                f"{nbytes / read_s / 1e6:,.0f} |",
                flush=True,
            )
            shutil.rmtree(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
