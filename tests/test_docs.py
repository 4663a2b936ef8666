"""The docs cannot drift from the tree: every module is on the map, and every file the docs name is in the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "rft"
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A file named in backticks: a path with a file extension (globs and placeholders are not files).
FILE_REF = re.compile(r"`((?:\.\./)*[\w.-]+(?:/[\w.-]+)*\.(?:py|md|yaml|yml|json|jsonl|sh|toml|txt))`")
# What a run or a user writes, not the repository: run directories, caches, scratch space.
NOT_REPO = ("runs/", "samples/", "checkpoints/", "~", "$", "/tmp/", "out/", "my_", "your_")


def module_names() -> list[Path]:
    return sorted(p.relative_to(SRC) for p in SRC.rglob("*.py") if p.name != "__init__.py")


def test_every_module_is_on_the_architecture_map():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = [str(m) for m in module_names()
               if f"`{m.stem}`" not in text and f"{m.stem}.py" not in text and f"`{m.with_suffix('')}`" not in text]
    assert not missing, f"docs/ARCHITECTURE.md does not mention: {missing}"


def resolves(ref: str) -> bool:
    return any((base / ref).exists() for base in (ROOT, SRC, ROOT / "tests"))


def test_the_docs_name_only_files_inside_the_repository():
    bad = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for ref in re.findall(r"(?<![\w.])(?:\.\./)+[\w./-]*\w", text):  # relative links resolve from the doc
            target = (doc.parent / ref).resolve()
            if not target.is_relative_to(ROOT) or not target.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {ref} (outside the repository, or no such file)")
        for ref in FILE_REF.findall(text):
            if not ref.startswith(NOT_REPO + ("../",)) and "/" in ref and not resolves(ref):
                bad.append(f"{doc.relative_to(ROOT)}: {ref} (no such file)")
    assert not bad, "\n".join(bad)


def test_the_checker_catches_what_it_is_for(tmp_path):
    assert resolves("grpo/train.py") and resolves("bench/rft_vs_trl.py")
    assert not resolves("grpo/no_such_module.py")
    assert FILE_REF.findall("see `../shared/x.py` and `src/rft/cli.py`") == ["../shared/x.py", "src/rft/cli.py"]


# -- the one-step reading list (docs/ARCHITECTURE.md "Reading one step") ---------------------------------------
READING_ROW = re.compile(r"^\| (\d+) \| `([\w/]+\.py)` \| `([\w.*]+)` \| (\d+)-(\d+) \|", re.M)


def reading_list() -> list[tuple[str, str, int, int]]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Reading one step", 1)[1].split("\n## ", 1)[0]
    return [(f, q, int(a), int(b)) for _, f, q, a, b in READING_ROW.findall(section)]


def lines_of(path: Path, qualname: str) -> tuple[int, int]:
    """The lines of a function or class (``Class.method``; ``*``: the whole file), decorators included."""
    import ast

    text = path.read_text(encoding="utf-8")
    if qualname == "*":
        return 1, len(text.splitlines())
    node: ast.AST = ast.parse(text)
    for part in qualname.split("."):
        node = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            raise AssertionError(f"{path.relative_to(SRC)}: no {qualname}")
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno


def test_the_one_step_reading_list_is_true_and_short():
    rows = reading_list()
    assert rows, "docs/ARCHITECTURE.md has no reading list"
    actual = [(f, q, *lines_of(SRC / f, q)) for f, q, _, _ in rows]
    table = "\n".join(f"| {i} | `{f}` | `{q}` | {a}-{b} |" for i, (f, q, a, b) in enumerate(actual, 1))
    assert rows == actual, f"the reading list moved; its rows are now:\n{table}"
    assert len({f for f, *_ in rows}) <= 8
    assert sum(b - a + 1 for *_, a, b in rows) <= 700


def test_the_reading_list_check_finds_a_moved_function(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n\n\ndef f():\n    return 1\n")
    assert lines_of(tmp_path / "m.py", "f") == (4, 5) and lines_of(tmp_path / "m.py", "*") == (1, 5)
