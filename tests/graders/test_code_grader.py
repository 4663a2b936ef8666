"""The ``code`` grader's contract: extraction, strict comparison, partial credit, stdio, specs, the
isolation fallbacks, and the built-in code task. Hostile programs live in test_sandbox_security.py."""

from __future__ import annotations

import logging
import os

import pytest

from rft.config.base import SpecError
from rft.config.graders import CodeSpec
from rft.data import Example
from rft.graders.code import (
    CodeGrader,
    extract_program,
    normalize_stdout,
    parse_results,
    stdout_diff,
    strict_equal,
)
from rft.graders.registry import build
from rft.isolation.sandbox import RunResult, Sandbox, SandboxUnavailable, get_sandbox
from rft.tasks.code import FAMILIES, HIDDEN, SHOWN, make_code_examples

DOUBLE_TESTS = [{"args": [1], "expected": 2}, {"args": [2], "expected": 4},
                {"args": [3], "expected": 6}, {"args": [4], "expected": 8}]


def fn_example(tests=DOUBLE_TESTS, entry_point="f") -> Example:
    return Example("ex", "p", {"entry_point": entry_point, "tests": tests})


def _test_isolation() -> str:
    """The grading-logic tests run in the best isolation here; where there is none they name 'none'
    (auto refuses to fall back to it)."""
    try:
        return get_sandbox("auto").isolation
    except SandboxUnavailable:
        return "none"


ISOLATION = _test_isolation()


def grade(program: str, tests=DOUBLE_TESTS, **spec):
    return build({"type": "code", "isolation": ISOLATION, **spec})(program, fn_example(tests))


def stdio_grade(program: str, tests, **spec):
    spec = {"type": "code", "mode": "stdio", "isolation": ISOLATION, **spec}
    return build(spec)(program, Example("ex", "p", {"tests": tests}))


# --- program extraction --------------------------------------------------------------------------

EXTRACT_CASES = {
    "last_python_block_wins": ("```python\nA\n```\ntext\n```python\nB\n```", "B\n"),
    "py_tag_is_python": ("```py\nC\n```", "C\n"),
    "no_fence_means_whole_completion": ("def f(x): return x", "def f(x): return x"),
    "other_language_block_is_not_python": ("```js\nD\n```", "```js\nD\n```"),
    "unterminated_block_is_not_a_block": ("```python\nE", "```python\nE"),
}


@pytest.mark.parametrize("completion,program", EXTRACT_CASES.values(), ids=EXTRACT_CASES.keys())
def test_extract_program(completion, program):
    assert extract_program(completion) == program


# --- strict comparison -----------------------------------------------------------------------------

EQUAL_CASES = {
    "same_int": (2, 2, None, True),
    "bool_is_not_int": (True, 1, None, False),
    "int_is_not_bool": (0, False, None, False),
    "int_is_not_float_without_tolerance": (2, 2.0, None, False),
    "int_matches_float_within_tolerance": (2, 2.0, 1e-9, True),
    "float_exact_without_tolerance": (0.1 + 0.2, 0.3, None, False),
    "float_close_with_tolerance": (0.1 + 0.2, 0.3, 1e-9, True),
    "bool_is_not_number_even_with_tolerance": (True, 1.0, 1e-9, False),
    "nested_list_equal": ([[1, "a"], {"k": None}], [[1, "a"], {"k": None}], None, True),
    "list_length_differs": ([1, 2], [1, 2, 3], None, False),
    "dict_keys_differ": ({"a": 1}, {"b": 1}, None, False),
    "nested_bool_for_int_fails": ([1, True], [1, 1], None, False),
    "nan_never_equal": (float("nan"), float("nan"), None, False),
}


@pytest.mark.parametrize("got,expected,tol,equal", EQUAL_CASES.values(), ids=EQUAL_CASES.keys())
def test_strict_equal(got, expected, tol, equal):
    assert strict_equal(got, expected, tol) is equal


NORMALIZE_CASES = {
    "trailing_spaces_per_line": ("1 \n2\t\n", "1\n2"),
    "trailing_blank_lines": ("1\n\n\n", "1"),
    "leading_spaces_kept": ("  1", "  1"),
    "inner_blank_line_kept": ("1\n\n2", "1\n\n2"),
}


@pytest.mark.parametrize("text,normal", NORMALIZE_CASES.values(), ids=NORMALIZE_CASES.keys())
def test_normalize_stdout(text, normal):
    assert normalize_stdout(text) == normal


