"""Every ```python block of docs/architecture.md and README.md runs, in order, and holds.

The blocks of one file share a namespace (a later block may use an earlier one's names) with
``data``, a private copy of the ingested bundled samples, and ``frozen_samples``, the path of
tests/frozen/events.txt. Each block asserts what it shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/architecture.md", "README.md")


def python_blocks(path: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), flags=re.DOTALL)


def test_the_architecture_page_has_its_examples() -> None:
    assert len(python_blocks("docs/architecture.md")) >= 3


@pytest.mark.parametrize("path", DOCS)
def test_python_blocks_run(path: str, samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = {"data": samples, "frozen_samples": ROOT / "tests" / "frozen" / "events.txt"}
    for i, block in enumerate(python_blocks(path)):
        # dont_inherit: the block must not get this module's `from __future__ import annotations`
        exec(compile(block, f"{path} block {i + 1}", "exec", dont_inherit=True), namespace)
    if path == "docs/architecture.md":
        printed = capsys.readouterr().out
        assert "mids have a spread of at least 3 cents" in printed
        assert "control.halt_trading@2" in printed
