"""The vendored ECharts matches its pins (scripts/vendor_js.py --check, no network)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "vendor_js.py"


def vendor_module():
    spec = importlib.util.spec_from_file_location("vendor_js", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_match_their_pins() -> None:
    assert vendor_module().check_committed() == []


def test_a_changed_or_missing_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = vendor_module()
    copy = tmp_path / "vendor"
    shutil.copytree(module.VENDOR, copy)
    monkeypatch.setattr(module, "VENDOR", copy)
    monkeypatch.setattr(module, "PINS", copy / "vendor.json")
    script = copy / "echarts.common.min.js"
    script.write_bytes(script.read_bytes() + b"\n")
    (copy / "zrender.LICENSE").unlink()
    problems = module.check_committed()
    assert any("echarts.common.min.js differs" in p for p in problems), problems
    assert any("zrender.LICENSE is missing" in p for p in problems), problems


def test_npm_integrity_is_the_sha512_of_the_tarball() -> None:
    # npm's documented format: "sha512-" + base64(sha512(bytes)); sha512("") is well known
    assert vendor_module().integrity(b"") == (
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )
