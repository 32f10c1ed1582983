"""Static determinism guards for stream code (DESIGN.md, Principles 1 and 2).

A processor may depend on nothing but its journal events, its config and its seed. This module
reads Python source (without importing it) and reports the usual ways other inputs leak in:

``wall-clock``
    ``time.time()``, ``time.monotonic()``, ``datetime.now()``, ``date.today()``, ``os.times()``...
``randomness``
    anything on the ``random`` module, ``numpy.random.*`` other than a generator built from an
    explicit seed (``default_rng(seed)``, ``Generator(PCG64(seed))``, ``SeedSequence(seed)``),
    ``os.urandom``, ``os.getrandom``, ``secrets.*``, ``uuid.uuid1`` / ``uuid.uuid4``.
``environment``
    ``os.environ``, ``os.getenv`` (and ``putenv`` / ``unsetenv``).
``threads``
    importing ``threading``, ``_thread``, ``concurrent.futures`` or ``multiprocessing``.
``set-order``
    iterating something that is syntactically a set in an order-dependent way: ``for``
    loops, comprehensions (except those fed straight to ``sorted`` / ``len`` / ``min`` /
    ``max`` / ``sum`` / ``any`` / ``all`` / ``set`` / ``frozenset``, and set comprehensions),
    ``list`` / ``tuple`` / ``iter`` / ``enumerate`` / ``zip`` / ``map`` / ``filter`` /
    ``str.join`` / ``.extend`` / ``dict.fromkeys`` / ``numpy.array``, ``*S`` unpacking, tuple
    unpacking and ``S.pop()``. A set is a set display or comprehension, a ``set()`` /
    ``frozenset()`` call, ``S.union(...)`` and friends, ``a | b``, ``a & b``, ``a - b``,
    ``a ^ b`` with a set operand, or a name (or ``self.attr``) assigned such a value or
    annotated as a set anywhere in its scope. ``sorted(S)``, ``len(S)``, ``x in S`` and the
    reductions are order-independent and allowed.
``hash``
    calls to the builtin ``hash()``: for ``str`` and ``bytes`` it changes with PYTHONHASHSEED.

Import aliases are resolved (``import time as t``, ``from time import time``,
``from datetime import datetime as dt``, ``import numpy as np``). A line opts out with a
trailing comment ``# determinism: ok (<reason>)``; the reason is required.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# -- what is forbidden -------------------------------------------------------------------------

WALL_CLOCK = frozenset(
    {
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.process_time",
        "time.process_time_ns",
        "time.thread_time",
        "time.thread_time_ns",
        "time.clock_gettime",
        "time.clock_gettime_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "os.times",
    }
)
CLOCK_WITHOUT_ARGUMENT = frozenset({"time.localtime", "time.gmtime", "time.ctime", "time.asctime"})
"""These read the clock only when called without a time."""

ALWAYS_RANDOM = frozenset(
    {"os.urandom", "os.getrandom", "uuid.uuid1", "uuid.uuid4", "random.SystemRandom"}
)
SEEDABLE = frozenset(
    {
        "numpy.random.default_rng",
        "numpy.random.Generator",
        "numpy.random.SeedSequence",
        "numpy.random.PCG64",
        "numpy.random.PCG64DXSM",
        "numpy.random.Philox",
        "numpy.random.SFC64",
        "numpy.random.MT19937",
        "random.Random",
    }
)
"""Allowed when called with an explicit seed (not a literal ``None``)."""

RANDOM_MODULES = ("random", "numpy.random")
ENVIRONMENT = frozenset({"os.getenv", "os.getenvb", "os.putenv", "os.unsetenv"})
ENVIRONMENT_MAPPINGS = ("os.environ", "os.environb")
THREAD_MODULES = ("threading", "_thread", "concurrent.futures", "multiprocessing")

ORDER_FREE_CONSUMERS = frozenset(
    {"sorted", "len", "min", "max", "sum", "any", "all", "set", "frozenset"}
)
"""Builtins whose result does not depend on the order they are fed."""
ORDER_DEPENDENT_BUILTINS = frozenset({"list", "tuple", "iter", "enumerate", "zip", "map", "filter"})
ORDER_DEPENDENT_RESOLVED = frozenset({"numpy.array", "numpy.asarray", "numpy.fromiter"})
SET_METHODS = frozenset({"union", "intersection", "difference", "symmetric_difference", "copy"})
SET_TYPES = frozenset({"set", "frozenset", "Set", "AbstractSet", "MutableSet", "FrozenSet"})
SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)

OPT_OUT = re.compile(r"#\s*determinism\s*:\s*ok\b(?P<rest>.*)$", re.IGNORECASE)
OPT_OUT_REASON = re.compile(r"^\s*\(\s*[^)\s][^)]*\)")

USE_EVENT_TIME = "take time from events (ts_event), not the wall clock"
USE_STAGE_RNG = (
    "take randomness from StageContext.rng (a numpy Generator seeded from the run), "
    "or build one with np.random.default_rng(seed)"
)
USE_CONFIG = "pass settings through the stage config, not the process environment"
NO_THREADS = (
    "a processor is a single-threaded state machine driven by the runner; thread timing must "
    "not reach it"
)
USE_ORDER = (
    "set order depends on hashing (PYTHONHASHSEED) and insertion history: iterate "
    "sorted(...) instead, or keep a list / dict (insertion-ordered)"
)
USE_DIGEST = (
    "hash() of str/bytes changes with PYTHONHASHSEED: use a stable digest "
    "(zlib.crc32, hashlib.blake2b) or an explicit mapping"
)


@dataclass(frozen=True, order=True)
class Violation:
    """One determinism violation found in a source file."""

    file: str
    line: int
    col: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}: [{self.rule}] {self.message}"


def check_tree(root: Path) -> list[Violation]:
    """Violations in every ``*.py`` file under ``root`` (sorted by file and position)."""
    found: list[Violation] = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        found += find_violations(path.read_text(encoding="utf-8"), str(path))
    return sorted(found)


def find_violations(source: str, filename: str) -> list[Violation]:
    """Determinism violations in ``source`` (a module's text; ``filename`` is for reports)."""
    tree = ast.parse(source, filename=filename)
    checker = _Checker(filename, tree)
    checker.run()
    opt_outs = _opt_out_comments(source)
    kept = []
    for v in checker.found:
        reason = opt_outs.get(v.line)
        if reason is True:
            continue
        if reason is False:
            v = Violation(
                v.file,
                v.line,
                v.col,
                v.rule,
                v.message + " (the `# determinism: ok` comment on this line needs a reason: "
                "`# determinism: ok (<why this is safe>)`)",
            )
        kept.append(v)
    return sorted(set(kept))


def _opt_out_comments(source: str) -> dict[int, bool]:
    """Line -> whether its ``# determinism: ok`` comment gives a reason."""
    out: dict[int, bool] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT:
            match = OPT_OUT.search(token.string)
            if match:
                out[token.start[0]] = bool(OPT_OUT_REASON.match(match["rest"]))
    return out


# -- scopes: which names hold sets ---------------------------------------------------------------


@dataclass(eq=False)
class _Class:
    attr_values: list[tuple[str, ast.expr, _Scope]] = field(default_factory=list)
    set_attrs: set[str] = field(default_factory=set)


@dataclass(eq=False)
class _Scope:
    parent: _Scope | None
    """The enclosing scope names resolve through (class bodies are skipped, as in Python)."""
    owner: _Class | None = None
    """For a method: the class whose ``self`` it receives."""
    local_names: set[str] = field(default_factory=set)
    values: list[tuple[str, ast.expr]] = field(default_factory=list)
    set_names: set[str] = field(default_factory=set)
    imported: set[str] = field(default_factory=set)

    def lookup(self, name: str) -> _Scope | None:
        scope: _Scope | None = self
        while scope is not None and name not in scope.local_names:
            scope = scope.parent
        return scope


class _Checker:
    def __init__(self, filename: str, tree: ast.Module) -> None:
        self.filename = filename
        self.tree = tree
        self.found: list[Violation] = []
        self.aliases: dict[str, str] = {}
        self.scopes: dict[ast.AST, _Scope] = {}
        self.classes: list[_Class] = []
        self.exempt: set[ast.AST] = set()

    def run(self) -> None:
        self._collect_imports()
        module = _Scope(parent=None)
        self.scopes[self.tree] = module
        self._bind_scope(self.tree.body, module, None)
        self._solve_sets()
        self._visit(self.tree, module)

    # -- imports -----------------------------------------------------------------------------

    def _collect_imports(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
                    self._check_thread_import(node, alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if alias.name != "*":
                        self.aliases[alias.asname or alias.name] = full
                    self._check_thread_import(node, full)

    def _check_thread_import(self, node: ast.stmt, name: str) -> None:
        for banned in THREAD_MODULES:
            if name == banned or name.startswith(banned + "."):
                self._report(node, "threads", f"import of `{banned}`: {NO_THREADS}")
                return

    def resolve(self, node: ast.expr, scope: _Scope) -> str | None:
        """Dotted name of an imported object an expression refers to, if it is one."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.aliases:
            return None
        home = scope.lookup(node.id)
        if home is not None and node.id not in home.imported:
            return None  # a local variable that happens to share an imported name
        return ".".join([self.aliases[node.id], *reversed(parts)])

    def _is_builtin(self, node: ast.expr, *names: str) -> bool:
        return isinstance(node, ast.Name) and node.id in names and node.id not in self.aliases

    # -- binding pass --------------------------------------------------------------------------

    def _bind_scope(self, body: Iterable[ast.AST], scope: _Scope, cls: _Class | None) -> None:
        """Record what ``body`` binds in ``scope``; create the scopes nested in it."""
        for stmt in body:
            for node in _walk_scope(stmt):
                self._bind_node(node, scope, cls)

    def _bind_node(self, node: ast.AST, scope: _Scope, cls: _Class | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if not isinstance(node, ast.Lambda):
                scope.local_names.add(node.name)
            parent = scope.parent if cls is not None else scope  # methods skip the class body
            inner = _Scope(parent=parent, owner=cls or scope.owner)
            self.scopes[node] = inner
            arguments = node.args
            for arg in [
                *arguments.posonlyargs,
                *arguments.args,
                *arguments.kwonlyargs,
                *([arguments.vararg] if arguments.vararg else []),
                *([arguments.kwarg] if arguments.kwarg else []),
            ]:
                inner.local_names.add(arg.arg)
                if arg.annotation is not None and self._is_set_annotation(arg.annotation):
                    inner.set_names.add(arg.arg)
            self._bind_scope(_body(node), inner, None)
        elif isinstance(node, ast.ClassDef):
            scope.local_names.add(node.name)
            info = _Class()
            self.classes.append(info)
            inner = _Scope(parent=scope, owner=None)
            self.scopes[node] = inner
            self._bind_scope(node.body, inner, info)
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and self._is_set_annotation(stmt.annotation)
                ):
                    info.set_attrs.add(stmt.target.id)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                self._bind_target(target, node.value, scope)
        elif isinstance(node, ast.AnnAssign):
            self._bind_target(node.target, node.value, scope)
            if self._is_set_annotation(node.annotation):
                if isinstance(node.target, ast.Name):
                    scope.set_names.add(node.target.id)
                elif _is_self_attr(node.target) and scope.owner is not None:
                    assert isinstance(node.target, ast.Attribute)
                    scope.owner.set_attrs.add(node.target.attr)
        elif isinstance(node, ast.AugAssign | ast.NamedExpr):
            self._bind_target(node.target, node.value, scope)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._bind_target(node.target, None, scope)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            self._bind_target(node.optional_vars, None, scope)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.local_names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                scope.local_names.add(bound)
                scope.imported.add(bound)

    def _bind_target(self, target: ast.expr, value: ast.expr | None, scope: _Scope) -> None:
        if isinstance(target, ast.Name):
            scope.local_names.add(target.id)
            if value is not None:
                scope.values.append((target.id, value))
        elif isinstance(target, ast.Tuple | ast.List):
            pairs = (
                value.elts
                if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts)
                else [None] * len(target.elts)
            )
            for t, v in zip(target.elts, pairs, strict=True):
                self._bind_target(t, v, scope)
        elif isinstance(target, ast.Starred):
            self._bind_target(target.value, None, scope)
        elif _is_self_attr(target) and scope.owner is not None and value is not None:
            assert isinstance(target, ast.Attribute)
            scope.owner.attr_values.append((target.attr, value, scope))

    def _is_set_annotation(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._is_set_annotation(node.left) or self._is_set_annotation(node.right)
        if isinstance(node, ast.Subscript):
            node = node.value
        if isinstance(node, ast.Name):
            return node.id in SET_TYPES
        return isinstance(node, ast.Attribute) and node.attr in SET_TYPES

    def _solve_sets(self) -> None:
        """Grow the set-holding names and attributes until nothing changes (a fixed point)."""
        changed = True
        while changed:
            changed = False
            for scope in self.scopes.values():
                for name, value in scope.values:
                    if name not in scope.set_names and self.is_set(value, scope):
                        scope.set_names.add(name)
                        changed = True
            for info in self.classes:
                for attr, value, scope in info.attr_values:
                    if attr not in info.set_attrs and self.is_set(value, scope):
                        info.set_attrs.add(attr)
                        changed = True

    def is_set(self, node: ast.expr, scope: _Scope) -> bool:
        """Whether ``node`` is syntactically a set."""
        if isinstance(node, ast.Set | ast.SetComp):
            return True
        if isinstance(node, ast.Call):
            if self._is_builtin(node.func, "set", "frozenset"):
                return True
            func = node.func
            return (
                isinstance(func, ast.Attribute)
                and func.attr in SET_METHODS
                and self.is_set(func.value, scope)
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, SET_OPERATORS):
            return self.is_set(node.left, scope) or self.is_set(node.right, scope)
        if isinstance(node, ast.Name):
            home = scope.lookup(node.id)
            return home is not None and node.id in home.set_names
        if _is_self_attr(node):
            assert isinstance(node, ast.Attribute)
            return scope.owner is not None and node.attr in scope.owner.set_attrs
        if isinstance(node, ast.IfExp):
            return self.is_set(node.body, scope) or self.is_set(node.orelse, scope)
        if isinstance(node, ast.NamedExpr):
            return self.is_set(node.value, scope)
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            return self.is_set(node.values[0], scope)  # ``s or set()``, ``s or ()``
        return False

    # -- checking pass -------------------------------------------------------------------------

    def _visit(self, node: ast.AST, scope: _Scope) -> None:
        if node in self.scopes and node is not self.tree:
            inner = self.scopes[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                for decorator in node.decorator_list:
                    self._visit(decorator, scope)
            if isinstance(node, ast.ClassDef):
                for base in [*node.bases, *node.keywords]:
                    self._visit(base, scope)
                for statement in node.body:
                    self._visit(statement, inner)
                return
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    self._visit(default, scope)
            for part in _body(node):
                self._visit(part, inner)
            return
        if isinstance(node, ast.Call):
            if self._check_call(node, scope):
                for child in [*node.args, *node.keywords]:
                    self._visit(child, scope)
                return
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
            name = self.resolve(node, scope)
            if name is not None:
                self._check_reference(node, name)
                return
        elif isinstance(node, ast.For | ast.AsyncFor):
            self._check_iterated(node.iter, scope, "a `for` loop over a set")
        elif isinstance(node, ast.ListComp | ast.DictComp | ast.GeneratorExp):
            if node not in self.exempt:
                for generator in node.generators:
                    self._check_iterated(generator.iter, scope, "a comprehension over a set")
        elif isinstance(node, ast.Set):
            self.exempt.update(e for e in node.elts if isinstance(e, ast.Starred))
        elif isinstance(node, ast.Starred) and isinstance(node.ctx, ast.Load):
            if node not in self.exempt:
                self._check_iterated(node.value, scope, "`*` unpacking of a set")
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Tuple | ast.List) for t in node.targets):
                self._check_iterated(node.value, scope, "tuple unpacking of a set")
        elif isinstance(node, ast.AnnAssign):
            # The annotation is not evaluated code; only the value is checked.
            if node.value is not None:
                self._visit(node.value, scope)
            return
        elif isinstance(node, ast.arguments):
            return  # annotations and defaults are handled with their function
        for child in ast.iter_child_nodes(node):
            self._visit(child, scope)

    def _check_call(self, node: ast.Call, scope: _Scope) -> bool:
        """Check a call; True if its ``func`` needs no further visit."""
        func = node.func
        name = self.resolve(func, scope)
        if name is not None:
            self._check_called(node, name)
            if name in ORDER_DEPENDENT_RESOLVED:
                for arg in node.args[:1]:
                    self._check_iterated(arg, scope, f"`{name}()` of a set")
            return True
        if isinstance(func, ast.Name) and func.id not in self.aliases:
            if func.id == "hash" and scope.lookup("hash") is None:
                self._report(node, "hash", f"builtin `hash()`: {USE_DIGEST}")
            elif func.id in ORDER_FREE_CONSUMERS and scope.lookup(func.id) is None:
                self.exempt.update(
                    a for a in node.args if isinstance(a, ast.GeneratorExp | ast.ListComp)
                )
            elif func.id in ORDER_DEPENDENT_BUILTINS and scope.lookup(func.id) is None:
                for arg in node.args:
                    self._check_iterated(arg, scope, f"`{func.id}()` of a set")
        elif isinstance(func, ast.Attribute):
            if func.attr in ("join", "extend", "fromkeys") and node.args:
                self._check_iterated(node.args[0], scope, f"`.{func.attr}()` of a set")
            elif func.attr == "pop" and not node.args and self.is_set(func.value, scope):
                self._report(
                    node, "set-order", f"`set.pop()` takes an arbitrary element: {USE_ORDER}"
                )
        return False

    def _check_called(self, node: ast.Call, name: str) -> None:
        if name in CLOCK_WITHOUT_ARGUMENT and not node.args:
            self._report(
                node, "wall-clock", f"`{name}()` without a time reads the clock: {USE_EVENT_TIME}"
            )
        elif name in SEEDABLE:
            if not _has_seed(node):
                self._report(node, "randomness", f"`{name}()` without a seed: {USE_STAGE_RNG}")
        else:
            self._check_reference(node, name, called=True)

    def _check_reference(self, node: ast.expr, name: str, *, called: bool = False) -> bool:
        """Report a forbidden object; True if one was reported."""
        shown = f"`{name}()`" if called else f"`{name}`"
        last = name.rsplit(".", 1)[-1]
        if name in WALL_CLOCK:
            self._report(node, "wall-clock", f"{shown} reads the wall clock: {USE_EVENT_TIME}")
        elif name in ALWAYS_RANDOM or name.startswith("secrets."):
            self._report(node, "randomness", f"{shown} is unseeded randomness: {USE_STAGE_RNG}")
        elif name in RANDOM_MODULES or (
            name.startswith(tuple(m + "." for m in RANDOM_MODULES))
            and (called or last[:1].islower())  # a bare class (a type check) is fine
        ):
            self._report(
                node, "randomness", f"{shown} is global or unseeded randomness: {USE_STAGE_RNG}"
            )
        elif name in ENVIRONMENT or any(
            name == m or name.startswith(m + ".") for m in ENVIRONMENT_MAPPINGS
        ):
            self._report(
                node, "environment", f"{shown} reads the process environment: {USE_CONFIG}"
            )
        else:
            return False
        return True

    def _check_iterated(self, node: ast.expr, scope: _Scope, what: str) -> None:
        if self.is_set(node, scope):
            self._report(node, "set-order", f"{what} depends on its iteration order: {USE_ORDER}")

    def _report(self, node: ast.AST, rule: str, message: str) -> None:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", 0)
        self.found.append(Violation(self.filename, line, col, rule, message))


def _has_seed(node: ast.Call) -> bool:
    first: ast.expr | None = node.args[0] if node.args else None
    if first is None and node.keywords:
        first = node.keywords[0].value
    if first is None or isinstance(first, ast.Starred):
        return first is not None
    return not (isinstance(first, ast.Constant) and first.value is None)


def _is_self_attr(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("self", "cls")
    )


def _body(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Sequence[ast.AST]:
    return [node.body] if isinstance(node, ast.Lambda) else node.body


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and what it contains, without entering nested functions, lambdas or classes
    (which are yielded, so the caller can open their scopes)."""
    yield node
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_scope(child)