def test_stdout_diff_names_the_first_differing_line():
    assert stdout_diff("1\n2\n3", "1\n5\n3") == "line 2: expected '2', got '5'"


def test_parse_results_ignores_malformed_lines_and_keeps_the_first_per_test():
    raw = b'{"event": "started"}\nnot json\n[1]\n{"i": 0, "status": "ok", "value": 1}\n' \
          b'{"i": 0, "status": "ok", "value": 2}\n{"i": 9, "status": "ok"}\n{"i": true, "status": "ok"}\n' + b"[" * 100_000 + b"\n"
    events, by_index = parse_results(raw, n_tests=2)
    assert list(events) == ["started"]
    assert by_index == {0: {"i": 0, "status": "ok", "value": 1}}


# --- function mode ---------------------------------------------------------------------------------


def test_correct_function_scores_one():
    g = grade("```python\ndef f(x):\n    return 2 * x\n```")
    assert (g.score, g.passed) == (1.0, True)
    assert [t["status"] for t in g.details["tests"]] == ["passed"] * 4


def test_partly_correct_function_scores_the_fraction_passed():
    g = grade("def f(x):\n    return 2 * x if x < 3 else 0")
    assert g.score == 0.5
    assert g.passed is False
    assert g.details["tests"][2] == {"status": "failed", "message": "expected 6, got 0"}


def test_partial_credit_off_scores_zero_unless_all_pass():
    assert grade("def f(x):\n    return 2 * x if x < 4 else 0", partial_credit=False).score == 0.0


def test_args_and_kwargs_are_passed():
    tests = [{"args": [2], "kwargs": {"k": 3}, "expected": 6}]
    assert grade("def f(x, k=1):\n    return x * k", tests).score == 1.0


def test_tuple_is_an_error_unless_tuple_as_list():
    tests = [{"args": [1], "expected": [1, 2]}]
    assert grade("def f(x):\n    return (x, x + 1)", tests).details["tests"][0]["status"] == "error"
    assert grade("def f(x):\n    return (x, x + 1)", tests, tuple_as_list=True).score == 1.0


def test_float_tolerance_applies_only_when_set():
    tests = [{"args": [], "expected": 0.3}]
    assert grade("def f():\n    return 0.1 + 0.2", tests).score == 0.0
    assert grade("def f():\n    return 0.1 + 0.2", tests, float_tol=1e-9).score == 1.0


def test_syntax_error_fails_every_test_as_error():
    g = grade("def f(x) return x")
    assert g.score == 0.0
    assert {t["status"] for t in g.details["tests"]} == {"error"}
    assert "SyntaxError" in g.details["tests"][0]["message"]


def test_missing_entry_point_fails_every_test_as_error():
    g = grade("def g(x):\n    return 2 * x")
    assert g.score == 0.0
    assert "defines no function 'f'" in g.details["tests"][0]["message"]


def test_main_block_does_not_run_in_function_mode():
    g = grade("def f(x):\n    return 2 * x\nif __name__ == '__main__':\n    raise SystemExit(input())")
    assert g.score == 1.0


def test_example_without_tests_is_skipped_not_failed():
    g = CodeGrader(CodeSpec())("def f(x): return x", Example("ex", "p", {"entry_point": "f"}))
    assert (g.score, g.passed, g.details) == (0.0, None, {"skipped": True})


def test_expected_values_never_enter_the_sandbox_payload(monkeypatch):
    sent = []

    def fake_run(self, payload, limits):
        sent.append(repr(payload))
        return RunResult(self.isolation, b'{"event": "started"}\n', b"", b"", 0, False, False, 0.0)

    monkeypatch.setattr(Sandbox, "run", fake_run)
    grade("def f(x): return x", [{"args": [1], "expected": "EXPECTED-secret"}])
    stdio_grade("print(1)", [{"stdin": "1", "expected_stdout": "EXPECTED-secret"}])
    assert len(sent) == 2 and not any("EXPECTED-secret" in p for p in sent)


def test_sandbox_that_does_not_start_is_an_infrastructure_error(monkeypatch):
    monkeypatch.setattr(Sandbox, "run", lambda self, payload, limits: RunResult(
        self.isolation, b"", b"", b"bwrap: setting up uid map: Permission denied", 1, False, False, 0.0))
    g = grade("def f(x): return 2 * x")
    assert g.score == 0.0 and g.details["error"] == "SandboxError"
    assert "uid map" in g.reason


