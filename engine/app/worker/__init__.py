"""The distributed worker: the deterministic topology hosted on Kafka partitions
(docs/operations.md)."""

from engine.app.worker.loop import Worker, WorkerError
from engine.app.worker.task import SessionTask, TaskState

__all__ = ["SessionTask", "TaskState", "Worker", "WorkerError"]
