"""A full disk is an error a user can act on: ``tape ingest`` and ``tape run`` on a small tmpfs
this test mounts (it needs root; without it the test is skipped, unless ``CI`` is set, where a
test whose environment is missing fails)."""

from __future__ import annotations

import gc
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest_samples import LOBSTER_BOOKS, LOBSTER_MESSAGES, tape

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at ``tmp_path/disk``, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        gc.collect()  # the writers of a run that failed hold their files until collected
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _fill(mount: Path, leave: int) -> Path:
    """Fill the file system but ``leave`` bytes."""
    stat = os.statvfs(mount)
    filler = mount / "filler"
    filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - leave))
    return filler


def test_ingest_says_what_ran_out_and_how_to_go_on(small_disk: Path) -> None:
    data = small_disk / "data"
    args = ["ingest", "lobster", str(LOBSTER_MESSAGES), str(LOBSTER_BOOKS), "--symbol", "AAPL",
            "--date", "2012-06-21", "--session", "aapl"]  # fmt: skip
    filler = _fill(small_disk, 200_000)  # the oracle alone needs 360 KB
    code, out = tape(data, *args)
    out = " ".join(out.split())  # as one line, however the console wrapped it
    assert code == 1
    assert "Traceback" not in out
    assert f"no space left on the device holding the data directory {data}" in out
    assert "writing to topic 'aapl." in out
    assert "needed" in out
    assert "was free" in out
    assert "run the same command again once there is room" in out
    filler.unlink()
    code, out = tape(data, *args)
    assert code == 0, out


def test_run_says_what_ran_out_and_a_rerun_resumes(small_disk: Path) -> None:
    data = small_disk / "data"
    ingest = ["ingest", "lobster", str(LOBSTER_MESSAGES), "--symbol", "AAPL",
              "--date", "2012-06-21", "--session", "aapl"]  # fmt: skip
    assert tape(data, "--fsync", "never", *ingest, "--quiet")[0] == 0
    filler = _fill(small_disk, 150_000)  # the book topic alone needs 325 KB
    code, out = tape(data, "run", "aapl", "--run-id", "r1", "--quiet")  # in this process
    out = " ".join(out.split())
    assert code == 1
    assert "Traceback" not in out
    assert "writing to topic 'run.r1." in out
    assert "`tape run aapl --run-id r1` resumes it" in out
    filler.unlink()
    # the failed run released its topics, so even the same process can resume it
    code, out = tape(data, "run", "aapl", "--run-id", "r1", "--quiet")
    assert code == 0, out
    assert "run r1 complete" in " ".join(out.split())
