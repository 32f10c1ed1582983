"""How long ``tape --help`` and ``tape topics`` take to start, as a shell user sees it.

Run: ``.venv/bin/python bench/cli_startup.py [--repeat 9]``. Each command runs in a fresh
process (the ``tape`` script of this interpreter's environment); ``tape topics`` on an empty
data directory. The project's bytecode is compiled first (``compileall``), as any Python that
may write its caches does on the first run: without it every start compiles the sources
again (an environment with ``PYTHONDONTWRITEBYTECODE`` set never writes them). Medians and
the fastest run, and the median CPU time (user + system: what a start costs when the cores
are shared); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAPE = Path(sys.executable).with_name("tape")


def _seconds(args: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each of ``repeat`` starts. On a busy machine
    the CPU time says what the start costs; the wall time adds the wait for a core."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run([str(TAPE), *args], check=True, capture_output=True)
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    """Compile, warm up, time each command ``--repeat`` times; print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    for package in ("engine", "streams"):
        compileall.compile_dir(ROOT / package, quiet=1)
    summary: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as data:
        for name, command in (("help", ["--help"]), ("topics", ["--data", data, "topics"])):
            _seconds(command, 1)  # the operating system's file cache
            times, cpus = _seconds(command, args.repeat)
            print(f"tape {' '.join(command[-1:])}: median {statistics.median(times):.3f} s, "
                  f"fastest {min(times):.3f} s; CPU {statistics.median(cpus):.3f} s")  # fmt: skip
            summary[f"{name}_s"] = round(statistics.median(times), 3)
            summary[f"{name}_fastest_s"] = round(min(times), 3)
            summary[f"{name}_cpu_s"] = round(statistics.median(cpus), 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