# --- stdio mode ------------------------------------------------------------------------------------

SUM_TESTS = [{"stdin": "1 2\n", "expected_stdout": "3\n"}, {"stdin": "5 5\n", "expected_stdout": "10"}]


def test_stdio_correct_program_scores_one_with_trailing_whitespace_ignored():
    g = stdio_grade("a, b = map(int, input().split())\nprint(a + b, end='   \\n\\n')", SUM_TESTS)
    assert g.score == 1.0


def test_stdio_partly_correct_program_scores_the_fraction():
    g = stdio_grade("print(3)", SUM_TESTS)
    assert g.score == 0.5
    assert g.details["tests"][1] == {"status": "failed", "message": "line 1: expected '10', got '3'"}


def test_stdio_nonzero_exit_is_an_error_even_with_right_output():
    g = stdio_grade("import sys\nprint(sum(map(int, sys.stdin.read().split())))\nsys.exit(3)", SUM_TESTS)
    assert g.score == 0.0
    assert {t["status"] for t in g.details["tests"]} == {"error"}


def test_stdio_uncaught_exception_is_an_error():
    g = stdio_grade("raise ValueError('boom')", SUM_TESTS[:1])
    assert g.details["tests"][0]["status"] == "error"
    assert "boom" in g.details["tests"][0]["message"]


def test_stdio_large_stdin_is_delivered_whole():
    data = "1\n" * 200_000
    g = stdio_grade("import sys\nprint(len(sys.stdin.read().split()))", [{"stdin": data, "expected_stdout": "200000"}])
    assert g.score == 1.0


# --- spec validation and registry ------------------------------------------------------------------

SPEC_ERRORS = {
    "unknown_field": ({"langauge": "python"}, "unknown field"),
    "bad_mode": ({"mode": "repl"}, "field 'mode' = 'repl'"),
    "zero_timeout": ({"timeout_s": 0}, "field 'timeout_s' = 0"),
    "bool_timeout": ({"timeout_s": True}, "field 'timeout_s' = True"),
    "tiny_memory": ({"memory_mb": 8}, "field 'memory_mb' = 8"),
    "bad_isolation": ({"isolation": "docker"}, "field 'isolation' = 'docker'"),
    "string_partial_credit": ({"partial_credit": "yes"}, "field 'partial_credit' = 'yes'"),
}


@pytest.mark.parametrize("spec,message", SPEC_ERRORS.values(), ids=SPEC_ERRORS.keys())
def test_bad_spec_raises_spec_error_naming_the_field(spec, message):
    with pytest.raises(SpecError, match=message):
        build({"type": "code", **spec})


def test_registry_builds_the_code_grader():
    assert isinstance(build({"type": "code", "mode": "stdio"}), CodeGrader)


# --- isolation fallbacks ---------------------------------------------------------------------------


def test_require_isolation_refuses_rlimits_only():
    with pytest.raises(SandboxUnavailable, match="require_isolation"):
        get_sandbox("none", require_isolation=True)


@pytest.fixture()
def no_isolation_tools(monkeypatch, tmp_path):
    """This machine as one without bubblewrap or unshare: PATH holds neither (so their probes fail
    the way the code detects a missing tool), and the probe caches start and end empty."""
    from rft.graders import code
    from rft.isolation import sandbox

    monkeypatch.setenv("PATH", str(tmp_path))
    for cache in (sandbox._probe, code._cached_sandbox):
        cache.cache_clear()
    yield
    for cache in (sandbox._probe, code._cached_sandbox):
        cache.cache_clear()


def test_auto_without_bwrap_or_namespaces_refuses_with_the_fix(no_isolation_tools):
    with pytest.raises(SandboxUnavailable) as e:
        get_sandbox("auto")
    message = str(e.value)
    assert "bwrap not found on PATH" in message and "install bubblewrap" in message
    assert "isolation: none" in message and "\n" not in message


def test_code_grader_without_isolation_is_refused_when_built_not_at_the_first_grade(no_isolation_tools):
    with pytest.raises(SpecError, match="code grader: no usable sandbox.*install bubblewrap"):
        build({"type": "code"})


