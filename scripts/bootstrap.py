#!/usr/bin/env python3
"""Create ``.venv`` in the repository root and install Tapedeck into it.

    python3 scripts/bootstrap.py          # runtime dependencies + the ``tape`` CLI
    python3 scripts/bootstrap.py --dev    # plus pytest, hypothesis, ruff and mypy

Standard library only, so it runs under a bare Debian ``python3``. On a Debian or Ubuntu
system without the ``python3-venv`` package, ``python3 -m venv`` fails because ``ensurepip``
is missing; the script then creates the environment with ``--without-pip`` and installs a
pinned pip wheel downloaded from PyPI, checked against the SHA-256 recorded below.

Re-running is cheap: a stamp in ``.venv`` records what was installed, and nothing is
reinstalled while ``pyproject.toml`` and the set of top-level packages are unchanged.

Environment variables:
    TAPEDECK_BOOTSTRAP_NO_ENSUREPIP=1  behave as if ensurepip were missing (tests the fallback)
    TAPEDECK_PYPI_URL                  PyPI base URL for the pip download (default https://pypi.org)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / "tapedeck-bootstrap.json"
MIN_PYTHON = (3, 11)

# pip used when the interpreter cannot provide one itself (no ensurepip).
PIP_VERSION = "26.3"
PIP_WHEEL = "pip-26.3-py3-none-any.whl"
PIP_WHEEL_SHA256 = "f3b60b20ffaadd4415ed7957212a38ac63fa4c5fa375bd0f4a797777940fad13"

NO_ENSUREPIP_ENV = "TAPEDECK_BOOTSTRAP_NO_ENSUREPIP"
PYPI_URL_ENV = "TAPEDECK_PYPI_URL"
HTTP_TIMEOUT = 60

APT_HINT = "on Debian/Ubuntu: apt-get install python3-venv (then re-run this script)"


class BootstrapError(Exception):
    """A failure with a description of what went wrong and what the user can do about it."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix


def step(message: str) -> None:
    print("==> " + message, flush=True)


def note(message: str) -> None:
    print("    " + message, flush=True)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join("      " + line for line in kept)


def run(
    cmd: list[str],
    capture: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=str(cwd) if cwd else None,
        env=env,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
        check=False,
    )


# --------------------------------------------------------------------------- state of .venv


def project_fingerprint() -> dict[str, Any]:
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.is_file():
        raise BootstrapError(
            "no pyproject.toml in " + str(ROOT),
            "run this script from a complete Tapedeck checkout",
        )
    packages = sorted(
        p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    )
    return {
        "pyproject_sha256": hashlib.sha256(pyproject.read_bytes()).hexdigest(),
        # The editable install maps top-level packages when it is made, so a package that
        # appears later (engine/ or streams/ created after bootstrapping) needs a reinstall.
        "packages": packages,
    }


def read_stamp(venv: Path) -> dict[str, Any] | None:
    try:
        stamp = json.loads((venv / STAMP.name).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def is_current(venv: Path, fingerprint: dict[str, Any], extras: list[str]) -> bool:
    stamp = read_stamp(venv)
    if not stamp or not venv_python(venv).exists():
        return False
    return (
        stamp.get("pyproject_sha256") == fingerprint["pyproject_sha256"]
        and stamp.get("packages") == fingerprint["packages"]
        and set(extras) <= set(stamp.get("extras", []))
    )


def venv_usable(venv: Path) -> bool:
    """True when ``venv`` holds a working interpreter that is new enough."""
    python = venv_python(venv)
    if not (venv / "pyvenv.cfg").is_file() or not python.exists():
        return False
    check = f"import sys; sys.exit(sys.version_info < {MIN_PYTHON!r})"
    probe = run([str(python), "-c", check], capture=True)
    return probe.returncode == 0


def has_pip(venv: Path) -> bool:
    return run([str(venv_python(venv)), "-m", "pip", "--version"], capture=True).returncode == 0


# --------------------------------------------------------------------------- creating .venv


def ensurepip_available() -> bool:
    if os.environ.get(NO_ENSUREPIP_ENV, "") not in ("", "0"):
        note(NO_ENSUREPIP_ENV + " is set: acting as if ensurepip were missing")
        return False
    return importlib.util.find_spec("ensurepip") is not None


def create_venv(venv: Path) -> None:
    """Create ``venv`` with pip, falling back to ``--without-pip`` plus a downloaded pip."""
    if venv.exists() and not (venv / "pyvenv.cfg").is_file() and any(venv.iterdir()):
        raise BootstrapError(
            f"{venv} exists but is not a virtual environment",
            "move it out of the way or delete it, then re-run this script",
        )
    step(f"creating {venv.name} with {sys.executable} (Python {sys.version.split()[0]})")

    if ensurepip_available():
        result = run([sys.executable, "-m", "venv", "--clear", str(venv)], capture=True)
        if result.returncode == 0 and has_pip(venv):
            return
        note("python3 -m venv could not set up pip:")
        print(tail(result.stdout or "(no output)"), flush=True)
    else:
        note("ensurepip is not available in this Python")

    note(f"falling back to a venv without pip plus pip {PIP_VERSION} from PyPI")
    create_venv_without_pip(venv)
    install_pip_from_pypi(venv)


def create_venv_without_pip(venv: Path) -> None:
    command = [sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)]
    result = run(command, capture=True)
    if result.returncode != 0 or not venv_python(venv).exists():
        raise BootstrapError(
            f"python3 -m venv --without-pip {venv} failed:\n{tail(result.stdout or '')}",
            "the venv module itself is unusable; " + APT_HINT,
        )


def ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
    extra = os.environ.get("PIP_CERT")
    if extra and os.path.isfile(extra):
        context.load_verify_locations(cafile=extra)
    return context


def http_get(url: str) -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"User-Agent": "tapedeck-bootstrap"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT, context=ssl_context()) as response:
        return response.read(), response.geturl()


def pip_wheel_url(pypi: str) -> str:
    """Find the download URL of PIP_WHEEL through the PyPI JSON API."""
    # The per-release document is the normal route; some mirrors only serve the
    # project-wide one, whose "releases" map holds the same file entries.
    attempts = [f"{pypi}/pypi/pip/{PIP_VERSION}/json", f"{pypi}/pypi/pip/json"]
    problems = []
    for url in attempts:
        try:
            body, final_url = http_get(url)
            document = json.loads(body.decode("utf-8"))
        except urllib.error.HTTPError as exc:
            problems.append(f"{url}: HTTP {exc.code}")
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problems.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        if "urls" in document and document.get("info", {}).get("version") == PIP_VERSION:
            files = document["urls"]
        else:
            files = document.get("releases", {}).get(PIP_VERSION, [])
        for entry in files:
            if entry.get("filename") == PIP_WHEEL:
                listed = entry.get("digests", {}).get("sha256")
                if listed and listed != PIP_WHEEL_SHA256:
                    raise BootstrapError(
                        f"PyPI lists sha256 {listed} for {PIP_WHEEL}, "
                        f"but this script pins {PIP_WHEEL_SHA256}",
                        "do not continue with this index; " + APT_HINT,
                    )
                return urllib.parse.urljoin(final_url, str(entry["url"]))
        problems.append(f"{url}: no {PIP_WHEEL} listed")
    raise BootstrapError(
        f"could not locate {PIP_WHEEL} on {pypi}:\n"
        + "\n".join("      " + problem for problem in problems),
        f"check that this machine can reach {pypi} over HTTPS (set https_proxy if needed), "
        f"or avoid the download: {APT_HINT}",
    )


