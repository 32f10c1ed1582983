"""Run manifests: what a run read, with which code and config, and the hash of what it wrote.

``<data>/runs/<run id>/manifest.json`` is written when a run starts (status ``running``) and
rewritten when it completes. Wall-clock fields here describe the run for people; no processor
ever sees them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

import msgspec

from engine.log.files import atomic_write

RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
PACKAGES = (
    "tapedeck",
    "numpy",
    "numba",
    "llvmlite",
    "msgspec",
    "catboost",
    "river",
    "polars",
    "scipy",
    "pandas",
    "exchange_calendars",
    "tzdata",
)
"""Every installed library whose code can shape a run's outputs (or its models' training)."""
FEATURE_LISTS = ("cpu_features", "numpy_simd")
"""Platform entries that are comma-separated lists; differences are shown item by item."""


class RunError(Exception):
    """A run that cannot start, resume or be found; the message says why and what to do."""


class CodeVersion(msgspec.Struct, frozen=True):
    """The code a run executed and where: its *fingerprint*."""

    commit: str
    """git commit of the checkout, or ``unknown`` outside one."""
    dirty: bool
    """Whether the checkout had uncommitted changes."""
    python: str
    packages: dict[str, str]
    platform: dict[str, str] = {}
    """machine, system, libc (glibc also carries libm), the CPU numba compiles for and its
    features, numpy's SIMD targets (see :func:`platform_fingerprint`); empty in manifests
    written before it was recorded."""

    def differences(self, other: CodeVersion) -> list[str]:
        """Human-readable ways ``other`` differs from this version, code first, then
        libraries, then the platform."""
        out = []
        if (self.commit, self.dirty) != (other.commit, other.dirty):
            out.append(
                f"commit {self.commit[:12]}{'+dirty' if self.dirty else ''} vs "
                f"{other.commit[:12]}{'+dirty' if other.dirty else ''}"
            )
        if self.python != other.python:
            out.append(f"python {self.python} vs {other.python}")
        for name in sorted(set(self.packages) | set(other.packages)):
            a, b = self.packages.get(name, "-"), other.packages.get(name, "-")
            if a != b:
                out.append(f"{name} {a} vs {b}")
        if self.platform:
            out += _platform_differences(self.platform, other.platform)
        return out

    def differing(self, other: CodeVersion) -> set[str]:
        """Names of the libraries and platform entries that differ (``commit`` for the code)."""
        names = {n for n in set(self.packages) | set(other.packages)
                 if self.packages.get(n) != other.packages.get(n)}  # fmt: skip
        if self.platform:
            names |= {k for k in set(self.platform) | set(other.platform)
                      if self.platform.get(k) != other.platform.get(k)}  # fmt: skip
        if (self.commit, self.dirty) != (other.commit, other.dirty):
            names.add("commit")
        return names


def _platform_differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, "-"), b.get(key, "-")
        if x == y:
            continue
        if key in FEATURE_LISTS:
            xs, ys = set(x.split(",")), set(y.split(","))
            gone, new = sorted(xs - ys), sorted(ys - xs)
            out.append(f"{key}: " + " ".join([*(f"-{f}" for f in gone), *(f"+{f}" for f in new)]))
        else:
            out.append(f"{key} {x} vs {y}")
    return out


def platform_fingerprint() -> dict[str, str]:
    """Where a run executes, as far as it can change floating-point results: the machine,
    the OS, the C library (on glibc, libm comes with it), the CPU numba (LLVM) compiles for
    and the features it enables, and the SIMD targets numpy dispatches to."""
    libc, version = platform.libc_ver()
    out = {
        "machine": platform.machine(),
        "system": platform.system(),
        "libc": f"{libc} {version}".strip() or "unknown",
    }
    try:
        import llvmlite.binding as llvm

        out["cpu"] = llvm.get_host_cpu_name()
        features = llvm.get_host_cpu_features().flatten().split(",")
        out["cpu_features"] = ",".join(sorted(f[1:] for f in features if f.startswith("+")))
    except (ImportError, RuntimeError):
        out["cpu"] = "unknown"
    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
        enabled = [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]
        out["numpy_simd"] = ",".join([*umath.__cpu_baseline__, *enabled])
    except (ImportError, AttributeError):
        out["numpy_simd"] = "unknown"
    return out


class OutputSummary(msgspec.Struct, frozen=True):
    """One derived topic of a run: how many events, their hash chain, their time range."""

    port: str
    stage: str
    topic: str
    schema: str
    count: int
    chain: str
    """Hash chain over the topic's canonical bytes (``engine.runtime.hashing``)."""
    first_ts: int
    last_ts: int


