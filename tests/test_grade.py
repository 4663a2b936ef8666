"""`rft grade` harness: inputs, table + summary, --out, and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rft.commands.grade import grade_command


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def data(tmp_path) -> Path:
    return write_jsonl(
        tmp_path / "data.jsonl",
        [
            {"id": "a", "prompt": "2+2?", "answer": "4", "completion": "4"},
            {"id": "b", "prompt": "3+3?", "answer": "6", "completion": "5"},
        ],
    )


SPEC = '{"type": "string_check", "operation": "eq"}'


def test_grades_inline_completions_and_writes_out(tmp_path, data, capsys):
    out = tmp_path / "res" / "grades.jsonl"
    assert grade_command(SPEC, str(data), None, str(out), workers=0, quiet=False) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["line"], r["score"], r["passed"]) for r in rows] == [("a", 1, 1.0, True), ("b", 2, 0.0, False)]
    printed = capsys.readouterr().out
    assert "mean score 0.500" in printed and "passed 1/2" in printed and "reason" in printed


def test_parallel_completions_file_and_spec_file(tmp_path, data, capsys):
    spec = tmp_path / "grader.yaml"
    spec.write_text("type: string_check\noperation: eq\n")
    completions = write_jsonl(tmp_path / "c.jsonl", ["5", {"completion": "6"}])
    out = tmp_path / "g.jsonl"
    assert grade_command(str(spec), str(data), str(completions), str(out), workers=0, quiet=True) == 0
    assert [json.loads(x)["score"] for x in out.read_text().splitlines()] == [0.0, 1.0]
    assert "reason" not in capsys.readouterr().out  # quiet: summary only


def test_runs_through_worker_processes(tmp_path, data):
    out = tmp_path / "g.jsonl"
    assert grade_command(SPEC, str(data), None, str(out), workers=2, quiet=True) == 0
    assert [json.loads(x)["score"] for x in out.read_text().splitlines()] == [1.0, 0.0]


def bad_input_cases(tmp_path: Path, data: Path) -> list:
    no_completion = write_jsonl(tmp_path / "nc.jsonl", [{"prompt": "p", "answer": "1", "completion": "1"}, {"prompt": "q"}])
    short = write_jsonl(tmp_path / "short.jsonl", ["1"])
    bad_json_completions = tmp_path / "bad.jsonl"
    bad_json_completions.write_text('"1"\n{oops\n')
    bad_row_spec = write_jsonl(tmp_path / "rowspec.jsonl", [{"prompt": "p", "completion": "1", "grader": {"type": "regex", "flags": ["X"]}}])
    bad_row = tmp_path / "badrow.jsonl"
    bad_row.write_text('{"prompt": "p", "completion": "x"}\n[1, 2]\n')
    return [
        ("unknown_type", '{"type": "mathh"}', data, None, "unknown grader type 'mathh'"),
        ("bad_field_value", '{"type": "string_check", "operation": "contains"}', data, None, "'operation'"),
        ("inline_json_broken", '{"type": ', data, None, "inline JSON is invalid"),
        ("spec_file_missing", "nope.yaml", data, None, "no such file"),
        ("data_missing", SPEC, tmp_path / "missing.jsonl", None, "no such file"),
        ("row_without_completion", SPEC, no_completion, None, "nc.jsonl:2: field 'completion'"),
        ("completion_count_mismatch", SPEC, data, short, "1 completions for 2 data rows"),
        ("completions_bad_json_line", SPEC, data, bad_json_completions, "bad.jsonl:2: invalid JSON"),
        ("row_spec_invalid_names_line", '{"type": "format"}', bad_row_spec, None, "rowspec.jsonl:1: field 'grader'"),
        ("data_row_not_object_names_line", SPEC, bad_row, None, "badrow.jsonl:2"),
    ]


CASE_IDS = [
    "unknown_type", "bad_field_value", "inline_json_broken", "spec_file_missing", "data_missing",
    "row_without_completion", "completion_count_mismatch", "completions_bad_json_line",
    "row_spec_invalid_names_line", "data_row_not_object_names_line",
]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_bad_input_exits_2_with_one_line(tmp_path, data, capsys, case_id):
    cases = {c[0]: c[1:] for c in bad_input_cases(tmp_path, data)}
    grader, data_path, completions, message = cases[case_id]
    status = grade_command(grader, str(data_path), str(completions) if completions else None, None, workers=0, quiet=True)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err, err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1


def test_rft_grade_needs_no_prompt(tmp_path):
    """`rft grade` reads an item and a sample, like OpenAI's /graders/run: rows without a prompt are
    graded, and graders that read the prompt (the math echo guard, {{ item.prompt }}) see ''."""
    from rft.cli import main

    data = write_jsonl(tmp_path / "items.jsonl", [
        {"id": "m", "answer": "101", "completion": "74 + 27 = \\boxed{101}"},
        {"id": "e", "answer": "42", "completion": "\\boxed{6*7}"},  # no prompt to echo: graded as 42
        {"id": "w", "answer": "5", "completion": "\\boxed{4}"},
    ])
    out = tmp_path / "g.jsonl"

    def grade(spec: str) -> list[tuple[str, bool]]:
        argv = ["grade", "--grader", spec, "--data", str(data), "--out", str(out), "--workers", "0", "--quiet"]
        assert main(argv) == 0
        return [(r["id"], r["passed"]) for r in map(json.loads, out.read_text().splitlines())]

    assert grade('{"type": "math"}') == [("m", True), ("e", True), ("w", False)]
    templated = '{"type": "string_check", "operation": "eq", "input": "{{ item.prompt }}x", "reference": "x"}'
    assert grade(templated) == [("m", True), ("e", True), ("w", True)]


def test_training_data_without_prompt_still_names_the_line(tmp_path):
    from rft.data import DataError, read_jsonl

    data = write_jsonl(tmp_path / "train.jsonl", [{"prompt": "2+2?", "answer": "4"}, {"answer": "6"}])
    with pytest.raises(DataError, match=r"train\.jsonl:2: missing field 'prompt'"):
        read_jsonl(data)


def test_summary_counts_full_scores_of_a_grader_without_a_verdict(data, tmp_path, capsys):
    spec = json.dumps({"type": "python",
                       "source": "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])"})
    out = tmp_path / "g.jsonl"
    assert grade_command(spec, str(data), None, str(out), workers=0, quiet=False) == 0
    printed = capsys.readouterr().out
    assert "passed 1/2" in printed and "skipped 0" in printed
    assert "yes" in printed  # the table shows the counted verdict, not "-"
    assert [json.loads(x)["passed"] for x in out.read_text().splitlines()] == [None, None]  # --out keeps the grader's own
