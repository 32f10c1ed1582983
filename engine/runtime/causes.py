"""Why a replay may differ from its run: the likely causes, most likely first.

A run's manifest records its fingerprint (:class:`~engine.runtime.manifest.CodeVersion`): the
commit, every library that can shape outputs, and the platform. When a replay diverges at an
event of some stage, the causes that could explain it are, in order:

1. the stage's own code changed since the run's commit (``git diff`` of its package), or the
   run was made from a checkout with uncommitted changes;
2. a library the stage's modules import (numba brings llvmlite; ``zoneinfo`` reads tzdata)
   has another version now;
3. the platform differs where the stage's arithmetic depends on it: the CPU and its features
   for numba-compiled loops, numpy's SIMD targets, the C library (libm) and the machine;
4. nothing recorded differs: the stage gave other bytes on the same code, libraries and
   platform, so it is not deterministic: a bug to report with the divergence.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

from engine.runtime.manifest import PACKAGES, CodeVersion, changed_since
from engine.runtime.topology import Stage

IMPLIED = {"numba": ("llvmlite",), "zoneinfo": ("tzdata",), "exchange_calendars": ("pandas",)}
"""Libraries a stage depends on through another one it imports."""
PLATFORM_FOR = {"numba": ("cpu", "cpu_features"), "numpy": ("numpy_simd",)}
"""Platform entries that matter to code using a library."""
ALWAYS = ("machine", "system", "libc")
ROOT = Path(__file__).resolve().parents[2]


def package_dir(module: str) -> Path | None:
    """The directory of the package a module belongs to (None: not found on disk)."""
    spec = importlib.util.find_spec(module)
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


@cache
def stage_libraries(module: str) -> frozenset[str]:
    """Libraries of :data:`PACKAGES` that the modules of ``module``'s package import."""
    directory = package_dir(module)
    if directory is None:
        return frozenset()
    names: set[str] = set()
    for path in directory.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    for name in list(names):
        names |= set(IMPLIED.get(name, ()))
    return frozenset(n for n in names if n in PACKAGES)


def likely_causes(stage: Stage, recorded: CodeVersion, now: CodeVersion) -> list[str]:
    """What may explain a divergence first seen in ``stage``'s output (module docstring)."""
    module = stage.build.__module__
    package = package_dir(module)
    known = package is not None and package.is_relative_to(ROOT) and recorded.commit != "unknown"
    where = [str(package.relative_to(ROOT))] if known and package is not None else []
    out = []
    changed = changed_since(recorded.commit, where) if where else []
    if changed:
        out.append(
            f"the code of stage {stage.id!r} changed since the run's commit "
            f"{recorded.commit[:12]}: {', '.join(changed)}"
        )
    if recorded.dirty:
        out.append(
            f"the run was made from a checkout with uncommitted changes (commit "
            f"{recorded.commit[:12]}+dirty): what differed then is not recorded"
        )
    used = stage_libraries(module) | {"numpy"}
    for name in sorted(used):
        version, current = recorded.packages.get(name, "-"), now.packages.get(name, "-")
        if version != current:
            out.append(f"{name} {version} vs {current} now, which stage {stage.id!r} uses")
    keys = [*ALWAYS, *(k for lib in sorted(used) for k in PLATFORM_FOR.get(lib, ()))]
    for key in keys:
        before, after = recorded.platform.get(key), now.platform.get(key)
        if recorded.platform and before != after:
            out.append(f"platform {key} differs ({_short(before)} vs {_short(after)})")
    if not out:
        out.append(
            f"nothing recorded differs for stage {stage.id!r} (code, libraries, platform): it "
            "gave other bytes from the same inputs, so it is not deterministic; a bug: report it "
            "with this output"
        )
    return out


def _short(value: str | None) -> str:
    text = "-" if value is None else value
    return text if len(text) <= 60 else text[:57] + "..."
