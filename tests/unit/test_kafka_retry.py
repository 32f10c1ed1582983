"""Bounded retries of retriable Kafka errors (engine/log/kafka/retry.py), on a fake clock."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

from engine.log.kafka.retry import Backoff, RetriesExhaustedError, poll_until, retry


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def failing(code: int, times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise KafkaException(KafkaError(code))
        return "done"

    return calls, action


def test_a_retriable_error_is_asked_again_with_doubling_waits() -> None:
    clock = Clock()
    calls, action = failing(KafkaError.NOT_LEADER_FOR_PARTITION, 7)
    assert retry(action, "reading x/0", "h:1", sleep=clock.sleep, clock=clock) == "done"  # type: ignore[arg-type]
    assert len(calls) == 8
    assert clock.sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


def test_the_bound_ends_retries_with_an_error_naming_what_where_and_what_to_do() -> None:
    clock = Clock()
    calls, action = failing(KafkaError.LEADER_NOT_AVAILABLE, 10_000)
    with pytest.raises(RetriesExhaustedError) as raised:
        retry(action, "reading the offsets of t/2", "h:9092", sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    message = str(raised.value)
    assert "reading the offsets of t/2 on h:9092" in message
    assert "LEADER_NOT_AVAILABLE" in message
    assert "repeat the command" in message
    assert clock.now <= Backoff().bound
    assert clock.now + 2.0 > Backoff().bound  # it used (almost) the whole bound
    assert len(calls) == len(clock.sleeps) + 1


def test_other_errors_are_raised_at_once() -> None:
    clock = Clock()
    calls, action = failing(KafkaError.TOPIC_AUTHORIZATION_FAILED, 1)
    with pytest.raises(KafkaException):
        retry(action, "x", "h:1", sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert (len(calls), clock.sleeps) == (1, [])


def test_fatal_errors_are_never_retried() -> None:
    clock = Clock()

    def fenced() -> None:
        raise KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

    with pytest.raises(KafkaException):
        retry(fenced, "commit_transaction", "h:1", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == []


def test_poll_until_waits_for_the_condition_and_says_what_is_missing() -> None:
    clock = Clock()
    answers = iter(["partition 1 without a leader", None])
    poll_until(lambda: next(answers), "waiting", "h:1", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [0.05]
    with pytest.raises(RetriesExhaustedError, match="still stuck after"):
        poll_until(
            lambda: "stuck", "waiting for t", "h:1", backoff=Backoff(bound=1.0),
            sleep=clock.sleep, clock=clock,
        )  # fmt: skip