class RunManifest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to reproduce a run and to check a reproduction."""

    run_id: str
    session: str
    pipeline: str
    status: str
    """``running`` (in progress or killed: ``tape run --run-id`` resumes it), ``stopped`` (a
    live run stopped by its operator: verifiable as it stands, and resumable) or
    ``complete``."""
    journal_topic: str
    journal_start: int
    journal_stop: int
    """One past the last journal offset the run consumed."""
    code: CodeVersion
    config: dict[str, object]
    config_hash: str
    models: dict[str, str] = {}
    """Model artifacts the config names, by name, with their content hashes."""
    outputs: list[OutputSummary] = []
    outputs_hash: str = ""
    """sha256 over every output's port, count and chain: one value for a whole run."""
    started: str = ""
    wall_seconds: float = 0.0
    events_per_second: float = 0.0
    resumed_from: list[int] = []
    """Journal offsets of the snapshots this run resumed from, if it was interrupted."""
    report: dict[str, dict[str, object]] = {}
    """End-of-run summaries by stage id (e.g. the ``trading`` stage's account report)."""


def outputs_hash(outputs: list[OutputSummary]) -> str:
    """The single hash of a run's outputs (port, count and chain of each, in order)."""
    digest = hashlib.sha256()
    for out in outputs:
        digest.update(f"{out.port}\0{out.count}\0{out.chain}\n".encode())
    return digest.hexdigest()


def code_version() -> CodeVersion:
    """The running code: git commit and dirty flag of this checkout, Python, packages."""
    root = Path(__file__).resolve().parents[2]
    commit, dirty = "unknown", False
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        pass
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return CodeVersion(commit, dirty, platform.python_version(), packages, _platform())


@functools.cache
def _platform() -> dict[str, str]:
    return platform_fingerprint()


def changed_since(commit: str, paths: list[str]) -> list[str]:
    """Files under ``paths`` (relative to the checkout) that differ between ``commit`` and the
    working tree, uncommitted changes included; empty when git cannot tell."""
    root = Path(__file__).resolve().parents[2]
    try:
        return _git(root, "diff", "--name-only", commit, "--", *paths).splitlines()
    except (OSError, subprocess.CalledProcessError):
        return []


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def run_dir(data: Path, run_id: str) -> Path:
    """Directory of one run: its manifest and snapshots."""
    if not RUN_ID.match(run_id):
        raise RunError(f"invalid run id {run_id!r}: use 1-100 characters from A-Z a-z 0-9 _ -")
    return data / "runs" / run_id


def read_manifest(data: Path, run_id: str) -> RunManifest:
    """The manifest of ``run_id``."""
    path = run_dir(data, run_id) / "manifest.json"
    if not path.is_file():
        known = ", ".join(m.run_id for m in list_runs(data)) or "none"
        raise RunError(f"no run {run_id!r} in {data} (runs: {known}); see `tape runs`")
    try:
        return msgspec.json.decode(path.read_bytes(), type=RunManifest)
    except msgspec.DecodeError as exc:
        raise RunError(f"cannot read {path}: {exc}") from None


def write_manifest(data: Path, manifest: RunManifest) -> None:
    """Write a run's manifest atomically."""
    path = run_dir(data, manifest.run_id) / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, msgspec.json.format(msgspec.json.encode(manifest), indent=2))


def list_runs(data: Path) -> list[RunManifest]:
    """Every run with a readable manifest, oldest first."""
    base = data / "runs"
    if not base.is_dir():
        return []
    found = []
    for path in base.glob("*/manifest.json"):
        try:
            found.append(msgspec.json.decode(path.read_bytes(), type=RunManifest))
        except msgspec.DecodeError:
            continue
    return sorted(found, key=lambda m: (m.started, m.run_id))


def new_run_id(data: Path, session: str, pipeline: str) -> str:
    """``<session>-<pipeline>-<n>``, the first n not taken."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", f"{session}-{pipeline}")[:90]
    n = 1
    while (data / "runs" / f"{stem}-{n}").exists():
        n += 1
    return f"{stem}-{n}"


def output_topic(run_id: str, port: str) -> str:
    """The topic holding ``port``'s events in run ``run_id``."""
    return f"run.{run_id}.{port}"
