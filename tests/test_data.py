import json

import pytest

from rft.cli import main
from rft.config import task_config
from rft.data import (
    DataError,
    Example,
    PromptCursor,
    assert_disjoint,
    read_jsonl,
    split_examples,
)
from rft.tasks.arithmetic import make_arithmetic, sloppy_result


@pytest.mark.parametrize(
    "a, op, b, sloppy",
    [
        ("47", "+", "38", 75),  # the carry from 7+8 is dropped
        ("55", "+", "55", 0),   # 10 and 10: both carries dropped
        ("12", "+", "34", 46),  # no carry: the sloppy answer is right
        ("91", "-", "19", 82),  # borrow dropped: (1-9)%10=2, (9-1)=8
        ("12", "*", "34", 408),  # no sloppy variant for *
    ],
)
def test_sloppy_annotator_drops_carries(a, op, b, sloppy):
    assert sloppy_result(int(a), int(b), op) == sloppy


def test_arithmetic_splits_are_disjoint_deterministic_and_graded_on_the_truth():
    cfg = task_config(digits=2, sloppy_rate=0.65, val_size=500)
    train, val, spec = make_arithmetic(cfg, seed=3)
    assert len(val) == 500 and len(train) == 90 * 90 - 500
    assert not {e.prompt for e in train} & {e.prompt for e in val}
    assert [e.id for e in make_arithmetic(cfg, seed=3)[1]] == [e.id for e in val]
    assert [e.id for e in make_arithmetic(cfg, seed=4)[1]] != [e.id for e in val]
    assert spec["answer_field"] == "answer"
    for e in train[:200]:
        a, b = map(int, e.prompt[:-1].split("+"))
        assert int(e.get("answer")) == a + b
        assert e.get("reference") in (e.get("answer"), e.get("sloppy"))
    carries = [e for e in train if e.get("answer") != e.get("sloppy")]
    share = sum(e.get("reference") == e.get("sloppy") for e in carries) / len(carries)
    assert 0.6 < share < 0.7


def test_assert_disjoint_rejects_leakage():
    with pytest.raises(DataError, match="both train and validation"):
        assert_disjoint([Example("a", "1+1=")], [Example("b", "1+1=")])


def test_split_examples_keeps_duplicate_prompts_on_one_side():
    rows = [Example(str(i), f"p{i % 7}") for i in range(40)]
    train, val = split_examples(rows, 3, seed=0)
    assert_disjoint(train, val)
    assert len(train) + len(val) == 40


def test_jsonl_errors_name_every_bad_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"prompt": "ok", "answer": "1"}\n{"prompt": \n{"answer": "2"}\n\n[1]\n')
    with pytest.raises(DataError) as e:
        read_jsonl(p)
    msg = str(e.value)
    assert "3 bad line(s)" in msg and "d.jsonl:2: invalid JSON" in msg
    assert "d.jsonl:3: missing field 'prompt'" in msg and "d.jsonl:5: expected a JSON object" in msg


def test_empty_dataset_is_an_error(tmp_path, capsys):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        read_jsonl(p)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data:\n  train_file: {p}\noutput_dir: {tmp_path}\ngrader: {{type: arithmetic}}\n")
    assert main(["train", str(cfg), "--quiet"]) == 2
    assert "empty" in capsys.readouterr().err


def test_jsonl_rows_keep_fields_and_their_directory(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"id": "x1", "prompt": "2+2=", "answer": "4", "db": "a.sqlite"}) + "\n")
    (ex,) = read_jsonl(p)
    assert (ex.id, ex.get("answer"), ex.base_dir) == ("x1", "4", str(tmp_path.resolve()))


def test_prompt_cursor_resumes_exactly():
    straight = PromptCursor(10, seed=1)
    first = straight.take(7) + straight.take(7)
    a = PromptCursor(10, seed=1)
    part = a.take(7)
    b = PromptCursor(10, seed=1, **a.state())
    assert part + b.take(7) == first
    assert sorted(first[:10]) == list(range(10))  # each epoch is a permutation


def test_prompt_longer_than_the_context_names_the_example(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "long.jsonl"
    rows = [{"id": "short", "prompt": "1+1=", "answer": "2"}, {"id": "too-long", "prompt": "1" * 600, "answer": "1"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model: {{path: {tiny_model_dir}}}\ndata: {{train_file: {data}, val_size: 1}}\n"
                   f"grader: {{type: arithmetic}}\noutput_dir: {tmp_path / 'runs'}\n")
    assert main(["train", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'too-long'" in err and "context" in err and "max_new_tokens" in err
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started
