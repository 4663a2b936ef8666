"""The house has floors: a module imports only from its own floor or the floors below, and no two
modules import each other, directly or around a loop.

Read from the source with ``ast`` (nothing is imported): every ``import rft...`` and
``from rft... import ...`` in ``src/rft``, at module level or inside a function alike, since a lazy
import is still a dependency. The implicit import of a package's ``__init__`` by its submodules is
not counted (``rft.graders.base`` does not depend on ``rft.graders``). A module missing from
:data:`FLOORS` fails the test: a new module is placed on a floor when it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rft

# Lowest floor first. A module belongs to the floor of the longest prefix that names it (``rft``
# names the package's own ``__init__`` only).
FLOORS: list[tuple[str, list[str]]] = [
    ("base", ["rft.config", "rft.environment_config", "rft.grader_spec_errors", "rft.grader_specs", "rft.grader_fields", "rft.grader_syntax", "rft.console", "rft.files", "rft.runs",
              "rft.optim", "rft.checkpoint", "rft.user_code"]),
    ("data", ["rft.data"]),
    ("parts", ["rft.tasks", "rft.models", "rft.rollout", "rft.graders", "rft.safety", "rft.distributed",
               "rft.report", "rft.envs"]),
    ("algorithm", ["rft.grpo", "rft.evaluate"]),
    ("session", ["rft.session"]),
    ("loop", ["rft.grpo.train"]),
    ("commands", ["rft.sft", "rft.demo", "rft.demo_sql", "rft.doctor", "rft.audit", "rft.grade", "rft.eval_command", "rft.export",
                  "rft.audit_episodes", "rft.openai_job", "rft.api", "rft.quickstart"]),
    ("cli", ["rft.cli"]),
    ("package", ["rft"]),  # `import rft` is the front door: rft.train etc., imported lazily from rft.api
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` (module ``name``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from .. import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
        else:
            continue
        for t in targets:
            while t and t not in modules:  # `import rft.x.y` names rft.x.y; a name inside a module names it
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {m: imports_of(p, m, set(files)) for m, p in files.items()}


def floor_of(module: str, floors: list[tuple[str, list[str]]]) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, floor)
    for i, (_, prefixes) in enumerate(floors):
        for p in prefixes:
            below = "." in p and module.startswith(p + ".")  # the root package `rft` names only itself
            if (module == p or below) and (best is None or len(p) > best[0]):
                best = (len(p), i)
    return None if best is None else best[1]


def upward_imports(graph: dict[str, set[str]], floors: list[tuple[str, list[str]]]) -> list[str]:
    """'a (floor) -> b (higher floor)' for every import that reaches up, and every unplaced module."""
    out = [f"{m}: on no floor; add it to FLOORS" for m in graph if floor_of(m, floors) is None]
    for m, deps in sorted(graph.items()):
        fm = floor_of(m, floors)
        for d in sorted(deps):
            fd = floor_of(d, floors)
            if fm is not None and fd is not None and fd > fm:
                out.append(f"{m} ({floors[fm][0]}) imports {d} ({floors[fd][0]})")
    return out


# The parts floor's packages are rooms of their own: one may import another only where this says so.
# A grader never reaches into models, sampling or the loop (it scores text); sampling reads models;
# environments drive sampling and grade with graders.
PARTS_ROOMS: dict[str, set[str]] = {
    "rft.rollout": {"rft.models"},
    "rft.envs": {"rft.graders", "rft.rollout", "rft.models"},
}


def cross_room_imports(graph: dict[str, set[str]], floors: list[tuple[str, list[str]]],
                       rooms: dict[str, set[str]]) -> list[str]:
    """'a imports b' for every import between two packages of the parts floor that ``rooms`` does not allow."""
    parts = next(prefixes for name, prefixes in floors if name == "parts")

    def room(m: str) -> str | None:
        return next((p for p in parts if m == p or m.startswith(p + ".")), None)

    return [f"{m} imports {d} ({room(m)} may not import {room(d)}; see PARTS_ROOMS)"
            for m, deps in sorted(graph.items()) for d in sorted(deps)
            if room(m) and room(d) and room(m) != room(d) and room(d) not in rooms.get(room(m), set())]


def import_loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return loops


SRC = Path(rft.__file__).parent


def test_no_import_loop_in_rft():
    assert import_loops(import_graph(SRC)) == []


def test_no_module_imports_from_a_higher_floor():
    assert upward_imports(import_graph(SRC), FLOORS) == []


def test_parts_packages_import_each_other_only_where_allowed():
    assert cross_room_imports(import_graph(SRC), FLOORS, PARTS_ROOMS) == []


def test_a_grader_importing_a_model_is_found(tmp_path):
    pkg = tmp_path / "rft"
    for d in ("graders", "models"):
        (pkg / d).mkdir(parents=True)
        (pkg / d / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "load.py").write_text("X = 1\n")
    (pkg / "graders" / "judge.py").write_text("def f():\n    from rft.models.load import X\n")
    assert cross_room_imports(import_graph(pkg), FLOORS, PARTS_ROOMS) == [
        "rft.graders.judge imports rft.models.load (rft.graders may not import rft.models; see PARTS_ROOMS)"]


def test_nothing_in_the_library_imports_the_training_loop():
    graph = import_graph(SRC)
    commands = {floor_of(m, FLOORS) for m in ("rft.sft", "rft.cli")}
    importers = sorted(m for m, deps in graph.items() if "rft.grpo.train" in deps and floor_of(m, FLOORS) not in commands)
    assert importers == []


def test_the_training_loop_reads_in_120_lines():
    """train() -- the GRPO loop, phase by phase -- stays short enough to read in one sitting (issue 14)."""
    path = Path(rft.__file__).parent / "grpo" / "train.py"
    fn = next(n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef) and n.name == "train")
    assert fn.end_lineno - fn.lineno + 1 <= 120


def test_no_module_over_450_lines():
    assert {m: n for m, p in ((module_name(p, SRC), p) for p in SRC.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 450} == {}


# The checks themselves, on a made-up package: each finds what it is there to find.
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "rft"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("files, loop", [
    ({"data.py": "from rft.tasks import TASKS\n", "tasks/__init__.py": "from rft.data import Example\n"},
     ["rft.data", "rft.tasks"]),
    ({"data.py": "def f():\n    import rft.tasks.a\n", "tasks/__init__.py": "", "tasks/a.py": "from rft import data\n"},
     ["rft.data", "rft.tasks.a"]),
    ({"grpo/__init__.py": "", "grpo/a.py": "from . import b\n", "grpo/b.py": "from .a import x\n"},
     ["rft.grpo.a", "rft.grpo.b"]),
])
def test_a_loop_is_found(tmp_path, files, loop):
    assert import_loops(import_graph(_package(tmp_path, files))) == [loop]


def test_an_upward_import_and_an_unplaced_module_are_found(tmp_path):
    root = _package(tmp_path, {"data.py": "from rft.distributed import Dist\n", "distributed.py": "",
                               "grpo/__init__.py": "", "grpo/train.py": "", "elsewhere.py": ""})
    assert upward_imports(import_graph(root), FLOORS) == [
        "rft.elsewhere: on no floor; add it to FLOORS", "rft.data (data) imports rft.distributed (parts)"]
    assert import_loops(import_graph(root)) == []
