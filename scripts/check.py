"""Run every check the project must pass, in order, stopping at the first failure.

    .venv/bin/python scripts/check.py [extra pytest arguments]

Steps: ruff lint, ruff format check, mypy on engine/ and streams/, the import contracts
(import-linter; the dependency rule of docs/architecture.md), then pytest. Each tool
runs under this interpreter (``-m <tool>``), so the versions pinned in the environment are used.
Any arguments are handed to pytest, e.g. ``scripts/check.py -k replay -x``. An empty test
run (pytest exit status 5, nothing collected) counts as a failure.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PYTEST_NO_TESTS_COLLECTED = 5
TOOLS = ("ruff", "mypy", "importlinter", "pytest")
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def steps(pytest_args: list[str]) -> list[tuple[str, list[str]]]:
    return [
        ("ruff check", ["-m", "ruff", "check", "."]),
        ("ruff format --check", ["-m", "ruff", "format", "--check", "."]),
        ("mypy engine streams", ["-m", "mypy", "engine", "streams"]),
        # import-linter has no ``__main__``; its console script calls this function.
        ("lint-imports", ["-c", LINT_IMPORTS]),
        (" ".join(["pytest", *pytest_args]), ["-m", "pytest", *pytest_args]),
    ]


def header(title: str) -> None:
    line = "=" * 72
    print(f"\n{line}\n== {title}\n{line}", flush=True)


def main(argv: list[str]) -> int:
    missing = [tool for tool in TOOLS if importlib.util.find_spec(tool) is None]
    if missing:
        print(
            f"check: {', '.join(missing)} not installed for {sys.executable}.\n"
            "check: run `python3 scripts/bootstrap.py --dev`, then "
            "`.venv/bin/python scripts/check.py`.",
            file=sys.stderr,
        )
        return 2

    started = time.monotonic()
    for title, command in steps(argv):
        header(title)
        step_started = time.monotonic()
        code = subprocess.run([sys.executable, *command], cwd=ROOT, check=False).returncode
        elapsed = time.monotonic() - step_started
        if code == PYTEST_NO_TESTS_COLLECTED and command[1] == "pytest":
            print(f"\ncheck: FAILED at `{title}`: no tests were collected", file=sys.stderr)
            return 1
        if code != 0:
            print(
                f"\ncheck: FAILED at `{title}` (exit status {code}, {elapsed:.1f}s)",
                file=sys.stderr,
            )
            return code if code > 0 else 1
        print(f"-- ok ({elapsed:.1f}s)", flush=True)

    print(f"\ncheck: all {len(steps(argv))} steps passed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
