"""Code in ``streams/`` reads no wall clock, no unseeded randomness, no environment, starts no
threads and never depends on set iteration order (issue 4, item 6); and each guard fires on
the forms it is meant to catch, including through import aliases, and only on those."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.runtime.guards import Violation, check_tree, find_violations

STREAMS = Path(__file__).resolve().parents[2] / "streams"


def violations(source: str) -> list[Violation]:
    return find_violations(textwrap.dedent(source), "snippet.py")


def rules(source: str) -> list[str]:
    return [v.rule for v in violations(source)]


def test_streams_are_deterministic() -> None:
    assert STREAMS.is_dir()
    found = check_tree(STREAMS)
    listing = "\n".join(f"  {v}" for v in found)
    assert not found, (
        f"{len(found)} determinism violation(s) in streams/ (processors must depend only on "
        f"their events, config and seed; see DESIGN.md, Principles):\n{listing}\n"
        "Fix them, or, if a use is provably harmless, end its line with "
        "`# determinism: ok (<reason>)`."
    )


WALL_CLOCK = {
    "time.time": "import time\nx = time.time()",
    "time.time_ns": "import time\nx = time.time_ns()",
    "time.monotonic": "import time\nx = time.monotonic()",
    "time.monotonic_ns": "import time\nx = time.monotonic_ns()",
    "time.perf_counter": "import time\nx = time.perf_counter()",
    "time.perf_counter_ns": "import time\nx = time.perf_counter_ns()",
    "time.process_time": "import time\nx = time.process_time()",
    "time.clock_gettime": "import time\nx = time.clock_gettime(time.CLOCK_REALTIME)",
    "import time as t": "import time as t\nx = t.time()",
    "from time import time": "from time import time\nx = time()",
    "from time import monotonic as m": "from time import monotonic as m\nx = m()",
    "time.time as a value": "import time\nclock = time.time",
    "time.localtime()": "import time\nx = time.localtime()",
    "datetime.datetime.now": "import datetime\nx = datetime.datetime.now()",
    "datetime.datetime.utcnow": "import datetime\nx = datetime.datetime.utcnow()",
    "datetime.datetime.today": "import datetime\nx = datetime.datetime.today()",
    "from datetime import datetime": "from datetime import datetime\nx = datetime.now()",
    "datetime as dt": "from datetime import datetime as dt, timezone\nx = dt.now(timezone.utc)",
    "date.today": "from datetime import date\nx = date.today()",
    "import datetime as d": "import datetime as d\nx = d.date.today()",
    "os.times": "import os\nx = os.times()",
}
RANDOMNESS = {
    "random.random": "import random\nx = random.random()",
    "random.shuffle": "import random\nrandom.shuffle(items)",
    "random.Random()": "import random\nr = random.Random()",
    "random.Random(None)": "import random\nr = random.Random(None)",
    "random.SystemRandom": "import random\nr = random.SystemRandom(1)",
    "from random import choice": "from random import choice\nx = choice(items)",
    "import random as rnd": "import random as rnd\nx = rnd.randint(1, 6)",
    "random module as a value": "import random\nsource = random",
    "random function as a value": "import random\nkey = random.random",
    "np.random.rand": "import numpy as np\nx = np.random.rand(3)",
    "np.random.seed": "import numpy as np\nnp.random.seed(1)",
    "np.random.RandomState": "import numpy as np\nr = np.random.RandomState(1)",
    "np.random.default_rng()": "import numpy as np\nr = np.random.default_rng()",
    "default_rng(None)": "import numpy as np\nr = np.random.default_rng(None)",
    "default_rng(seed=None)": "import numpy as np\nr = np.random.default_rng(seed=None)",
    "PCG64()": "import numpy as np\nr = np.random.Generator(np.random.PCG64())",
    "SeedSequence()": "import numpy as np\ns = np.random.SeedSequence()",
    "default_rng as a factory": "import numpy as np\nmake = np.random.default_rng",
    "import numpy.random": "import numpy.random\nx = numpy.random.normal()",
    "import numpy.random as npr": "import numpy.random as npr\nx = npr.normal()",
    "from numpy import random": "from numpy import random\nx = random.normal()",
    "from numpy.random import default_rng": (
        "from numpy.random import default_rng\nr = default_rng()"
    ),
    "os.urandom": "import os\nx = os.urandom(8)",
    "os.getrandom": "import os\nx = os.getrandom(8)",
    "from os import urandom": "from os import urandom\nx = urandom(8)",
    "secrets": "import secrets\nx = secrets.token_hex(8)",
    "from secrets import choice": "from secrets import choice\nx = choice(items)",
    "uuid.uuid1": "import uuid\nx = uuid.uuid1()",
    "uuid.uuid4": "import uuid\nx = uuid.uuid4()",
    "from uuid import uuid4": "from uuid import uuid4\nx = uuid4()",
}
ENVIRONMENT = {
    "os.environ": "import os\nx = os.environ['HOME']",
    "os.environ.get": "import os\nx = os.environ.get('HOME')",
    "from os import environ": "from os import environ\nx = environ['HOME']",
    "os.getenv": "import os\nx = os.getenv('HOME')",
    "from os import getenv": "from os import getenv as ge\nx = ge('HOME')",
}
THREADS = {
    "import threading": "import threading",
    "from threading import Lock": "from threading import Lock",
    "import concurrent.futures": "import concurrent.futures",
    "from concurrent import futures": "from concurrent import futures",
    "from concurrent.futures import ...": "from concurrent.futures import ThreadPoolExecutor",
    "import multiprocessing as mp": "import multiprocessing as mp",
    "from multiprocessing.pool import Pool": "from multiprocessing.pool import Pool",
}
SET_ORDER = {
    "for over a set literal": "for x in {1, 2}:\n    pass",
    "for over set()": "for x in set(items):\n    pass",
    "for over frozenset()": "for x in frozenset(items):\n    pass",
    "for over a set comprehension": "for x in {i for i in items}:\n    pass",
    "for over a | b": "for x in set(a) | b:\n    pass",
    "for over a & b": "for x in a & set(b):\n    pass",
    "for over a - b": "for x in set(a) - b:\n    pass",
    "for over a ^ b": "for x in set(a) ^ b:\n    pass",
    "for over a set name": "s = set(items)\nfor x in s:\n    pass",
    "set name assigned later": "def f(items):\n    for x in s:\n        pass\n    s = set(items)",
    "set name through another": "s = set(items)\nt = s\nfor x in t:\n    pass",
    "module set used in function": "S = frozenset(items)\ndef f():\n    return [x for x in S]",
    "set method result": "s = set(a)\nfor x in s.union(b):\n    pass",
    "annotated set name": "s: set[int] = make()\nfor x in s:\n    pass",
    "set-annotated parameter": "def f(s: frozenset[str]):\n    for x in s:\n        pass",
    "optional set parameter": "def f(s: set[int] | None):\n    return list(s or ())",
    "self attribute set": (
        "class A:\n"
        "    def __init__(self):\n"
        "        self.seen = set()\n"
        "    def run(self):\n"
        "        for x in self.seen:\n"
        "            pass"
    ),
    "set-annotated field": (
        "class A:\n    seen: set[int]\n    def run(self):\n        return list(self.seen)"
    ),
    "async for over a set": "async def f():\n    async for x in set(items):\n        pass",
    "list comprehension": "s = set(items)\nx = [i for i in s]",
    "generator expression": "s = set(items)\nx = (i for i in s)",
    "dict comprehension": "s = set(items)\nx = {i: 1 for i in s}",
    "nested comprehension generator": "x = [(i, j) for i in items for j in set(i)]",
    "list(S)": "s = set(items)\nx = list(s)",
    "tuple(S)": "x = tuple({1, 2})",
    "next(iter(S))": "s = set(items)\nx = next(iter(s))",
    "enumerate(S)": "for i, x in enumerate(set(items)):\n    pass",
    "zip(S)": "x = zip(items, set(items))",
    "map over S": "x = map(str, set(items))",
    "join(S)": "x = ''.join(set(items))",
    "extend(S)": "out.extend(set(items))",
    "dict.fromkeys(S)": "x = dict.fromkeys(set(items))",
    "np.array(S)": "import numpy as np\nx = np.array(set(items))",
    "star unpacking": "x = [*set(items)]",
    "star arguments": "f(*set(items))",
    "tuple unpacking": "a, b = {1, 2}",
    "set.pop()": "s = set(items)\nx = s.pop()",
    "walrus": "if (s := set(items)):\n    for x in s:\n        pass",
}
HASH = {
    "hash": "x = hash('abc')",
    "hash in a function": "def f(k):\n    return hash(k) % 8",
}

FIRES = [
    pytest.param(rule, source, id=f"{rule}: {case}")
    for rule, cases in [
        ("wall-clock", WALL_CLOCK),
        ("randomness", RANDOMNESS),
        ("environment", ENVIRONMENT),
        ("threads", THREADS),
        ("set-order", SET_ORDER),
        ("hash", HASH),
    ]
    for case, source in cases.items()
]


@pytest.mark.parametrize(("rule", "source"), FIRES)
def test_rule_fires(rule: str, source: str) -> None:
    assert rules(source) == [rule], violations(source)


ALLOWED = {
    "default_rng(seed)": "import numpy as np\nr = np.random.default_rng(seed)",
    "default_rng(seed=...)": "import numpy as np\nr = np.random.default_rng(seed=42)",
    "Generator(PCG64(seed))": "import numpy as np\nr = np.random.Generator(np.random.PCG64(7))",
    "SeedSequence(seed)": "import numpy as np\ns = np.random.SeedSequence(7)",
    "from numpy.random import default_rng": (
        "from numpy.random import default_rng\nr = default_rng(ctx.seed)"
    ),
    "seeded generator used": "import numpy as np\nx = np.random.default_rng(1).normal()",
    "random.Random(seed)": "import random\nr = random.Random(1234)",
    "Generator in an annotation": (
        "import numpy as np\ndef f(rng: np.random.Generator) -> np.random.Generator:\n"
        "    return rng"
    ),
    "Generator in isinstance": "import numpy as np\nok = isinstance(r, np.random.Generator)",
    "StageContext.rng": "def f(ctx):\n    return ctx.rng.integers(0, 10)",
    "time from events": "import time\nns = event.ts_event\ntime.sleep(0)",
    "datetime from a timestamp": (
        "from datetime import datetime, timezone\n"
        "x = datetime.fromtimestamp(ts / 1e9, timezone.utc)"
    ),
    "time.gmtime(ts)": "import time\nx = time.gmtime(ts)",
    "a local named like a module": "def f(time):\n    return time.time()",
    "attribute named time": "x = event.time()",
    "os.path": "import os\nx = os.path.join('a', 'b')",
    "uuid5": "import uuid\nx = uuid.uuid5(uuid.NAMESPACE_DNS, 'tapedeck')",
    "sorted(set(...))": "for x in sorted(set(items)):\n    pass",
    "sorted(a | b)": "s = set(a)\nfor x in sorted(s | set(b)):\n    pass",
    "len": "s = set(items)\nn = len(s)",
    "membership": "s = frozenset(items)\nok = x in s\nfor y in items:\n    ok = y in s",
    "reductions": "s = set(items)\nx = (min(s), max(s), sum(s), any(s), all(s))",
    "sorted generator": "s = set(items)\nx = sorted(i * 2 for i in s)",
    "set comprehension over a set": "s = set(items)\nt = {i * 2 for i in s}",
    "set from a set": "x = set(i for i in set(items))",
    "star into a set": "x = {*set(a), *b}",
    "set operations": "s = set(a) | set(b)\nt = s & set(c)\nn = len(s - t)",
    "for over a list": "for x in [1, 2]:\n    pass",
    "for over a dict": "for k in {'a': 1}:\n    pass",
    "bit operations on ints": "x = flags | 4\nfor b in range(x & 7):\n    pass",
    "name reassigned in another scope": (
        "s = set(items)\ndef f(s):\n    for x in s:\n        pass"
    ),
    "local shadows a module set": (
        "S = set(items)\ndef f():\n    S = [1, 2]\n    for x in S:\n        pass"
    ),
    "method named pop with an index": "x = items.pop(0)",
    "hash defined locally": "def hash(x):\n    return 0\ny = hash('a')",
    "__hash__ method": "class A:\n    def __hash__(self):\n        return 1",
    "opt-out with a reason": (
        "import time\nt0 = time.perf_counter()  # determinism: ok (profiling only, not output)"
    ),
    "opt-out on a set loop": (
        "s = set(items)\nfor x in s:  # determinism: ok (every element gets the same update)\n"
        "    total += 1"
    ),
}


@pytest.mark.parametrize("source", ALLOWED.values(), ids=list(ALLOWED))
def test_allowed_forms_do_not_fire(source: str) -> None:
    assert violations(source) == []


@pytest.mark.parametrize(
    "comment", ["# determinism: ok", "# determinism: ok ()", "# determinism: ok (  )"]
)
def test_opt_out_needs_a_reason(comment: str) -> None:
    found = violations(f"import time\nx = time.time()  {comment}")
    assert [v.rule for v in found] == ["wall-clock"]
    assert "needs a reason" in found[0].message


def test_opt_out_applies_to_its_own_line_only() -> None:
    source = "import time\nx = time.time()  # determinism: ok (benchmark)\ny = time.time()"
    assert [(v.line, v.rule) for v in violations(source)] == [(3, "wall-clock")]


def test_violation_says_where_and_what_to_use_instead() -> None:
    source = """\
        import numpy as np
        from time import time

        def step(items):
            now = time()
            noise = np.random.normal()
            for x in set(items):
                pass
        """
    found = violations(source)
    assert [(v.line, v.col, v.rule) for v in found] == [
        (5, 10, "wall-clock"),
        (6, 12, "randomness"),
        (7, 13, "set-order"),
    ]
    assert "ts_event" in found[0].message
    assert "StageContext.rng" in found[1].message
    assert "sorted(" in found[2].message
    assert str(found[0]).startswith("snippet.py:5:11: [wall-clock] `time.time()`")


def test_check_tree_reads_every_python_file(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("import os\nx = os.getenv('X')\n")
    (tmp_path / "b.py").write_text("x = sorted({1, 2})\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "c.py").write_text("import threading\n")
    found = check_tree(tmp_path)
    assert [(Path(v.file).name, v.line, v.rule) for v in found] == [("a.py", 2, "environment")]
