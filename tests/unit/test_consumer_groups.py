"""Consumer groups on the embedded log: what only its storage API has.

The client behaviour of groups (commit, resume exactly, independence, reset policy) is in the
contract suite, tests/contract/test_log_contract.py, run against every backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.log import EmbeddedLog, LogError


def test_commits_merge_per_partition_and_survive_the_log_object(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    log.commit("g", {("orders", 0): 5, ("orders", 2): 7})
    log.commit("g", {("orders", 0): 6})
    assert EmbeddedLog(tmp_path).committed("g") == {("orders", 0): 6, ("orders", 2): 7}
    assert log.committed("other") == {}


def test_group_names_must_be_file_names(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    for bad in ("", "a/b", ".hidden"):
        with pytest.raises(LogError, match="consumer group"):
            log.commit(bad, {("orders", 0): 1})
