"""Topic metadata: stored beside the data, created idempotently, validated with clear errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.log import (
    EmbeddedLog,
    FsyncMode,
    FsyncPolicy,
    LogError,
    PartitionLockedError,
    TopicCodec,
    TopicConfig,
    TopicExistsError,
    TopicNotFoundError,
)
from tests.factories import fixed_topic, numbered_records


@st.composite
def configs(draw: st.DrawFn) -> TopicConfig:
    codec = draw(st.sampled_from(list(TopicCodec)))
    record_size = 0 if codec is TopicCodec.MSGPACK else draw(st.integers(8, 65535))
    return TopicConfig(
        schema_name=draw(st.text(min_size=1, max_size=30)),
        schema_version=draw(st.integers(1, 10**6)),
        codec=codec,
        partitions=draw(st.integers(1, 4)),
        record_size=record_size,
        timestamp_offset=draw(st.integers(0, max(0, record_size - 8))),
        segment_bytes=draw(st.integers(4096, 2**40)),
    )


NAMES = st.text(alphabet="abcXYZ019._-", min_size=1, max_size=20).filter(
    lambda n: n not in {".", ".."}
)


@given(config=configs(), name=NAMES)
def test_topic_metadata_round_trips(config: TopicConfig, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        assert EmbeddedLog(tmp).create_topic(name, config) == config
        reopened = EmbeddedLog(tmp)
        assert reopened.config(name) == config
        assert reopened.topics() == [name]
        assert reopened.has_topic(name)
        assert reopened.create_topic(name, config) == config  # idempotent
        for p in range(config.partitions):
            assert reopened.watermarks(name, p) == (0, 0)


def test_create_refuses_different_settings(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    config = TopicConfig("market.trade", 1, TopicCodec.FIXED, record_size=64)
    log.create_topic("trades", config)
    for other in (
        TopicConfig("market.trade", 2, TopicCodec.FIXED, record_size=64),
        TopicConfig("market.quote", 1, TopicCodec.FIXED, record_size=64),
        TopicConfig("market.trade", 1, TopicCodec.MIXED, record_size=64),
        TopicConfig("market.trade", 1, TopicCodec.FIXED, record_size=64, partitions=2),
    ):
        with pytest.raises(TopicExistsError, match="'trades' already exists with different"):
            log.create_topic("trades", other)
    assert log.config("trades") == config


def test_unknown_topic_is_named_with_the_known_ones(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log, "ticks")
    with pytest.raises(TopicNotFoundError, match=r"'nope' does not exist .*topics there: ticks"):
        log.reader("nope")
    with pytest.raises(LogError, match="no partition 1"):
        log.reader("ticks", 1)


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("a/b", TopicConfig("s", 1, TopicCodec.MSGPACK), "invalid topic name"),
        ("x" * 250, TopicConfig("s", 1, TopicCodec.MSGPACK), "invalid topic name"),
        ("t", TopicConfig("s", 1, TopicCodec.MSGPACK, partitions=0), "partitions must be"),
        ("t", TopicConfig("s", 1, TopicCodec.FIXED), "record_size in 1..65535"),
        ("t", TopicConfig("s", 1, TopicCodec.FIXED, record_size=8, timestamp_offset=1), "int64"),
        ("t", TopicConfig("s", 1, TopicCodec.MSGPACK, segment_bytes=4095), "segment_bytes"),
    ],
)
def test_invalid_settings_are_refused(
    tmp_path: Path, name: str, config: TopicConfig, message: str
) -> None:
    with pytest.raises(LogError, match=message):
        EmbeddedLog(tmp_path).create_topic(name, config)
    assert EmbeddedLog(tmp_path).topics() == []


def test_damaged_metadata_names_its_file(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log)
    meta = tmp_path / "topics" / "ticks" / "topic.json"
    meta.write_text("{not json")
    with pytest.raises(LogError, match=r"topic\.json"):
        log.config("ticks")


def test_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log)
    with log.writer("ticks") as writer:
        writer.append_array(numbered_records(0, 3))
        with pytest.raises(PartitionLockedError, match="already has a writer"):
            log.writer("ticks")
    with log.writer("ticks") as writer:  # released on close
        assert writer.next_offset == 3


def test_appends_are_checked_against_the_topic(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    fixed_topic(log, record_size=64)
    log.create_topic("events", TopicConfig("s", 1, TopicCodec.MSGPACK))
    with log.writer("ticks") as writer:
        with pytest.raises(LogError, match="records are 32 bytes, the topic holds 64-byte"):
            writer.append_array(np.zeros(2, dtype="V32"))
        with pytest.raises(LogError, match="without key or headers"):
            writer.append_records([(0, b"key", None, bytes(64))])
        assert writer.append_records([(0, None, None, bytes(64))]) == 0
        assert writer.append_array(np.zeros(0, dtype="V64")) == 1
    with log.writer("events") as writer, pytest.raises(LogError, match="takes records"):
        writer.append_array(np.zeros(1, dtype="V64"))


def test_fsync_policy_parsing() -> None:
    assert FsyncPolicy.parse("batch") == FsyncPolicy(FsyncMode.BATCH)
    assert FsyncPolicy.parse("never") == FsyncPolicy(FsyncMode.NEVER)
    assert FsyncPolicy.parse("interval:250") == FsyncPolicy(FsyncMode.INTERVAL, 250)
    for bad in ("sometimes", "interval:soon"):
        with pytest.raises(LogError, match="fsync"):
            FsyncPolicy.parse(bad)


@pytest.mark.parametrize("policy", ["batch", "interval:0", "interval:100000", "never"])
def test_every_fsync_policy_keeps_what_was_appended(tmp_path: Path, policy: str) -> None:
    log = EmbeddedLog(tmp_path, FsyncPolicy.parse(policy))
    fixed_topic(log)
    with log.writer("ticks") as writer:
        for start in range(0, 300, 30):
            writer.append_array(numbered_records(start, 30))
    batch = log.reader("ticks").read(0, 10_000)
    assert batch is not None
    assert batch.next_offset <= 300
    assert log.watermarks("ticks") == (0, 300)
