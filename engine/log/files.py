"""Small durable-file helpers shared by the log's metadata writers."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new or renamed files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview, position: int) -> None:
    """``pwrite`` until every byte is written; the OS may accept fewer than asked."""
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, position)
        view = view[written:]
        position += written