def test_explicit_isolation_none_still_runs_with_its_warning(no_isolation_tools):
    g = build({"type": "code", "isolation": "none"})("def f(x):\n    return 2 * x", fn_example())
    assert (g.score, g.details["isolation"]) == (1.0, "none") and "NO ISOLATION" in g.details["isolation_warning"]


@pytest.mark.parametrize("task", ["code", "humaneval"])
def test_builtin_tasks_with_hidden_tests_refuse_to_run_unisolated(no_isolation_tools, task):
    from rft.tasks import code as code_task
    from rft.tasks import humaneval

    spec = {"code": code_task.GRADER_SPEC, "humaneval": humaneval.GRADER_SPEC}[task]
    with pytest.raises(SpecError, match="no usable sandbox"):
        build(dict(spec))
    with pytest.raises(SpecError, match="refused by require_isolation"):
        build({**spec, "isolation": "none"})


def test_cli_refuses_the_code_task_without_isolation_in_one_line(tmp_path):
    """`rft grade --task code --reference` on a machine without bwrap or unshare (an empty PATH):
    one line with the fix and exit 2, not a run with rlimits only."""
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.run([sys.executable, "-m", "rft.cli", "grade", "--task", "code", "--reference", "--limit", "2",
                           "--workers", "0"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": str(tmp_path), "PYTHONPATH": src})
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err[-2000:]
    assert "no usable sandbox" in err and "install bubblewrap" in err


def test_unknown_isolation_mode_is_refused():
    with pytest.raises(SandboxUnavailable, match="unknown"):
        get_sandbox("vm")


def test_rlimits_only_mode_warns_in_logs_and_in_grade_details(caplog):
    from rft.isolation import sandbox

    sandbox._warn_no_isolation.cache_clear()
    with caplog.at_level(logging.WARNING, logger="rft.isolation.sandbox"):
        g = grade("def f(x):\n    return 2 * x", isolation="none")
    assert g.score == 1.0
    assert g.details["isolation"] == "none"
    assert "NO ISOLATION" in g.details["isolation_warning"]
    assert "NO ISOLATION" in caplog.text


@pytest.mark.parametrize("isolation", ["bwrap", "unshare"])
def test_isolated_modes_grade_correctly_where_available(isolation):
    try:
        get_sandbox(isolation)
    except SandboxUnavailable as e:
        if os.environ.get("RFT_REQUIRE_SANDBOX") == "1" and isolation == "bwrap":
            raise
        pytest.skip(str(e))
    g = grade("def f(x):\n    return 2 * x if x != 4 else 0", isolation=isolation)
    assert (g.score, g.details["isolation"]) == (0.75, isolation)
    assert "isolation_warning" not in g.details


# --- the built-in code task ------------------------------------------------------------------------


def test_code_examples_are_deterministic_in_the_seed():
    assert make_code_examples(20, seed=3) == make_code_examples(20, seed=3)
    assert make_code_examples(20, seed=3) != make_code_examples(20, seed=4)


def test_code_examples_have_distinct_prompts_and_the_code_grader_spec():
    examples = make_code_examples(200, seed=0)
    assert len({e.prompt for e in examples}) == 200
    assert all(e.grader == {"type": "code", "mode": "function", "require_isolation": True} and e.get("entry_point") == "f" for e in examples)


def test_code_examples_hide_some_tests_from_the_prompt():
    for e in make_code_examples(50, seed=1):
        tests = e.get("tests")
        assert len(tests) == SHOWN + HIDDEN
        assert all(f"f({t['args'][0]!r})" not in e.prompt for t in tests[SHOWN:])


def test_every_family_reference_solution_passes_the_real_grader():
    examples = make_code_examples(300, seed=2)
    one_per_family = {e.get("family"): e for e in examples}
    assert set(one_per_family) == {f.name for f in FAMILIES}
    grader = CodeGrader(CodeSpec())
    for family, example in one_per_family.items():
        g = grader(f"```python\n{example.get('solution')}```", example)
        assert g.score == 1.0, (family, g.reason)


def test_a_lookup_table_of_the_shown_pairs_does_not_score_full_marks():
    example = make_code_examples(1, seed=5)[0]
    shown = {repr(t["args"][0]): t["expected"] for t in example.get("tests")[:SHOWN]}
    program = f"def f(v):\n    return {shown!r}.get(repr(v))"
    g = CodeGrader(CodeSpec())(program, example)
    assert g.score == pytest.approx(SHOWN / (SHOWN + HIDDEN))
