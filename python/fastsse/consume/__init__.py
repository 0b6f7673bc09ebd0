"""Consuming a stream: a bounded queue, workers, and durable checkpoints to resume from."""

from fastsse.consume.checkpoint import Checkpoint, SQLiteCheckpoint
from fastsse.consume.consumer import (
    Consumer,
    ConsumerStats,
    ErrorHandler,
    Handler,
    Overflow,
    QueueOverflowError,
)

__all__ = [
    "Checkpoint",
    "Consumer",
    "ConsumerStats",
    "ErrorHandler",
    "Handler",
    "Overflow",
    "QueueOverflowError",
    "SQLiteCheckpoint",
]
