"""Chat prompts, the OpenAI RFT JSONL format and Hugging Face datasets as training data."""

import json

import pytest

from rft.config import config_from_dict
from rft.console import Console
from rft.data import DataError, read_dataset, read_jsonl
from rft.graders.registry import build
from rft.grpo.train import train
from rft.models.load import load_tokenizer
from rft.training.session import open_session

QUIET = Console(quiet=True)
# A minimal chat template over the tiny model's character vocabulary (it has no '<|im_start|>' tokens).
TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """The tiny model whose saved tokenizer carries a chat template."""
    from rft.models.tiny import init_tiny_model

    path = init_tiny_model(tmp_path_factory.mktemp("chat"), seed=0)
    tok = load_tokenizer(path)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(path)
    return path


def _openai_rows(n: int) -> list[dict]:
    """OpenAI RFT JSONL: messages (developer + user) and extra fields for the grader."""
    return [{"messages": [{"role": "developer", "content": "add"},
                          {"role": "user", "content": [{"type": "text", "text": f"{i}+{i % 3}="}]}],
             "answer": str(i + i % 3), "source": "unit"} for i in range(n)]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_openai_rft_rows_are_read_as_is_and_extra_fields_reach_the_grader(tmp_path):
    data = read_jsonl(_write_jsonl(tmp_path / "rft.jsonl", _openai_rows(3)))
    ex = data[1]
    # developer is read as system, text parts are joined; extra fields stay on the row
    assert ex.prompt == [{"role": "system", "content": "add"}, {"role": "user", "content": "1+1="}]
    assert ex.fields == {"answer": "2", "source": "unit"}
    grader = build({"type": "string_check", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
                    "operation": "eq"})
    assert grader("2", ex).score == 1.0 and grader("3", ex).score == 0.0


@pytest.mark.parametrize("row, message", [
    ({"messages": "hi"}, "'messages' must be a list"),
    ({"messages": []}, "empty list"),
    ({"messages": [{"role": "user"}]}, "messages[0] must be"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]}, "only text content"),
    ({"messages": [{"role": "user", "content": "a"}], "prompt": "a"}, "both 'prompt' and 'messages'"),
])
def test_bad_chat_rows_name_the_line_and_the_fix(tmp_path, row, message):
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok"}, row])
    with pytest.raises(DataError, match="bad.jsonl:2") as e:
        read_jsonl(path)
    assert message in str(e.value)


@pytest.mark.model
def test_chat_prompt_is_rendered_with_the_template_and_a_generation_prompt(tmp_path, chat_model_dir):
    _write_jsonl(tmp_path / "train.jsonl", _openai_rows(12))
    cfg = config_from_dict({"model": {"path": str(chat_model_dir)}, "report_to": [],
                            "data": {"train_file": str(tmp_path / "train.jsonl"), "val_size": 4},
                            "grader": {"type": "string_check", "operation": "eq"}})
    s = open_session(cfg)
    ex = next(e for e in s.train + s.val if e.id == "train-3")  # line 3: row i=2
    assert s.tokenizer.decode(s.prompt_ids[ex.id]) == "s:add\nu:2+2=\na:"


def test_chat_rows_without_a_chat_template_fail_naming_the_line(tmp_path, tiny_model_dir):
    _write_jsonl(tmp_path / "train.jsonl", [{"prompt": "1+1=", "answer": "2"}] + _openai_rows(5)[1:])
    cfg = config_from_dict({"model": {"path": str(tiny_model_dir)}, "report_to": [],
                            "data": {"train_file": str(tmp_path / "train.jsonl"), "val_size": 1},
                            "grader": {"type": "string_check", "operation": "eq"}})
    with pytest.raises(DataError, match=r"train.jsonl:[2-5]: the prompt is chat messages but the tokenizer has no "
                                        r"chat template \(4 such row\(s\)\)"):
        open_session(cfg)