def download_pip_wheel(directory: Path) -> Path:
    pypi = os.environ.get(PYPI_URL_ENV, "https://pypi.org").rstrip("/")
    url = pip_wheel_url(pypi)
    note("downloading " + url)
    try:
        data, _ = http_get(url)
    except (urllib.error.URLError, OSError) as exc:
        raise BootstrapError(
            f"downloading {url} failed: {getattr(exc, 'reason', exc)}",
            f"check network access to {pypi} (set https_proxy if needed), or {APT_HINT}",
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != PIP_WHEEL_SHA256:
        raise BootstrapError(
            f"{PIP_WHEEL} has sha256 {digest}, expected {PIP_WHEEL_SHA256}",
            "the download is corrupt or was tampered with; retry, or " + APT_HINT,
        )
    note(f"sha256 verified ({digest})")
    wheel = directory / PIP_WHEEL
    wheel.write_bytes(data)
    return wheel


def install_pip_from_pypi(venv: Path) -> None:
    step(f"installing pip {PIP_VERSION} into {venv.name}")
    with tempfile.TemporaryDirectory(prefix="tapedeck-pip-") as tmp:
        wheel = download_pip_wheel(Path(tmp))
        # A pip wheel can run itself: <python> <wheel>/pip install <wheel>.
        pip_in_wheel = str(wheel / "pip")
        options = ["--no-index", "--no-cache-dir", "--disable-pip-version-check", "-q"]
        command = [str(venv_python(venv)), pip_in_wheel, "install", *options, str(wheel)]
        result = run(command, capture=True)
    if result.returncode != 0 or not has_pip(venv):
        raise BootstrapError(
            f"installing pip from {PIP_WHEEL} into {venv} failed:\n{tail(result.stdout or '')}",
            f"delete {venv} and re-run this script, or {APT_HINT}",
        )


# --------------------------------------------------------------------------- installing


def install_project(venv: Path, extras: list[str], fresh: bool) -> None:
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    what = "tapedeck" + (" with dev tools (pytest, hypothesis, ruff, mypy)" if extras else "")
    step(f"installing {what} into {venv.name} (pip install -e {target})")
    if fresh:
        note("downloads numpy, numba and the rest on a first install; this can take a minute")
    options = ["--disable-pip-version-check", "-q"]
    # setuptools warns about flat-layout editable installs on every install; keep -q quiet.
    warnings = [os.environ.get("PYTHONWARNINGS", ""), "ignore:Editable installation"]
    env = dict(os.environ, PYTHONWARNINGS=",".join(w for w in warnings if w))
    command = [str(venv_python(venv)), "-m", "pip", "install", *options, "-e", target]
    result = run(command, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise BootstrapError(
            f"pip install -e {target} failed (pip's messages are above)",
            "fix the reported problem (often network access to PyPI) and re-run; "
            f"add --force to rebuild {venv.name} from scratch",
        )


def bootstrap(dev: bool, force: bool) -> None:
    if sys.version_info < MIN_PYTHON:
        raise BootstrapError(
            f"Tapedeck needs Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]}, "
            f"but {sys.executable} is {sys.version.split()[0]}",
            "run this script with a newer interpreter, e.g. python3.11 scripts/bootstrap.py "
            "(Debian 12: apt-get install python3.11)",
        )
    started = time.monotonic()
    extras = ["dev"] if dev else []
    fingerprint = project_fingerprint()

    usable = venv_usable(VENV)
    if usable and not force and is_current(VENV, fingerprint, extras):
        step(f"{VENV.name} is up to date (pyproject.toml unchanged); nothing to do")
        return

    if force and VENV.exists():
        if not (VENV / "pyvenv.cfg").is_file():
            raise BootstrapError(
                f"{VENV} exists but is not a virtual environment",
                "move it out of the way or delete it, then re-run this script",
            )
        step(f"--force: removing {VENV.name}")
        shutil.rmtree(str(VENV))
        usable = False

    fresh = not usable
    if fresh:
        create_venv(VENV)
    elif not has_pip(VENV):
        note(f"{VENV.name} has no working pip")
        install_pip_from_pypi(VENV)

    # Drop the stamp first so an interrupted install is redone next time.
    stamp = VENV / STAMP.name
    if stamp.exists():
        stamp.unlink()
    install_project(VENV, extras, fresh)
    step("compiling the engine's numba loops into their cache (once per install)")
    compiled = run([str(venv_python(VENV)), "-m", "engine.app.precompile"], capture=True, cwd=ROOT)
    if compiled.returncode != 0:
        raise BootstrapError(
            "precompiling failed:\n" + tail(compiled.stdout or "(no output)"),
            "re-run this script; if it fails again, report the output above",
        )
    note(compiled.stdout.strip().splitlines()[-1])
    record = {**fingerprint, "extras": extras, "python": sys.version.split()[0]}
    stamp.write_text(json.dumps(record, indent=2) + "\n")

    step(f"done in {time.monotonic() - started:.0f}s: {VENV} is ready")
    rel = os.path.relpath(str(venv_python(VENV).parent), str(Path.cwd()))
    note(f"CLI: {rel}/tape --help")
    if dev:
        note(f"checks: {rel}/python scripts/check.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Create .venv and install Tapedeck into it (editable).",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="also install the development tools (pytest, hypothesis, ruff, mypy)",
    )
    parser.add_argument(
        "--force", action="store_true", help="delete .venv and build it again from scratch"
    )
    args = parser.parse_args(argv)
    try:
        bootstrap(dev=args.dev, force=args.force)
    except BootstrapError as exc:
        print("bootstrap: error: " + exc.what, file=sys.stderr)
        print("bootstrap: what to do: " + exc.fix, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bootstrap: interrupted; re-run to finish", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
