"""Bounded retries of the errors a healthy Kafka cluster answers while it moves things around.

A real broker answers "not leader for partition", "unknown topic or partition", "leader not
available" or "coordinator load in progress" for a moment after a topic is created, a leader
moves or a coordinator starts; the right answer is to ask again a little later. librdkafka
retries produce and fetch requests by itself, but not the one-shot requests Tapedeck makes
(watermarks, committed offsets, timestamps, transactional offset commits). :func:`retry`
repeats such a request with exponential backoff (50 ms doubling to 2 s) for at most
:data:`BOUND` seconds, then raises an error naming the operation, where, and what to do.

Anything else (a fatal or abortable transactional error, a refused request) is raised at once:
retrying cannot fix it, and hiding it for 30 s would only delay the user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

from engine.log.errors import LogUnavailableError

T = TypeVar("T")

RETRIABLE = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError.CONCURRENT_TRANSACTIONS,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._WAIT_COORD,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._NOENT,
    }
)
"""Error codes that mean "the cluster is busy moving something; ask again"."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first`` seconds, doubling up to ``cap``, for ``bound`` in all."""

    first: float = 0.05
    cap: float = 2.0
    bound: float = 30.0


BOUND = Backoff()
"""The backoff every Tapedeck request to Kafka uses."""


class RetriesExhaustedError(LogUnavailableError):
    """A retriable error did not clear within the backoff's bound."""


def error_of(exc: BaseException) -> KafkaError | None:
    """The :class:`KafkaError` inside a :class:`KafkaException`, if there is one."""
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def is_retriable(error: KafkaError) -> bool:
    """Whether asking again later can succeed: never for fatal or abort-requiring errors."""
    if error.fatal() or error.txn_requires_abort():
        return False
    return error.code() in RETRIABLE or error.retriable()


def retry(
    action: Callable[[], T],
    what: str,
    where: str,
    *,
    backoff: Backoff = BOUND,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``action()``, repeated while it raises a retriable :class:`KafkaException`.

    ``what`` names the operation and its topic/partition, ``where`` the cluster; both go into
    the :class:`RetriesExhaustedError` raised once ``backoff.bound`` seconds would be passed.
    """
    began = clock()
    delay = backoff.first
    attempts = 0
    while True:
        attempts += 1
        try:
            return action()
        except KafkaException as exc:
            error = error_of(exc)
            if error is None or not is_retriable(error):
                raise
            spent = clock() - began
            if spent + delay > backoff.bound:
                raise RetriesExhaustedError(exhausted(what, where, error, attempts, spent)) from exc
        sleep(delay)
        delay = min(delay * 2, backoff.cap)


def exhausted(what: str, where: str, error: KafkaError, attempts: int, spent: float) -> str:
    """The message of a retriable error that did not clear: what, where, why, what to do."""
    return (
        f"{what} on {where} failed {attempts} times over {spent:.1f} s with a retriable error "
        f"that did not clear: {error.str()} ({error.name()}). The cluster is up but the "
        "partition has no leader or its coordinator is not ready: check the broker's log "
        "(server.log) and `kafka-topics.sh --describe`, wait for it to recover, then repeat "
        "the command (mirrors and workers resume where they stopped)."
    )


def poll_until(
    ready: Callable[[], str | None],
    what: str,
    where: str,
    *,
    backoff: Backoff = BOUND,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call ``ready()`` until it returns None (done); it returns what is still missing.

    For conditions the cluster reports as data rather than as errors, such as partitions
    without a leader right after a topic is created.
    """
    began = clock()
    delay = backoff.first
    attempts = 0
    while True:
        attempts += 1
        missing = ready()
        if missing is None:
            return
        spent = clock() - began
        if spent + delay > backoff.bound:
            raise RetriesExhaustedError(
                f"{what} on {where}: still {missing} after {attempts} checks over {spent:.1f} s. "
                "Check the broker's log (server.log) and `kafka-topics.sh --describe`; once the "
                "cluster has recovered, repeat the command."
            )
        sleep(delay)
        delay = min(delay * 2, backoff.cap)
