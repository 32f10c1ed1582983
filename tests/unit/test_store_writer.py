"""The projector's writer thread commits in submission order and hands a failure back."""

from __future__ import annotations

import threading

import pytest

from engine.app.store.writer import Writer


def test_items_are_committed_in_order_on_another_thread() -> None:
    done: list[int] = []
    threads: set[int] = set()

    def commit(item: int) -> None:
        threads.add(threading.get_ident())
        done.append(item)

    writer: Writer[int] = Writer(commit)
    for i in range(200):
        writer.submit(i)
    writer.close()
    assert done == list(range(200))
    assert threading.get_ident() not in threads


def test_a_failed_commit_stops_the_later_ones_and_is_raised() -> None:
    done: list[int] = []
    gate = threading.Event()

    def commit(item: int) -> None:
        gate.wait(5)
        if item == 2:
            raise RuntimeError("the store refused batch 2")
        done.append(item)

    writer: Writer[int] = Writer(commit)
    writer.submit(1)
    writer.submit(2)
    gate.set()

    def finish() -> None:
        for i in range(3, 50):  # raised at a later submit or at close, never swallowed
            writer.submit(i)
        writer.close()

    with pytest.raises(RuntimeError, match="batch 2"):
        finish()
    with pytest.raises(RuntimeError, match="batch 2"):
        writer.close()
    assert done == [1]