@pytest.mark.model
def test_grpo_runs_on_openai_format_chat_data(tmp_path, chat_model_dir):
    _write_jsonl(tmp_path / "train.jsonl", _openai_rows(20))
    cfg = config_from_dict({
        "name": "chat", "output_dir": str(tmp_path / "runs"), "threads": 2, "report_to": [],
        "model": {"path": str(chat_model_dir)},
        "data": {"train_file": str(tmp_path / "train.jsonl"), "val_size": 4},
        "grader": {"type": "string_check", "reference": "{{ item.answer }}", "operation": "eq"},
        "sampling": {"num_generations": 4, "max_new_tokens": 3},
        "grpo": {"steps": 2, "prompts_per_step": 4}, "eval": {"every": 2}, "checkpoint": {"every": 2},
    })
    result = train(cfg, console=QUIET)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["type"] == "train"] == [1, 2]
    samples = [json.loads(line) for line in (result.run_dir / "samples" / "step_000002.jsonl").read_text().splitlines()]
    assert len(samples) == 16 and samples[0]["prompt"][0] == {"role": "system", "content": "add"}
    # the grader compared each completion with the row's own answer field
    assert all(s["score"] == float(s["completion"] == _answer_of(s["prompt"])) for s in samples)


def _answer_of(messages: list[dict]) -> str:
    a, b = messages[1]["content"].rstrip("=").split("+")
    return str(int(a) + int(b))


datasets = pytest.importorskip("datasets")


def test_load_from_disk_round_trip(tmp_path):
    chat = [{"role": "system", "content": "add"}, {"role": "user", "content": "1+1="}]
    # the column layout Arrow gives mixed data: prompt and messages side by side, the unused one None
    rows = [{"id": "c", "prompt": None, "messages": chat, "answer": "2", "source": "unit"},
            {"id": "p", "prompt": "9+9=", "messages": None, "answer": "18", "source": "plain"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    examples = read_dataset(tmp_path / "saved")
    assert [e.id for e in examples] == ["c", "p"]
    assert examples[0].prompt == chat and examples[0].fields == {"answer": "2", "source": "unit"}
    assert examples[1].prompt == "9+9=" and examples[1].fields == {"answer": "18", "source": "plain"}
    assert examples[0].base_dir == str((tmp_path / "saved").resolve())


def test_dataset_dict_directory_names_its_splits(tmp_path):
    d = datasets.DatasetDict({"train": datasets.Dataset.from_list([{"prompt": "a"}]),
                              "test": datasets.Dataset.from_list([{"prompt": "b"}])})
    d.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match=r"several splits \(train, test\).*dd/train"):
        read_dataset(tmp_path / "dd")
    assert read_dataset(tmp_path / "dd" / "test")[0].prompt == "b"


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_local_files_are_read_through_datasets(tmp_path, suffix):
    ds = datasets.Dataset.from_list([{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(5)])
    path = tmp_path / f"d{suffix}"
    {".parquet": ds.to_parquet, ".csv": ds.to_csv, ".json": ds.to_json}[suffix](str(path))
    examples = read_dataset(path)
    assert [e.prompt for e in examples] == [f"{i}+1=" for i in range(5)]
    assert str(examples[3].get("answer")) == "4"


def test_bad_dataset_rows_are_all_reported(tmp_path):
    datasets.Dataset.from_list([{"prompt": "ok", "q": "x"}, {"prompt": None, "q": "y"},
                                {"prompt": "", "q": "z"}]).to_parquet(str(tmp_path / "d.parquet"))
    with pytest.raises(DataError, match="2 bad row") as e:
        read_dataset(tmp_path / "d.parquet")
    assert "d.parquet row 1: missing field 'prompt'" in str(e.value) and "row 2: 'prompt' is empty" in str(e.value)


def test_missing_datasets_package_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no datasets")
        return real_import(name, *args, **kwargs)

    (tmp_path / "d.csv").write_text("prompt\nhi\n")
    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataError, match=r"pip install 'rft\[datasets\]'"):
        read_dataset(tmp_path / "d.csv")
