#!/usr/bin/env python3
"""Fetch the dashboard's browser libraries from npm, reproducibly (docs/dashboard.md).

    python3 scripts/vendor_js.py           # fetch, check and copy into engine/app/web/static/vendor
    python3 scripts/vendor_js.py --check   # only check the committed files (no network)

What is fetched is pinned in ``engine/app/web/static/vendor/vendor.json``: package, exact
version, the npm tarball's ``integrity`` (sha512) and the sha256 of every file copied out of
it. ``npm pack NAME@VERSION`` downloads the tarball through npm's ordinary client; the script
refuses a tarball whose sha512 differs from the pin and a file whose sha256 differs, so the
committed result is exactly what the pins name. Licences are copied beside the code.

Standard library only; needs ``npm`` on PATH (not for ``--check``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "engine" / "app" / "web" / "static" / "vendor"
PINS = VENDOR / "vendor.json"


class VendorError(Exception):
    """A download or a file that does not match its pin."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def integrity(data: bytes) -> str:
    """npm's ``integrity`` string of a tarball: ``sha512-`` + base64 of its sha512."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def pins() -> list[dict[str, object]]:
    packages = json.loads(PINS.read_text())["packages"]
    assert isinstance(packages, list)
    return packages


def check_committed() -> list[str]:
    """Problems with the committed files (empty: every file matches its pin)."""
    problems = []
    for package in pins():
        for f in package["files"]:  # type: ignore[attr-defined]
            path = VENDOR / f["to"]
            if not path.is_file():
                problems.append(f"{path} is missing: run scripts/vendor_js.py")
            elif sha256(path.read_bytes()) != f["sha256"]:
                problems.append(f"{path} differs from its pin in {PINS.name}")
    return problems


def fetch(package: dict[str, object], work: Path) -> None:
    name, version = package["name"], package["version"]
    done = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--silent"],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise VendorError(f"npm pack {name}@{version} failed: {done.stderr.strip()}")
    tarball = work / done.stdout.strip().splitlines()[-1]
    raw = tarball.read_bytes()
    if integrity(raw) != package["integrity"]:
        raise VendorError(f"{tarball.name}: integrity {integrity(raw)} is not the pinned one")
    with tarfile.open(tarball) as archive:
        for f in package["files"]:  # type: ignore[attr-defined]
            member = archive.extractfile(f["from"])
            if member is None:
                raise VendorError(f"{tarball.name} has no file {f['from']}")
            data = member.read()
            if sha256(data) != f["sha256"]:
                raise VendorError(f"{name}@{version} {f['from']}: sha256 is not the pinned one")
            (VENDOR / f["to"]).write_bytes(data)
            print(f"{name}@{version} {f['from']} -> {VENDOR / f['to']}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check the committed files only")
    args = parser.parse_args(argv)
    try:
        if not args.check:
            with tempfile.TemporaryDirectory() as work:
                for package in pins():
                    fetch(package, Path(work))
        problems = check_committed()
    except VendorError as exc:
        print(f"vendor_js: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"vendor_js: {problem}", file=sys.stderr)
    if not problems:
        print(f"vendor_js: every file matches {PINS}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
