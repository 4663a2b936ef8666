"""Datasets by hub name (``data.dataset: {path: ORG/NAME, name, split, val_split}``), read with
``datasets.load_dataset`` from a real datasets cache on disk with the network off (no mock of the
hub), local datasets through the same door, and the field mapping checked against the columns."""

import json

import pytest
import yaml
from hub_cache_layout import publish_to_datasets_cache, publish_to_hub_cache

from rft.config import ConfigError, DataConfig, config_from_dict
from rft.data import DataError
from rft.config.datasets import DatasetConfig
from rft.files import MAX_LINE_BYTES
from rft.tasks import load_splits

datasets = pytest.importorskip("datasets")


def gsm8k_rows(pairs):
    """GSM8K's shape: a word problem and a worked answer whose last line is '#### <number>'."""
    return [{"question": f"Tom has {a} apples and gets {b} more. How many?",
             "answer": f"Tom has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}"} for a, b in pairs]


TRAIN = gsm8k_rows([(a, b) for a in range(1, 5) for b in range(1, 4)])  # 12 rows
TEST = gsm8k_rows([(7, 8), (9, 9), (8, 6)])
GSM8K = {"path": "openai/gsm8k", "name": "main", "split": "train", "val_split": "test",
         "template": "{question}", "answer_marker": "####"}


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch):
    """An empty datasets cache as HF_DATASETS_CACHE, with the hub and datasets offline."""
    cache = tmp_path / "hf-datasets"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def gsm8k(datasets_cache):
    return publish_to_datasets_cache(datasets_cache, "openai/gsm8k", {"train": TRAIN, "test": TEST}, config="main")


def splits(**dataset):
    return load_splits(DataConfig(dataset=DatasetConfig(**dataset), val_size=2), seed=0)


def test_a_hub_dataset_loads_by_name_offline_from_the_datasets_cache(gsm8k):
    assert gsm8k.parts[-4:] == ("openai___gsm8k", "main", "0.0.0", gsm8k.name)  # where datasets put it
    before = datasets.config.HF_HUB_OFFLINE
    train, val, spec = splits(**GSM8K)
    assert datasets.config.HF_HUB_OFFLINE == before and spec is None
    assert (len(train), len(val)) == (12, 3)
    assert train[0].prompt == "Tom has 1 apples and gets 1 more. How many?" and train[0].get("answer") == "2"
    assert [e.get("answer") for e in val] == ["15", "18", "14"]
    assert train[0].where == "openai/gsm8k split 'train' row 0" and train[0].id == "train-0"
    assert train[0].get("question") == TRAIN[0]["question"]  # the columns stay on the row for graders
    from rft.graders import build

    grader = build({"type": "math", "extract": "hash"})  # GSM8K's marker, on both sides
    assert [grader(c, val[0]).score for c in ("7 + 8 = 15\n#### 15", "#### 14", "15")] == [1.0, 0.0, 0.0]


def test_without_val_split_val_size_rows_are_held_out_and_chat_makes_a_user_turn(gsm8k):
    train, val, _ = splits(**{**GSM8K, "val_split": None, "chat": True})
    assert (len(train), len(val)) == (10, 2)
    assert train[0].prompt[0]["role"] == "user" and "apples" in train[0].prompt[0]["content"]


def test_an_uncached_name_offline_is_one_line_naming_the_cache_and_the_fetch_command(datasets_cache):
    with pytest.raises(DataError) as e:
        splits(path="someorg/not-cached", name="main")
    msg = str(e.value)
    assert "\n" not in msg and "'someorg/not-cached'" in msg and str(datasets_cache) in msg and "OFFLINE" in msg
    assert "datasets.load_dataset('someorg/not-cached', 'main')" in msg


def test_a_config_name_not_in_the_cache_is_one_line(gsm8k):
    with pytest.raises(DataError, match="socratic") as e:
        splits(**{**GSM8K, "name": "socratic"})
    assert "\n" not in str(e.value) and "main" in str(e.value)  # the configs that are there


def test_a_mapping_to_a_missing_column_names_the_datasets_columns(datasets_cache):
    rows = [{"question": f"What is {i}+1?", "solution": str(i + 1)} for i in range(3)]
    publish_to_datasets_cache(datasets_cache, "openai/gsm8k", {"train": rows})
    with pytest.raises(DataError) as e:
        splits(path="openai/gsm8k", template="{question}")
    assert str(e.value) == ("data.dataset.answer_field 'answer' is not a column of openai/gsm8k (columns: question, "
                            "solution); set data.dataset.answer_field")
    with pytest.raises(DataError, match=r"data.dataset.template 'q' is not a column .*\(columns: question, solution\)"):
        splits(path="openai/gsm8k", template="{q}", answer_field="solution")
    with pytest.raises(DataError, match=r"no 'prompt' or 'messages' column \(columns: question, solution\); set "
                                        r"data.dataset.template"):
        splits(path="openai/gsm8k", answer_field="solution")
    with pytest.raises(DataError, match=r"data.dataset.split 'validation' is not a split of openai/gsm8k "
                                        r"\(splits: train\)"):
        splits(path="openai/gsm8k", split="validation", prompt_field="question", answer_field="solution")
    train, val, _ = splits(path="openai/gsm8k", prompt_field="question", answer_field="solution")
    for e in train + val:
        assert e.prompt == f"What is {int(e.get('answer')) - 1}+1?" and e.fields == {"solution": e.get("answer"),
                                                                                    "answer": e.get("answer")}


@pytest.mark.parametrize("good, bad, mapping, message", [
    (None, {"question": 7, "answer": "1"}, {"prompt_field": "question"}, "column 'question' is a int, not text"),
    (None, {"question": ["a"], "answer": "1"}, {"template": "Q: {question}"}, "column 'question' is a list"),
    (None, {"question": "q", "answer": {"x": 1}}, {"prompt_field": "question"}, "column 'answer' is a dict"),
    ({"question": "q", "answer": "1"}, {"question": "  ", "answer": "1"}, {"prompt_field": "question"},
     "the prompt is blank"),
    ({"question": "q", "answer": "1"}, {"question": "q", "answer": None}, {"prompt_field": "question"},
     "the answer (column 'answer') is missing"),
    ({"question": "q", "answer": "#### 1"}, {"question": "q", "answer": "no marker"},
     {"prompt_field": "question", "answer_marker": "####"}, "column 'answer' has no line starting with '####'"),
    ({"question": "q", "answer": "1", "w": 0.5}, {"question": "q", "answer": "1", "w": float("nan")},
     {"prompt_field": "question"}, "not JSON data"),
    ({"question": "q", "answer": "1"}, {"question": "q" * MAX_LINE_BYTES, "answer": "1"},
     {"prompt_field": "question"}, f"bytes as JSON, over {MAX_LINE_BYTES:,}"),
])
def test_an_untrusted_row_is_one_line_naming_it(datasets_cache, good, bad, mapping, message):
    rows = [bad, bad] if good is None else [good, bad, good, bad]  # an Arrow column has one type
    publish_to_datasets_cache(datasets_cache, "org/rows", {"train": rows})
    with pytest.raises(DataError) as e:
        splits(path="org/rows", **mapping)
    msg, first = str(e.value), 0 if good is None else 1
    assert "\n" not in msg and msg.startswith(f"org/rows split 'train' row {first}: ") and message in msg, msg
    assert msg.endswith("(1 more bad row(s); rows count from 0)")


def test_numeric_answers_are_read_as_text_and_a_row_id_names_the_example(datasets_cache):
    rows = [{"id": f"p{i}", "prompt": f"{i}+1=", "answer": i + 1} for i in range(4)]
    publish_to_datasets_cache(datasets_cache, "org/nums", {"train": rows, "test": rows[:1]})
    with pytest.raises(DataError, match="appear in both train and validation"):  # asserted, not assumed
        splits(path="org/nums", val_split="test")
    train, val, _ = splits(path="org/nums", val_split=None, max_rows=3)
    assert (len(train), len(val)) == (1, 2)  # 3 read, 2 held out
    assert all(e.get("answer") == str(int(e.id[1:]) + 1) and e.id != "p3" for e in train + val)


def test_a_hub_datasets_grader_column_is_refused(datasets_cache):
    rows = [{"prompt": "1+1=", "answer": "2", "grader": json.dumps({"type": "python", "function": "os:system"})}]
    publish_to_datasets_cache(datasets_cache, "org/graded", {"train": rows * 3})
    with pytest.raises(DataError, match="has a 'grader' column: rft takes no grader spec from a hub dataset"):
        splits(path="org/graded")


def test_local_directories_and_files_go_through_the_same_door(tmp_path):
    rows = [{"q": f"{i}+1=", "a": str(i + 1)} for i in range(6)]
    mapping = {"prompt_field": "q", "answer_field": "a"}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows), "dev": datasets.Dataset.from_list(
        [{"q": "9+9=", "a": "18"}])})
    dd.save_to_disk(str(tmp_path / "saved"))
    train, val, _ = splits(path=str(tmp_path / "saved"), val_split="dev", **mapping)
    assert (len(train), [e.prompt for e in val], val[0].get("answer")) == (6, ["9+9="], "18")
    assert train[0].base_dir == str((tmp_path / "saved").resolve())
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "test.jsonl").write_text(json.dumps({"q": "8+8=", "a": "16"}) + "\n")
    train, val, _ = splits(path=str(folder), val_split="test", **mapping)
    assert (len(train), val[0].prompt) == (6, "8+8=")
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
    train, val, _ = splits(path=str(tmp_path / "d.parquet"), **mapping)
    assert (len(train), len(val)) == (4, 2)
    with pytest.raises(DataError, match="not a split of .*splits: train"):
        splits(path=str(tmp_path / "d.parquet"), val_split="test", **mapping)
    with pytest.raises(DataError, match="no such file"):
        splits(path=str(tmp_path / "missing.jsonl"), **mapping)
    with pytest.raises(DataError, match="not a hub dataset name"):
        splits(path=str(tmp_path / "no" / "such" / "dir"), **mapping)


def test_a_fifo_named_as_a_dataset_file_is_refused_by_type_not_read(tmp_path):
    """The same gate as data.train_file: a FIFO would block the loader forever."""
    import os

    fifo = tmp_path / "rows.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        splits(path=str(fifo), prompt_field="q", answer_field="a")


@pytest.mark.parametrize("dataset, message", [
    ({"template": "{question.__class__}"}, "not a plain column placeholder"),
    ({"template": "{}"}, "not a plain column placeholder"),
    ({"template": "{question!r}"}, "not a plain column placeholder"),
    ({"template": "no columns"}, "names no column"),
    ({"template": "{question"}, "write a literal brace"),
    ({"template": "{question}", "prompt_field": "q"}, "prompt_field and template"),
    ({"answer_marker": "####", "answer_field": None}, "answer_marker needs an answer_field"),
    ({"val_split": "train"}, "val_split is the training split"),
    ({"messages_field": "m", "chat": True}, "remove chat"),
    ({"template": {"question": None}}, "quote it"),  # --set data.dataset.template={question}: YAML read a mapping
])
def test_the_mapping_is_checked_when_the_config_loads(dataset, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {"dataset": {"path": "openai/gsm8k", **dataset}}})


def test_data_takes_exactly_one_source():
    with pytest.raises(ConfigError, match="exactly one of data.task"):
        config_from_dict({"data": {"dataset": {"path": "o/n"}, "train_file": "x.jsonl"}})
    with pytest.raises(ConfigError, match="use data.dataset.val_split"):
        config_from_dict({"data": {"dataset": {"path": "o/n"}, "val_file": "x.jsonl"}})
    assert config_from_dict({"data": {"dataset": {"path": "o/n"}}}).data.dataset.split == "train"


@pytest.mark.model
def test_gsm8k_by_hub_name_trains_a_step_on_a_hub_model_with_the_hash_extraction(gsm8k, hub_cache, tiny_model_dir,
                                                                                 tmp_path):
    from rft.console import Console
    from rft.grpo.train import train

    publish_to_hub_cache(hub_cache, "rft-test/tiny-llama", tiny_model_dir)
    cfg = config_from_dict({
        "name": "gsm8k", "output_dir": str(tmp_path / "runs"), "threads": 2, "report_to": [],
        "model": {"path": "rft-test/tiny-llama"}, "data": {"dataset": GSM8K},
        "grader": {"type": "math", "extract": "hash"},
        "sampling": {"num_generations": 2, "max_new_tokens": 4}, "grpo": {"steps": 1, "prompts_per_step": 2},
        "eval": {"every": 1, "samples": 0, "capability": False},
    })
    result = train(cfg, console=Console(quiet=True))
    assert result.steps == 1
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["data"]["dataset"]["path"] == "openai/gsm8k" and saved["model"]["path"] == "rft-test/tiny-llama"
    rows = [json.loads(line) for line in (result.run_dir / "samples" / "step_000001.jsonl").read_text().splitlines()]
    assert rows and all(r["prompt"] in {t["question"] for t in TRAIN} for r in rows)
    assert not [r["reason"] for r in rows if "no usable" in r["reason"]]  # every gold was read (72, not the text)


@pytest.mark.model
def test_the_one_line_start_takes_a_hub_model_and_a_hub_dataset(gsm8k, hub_cache, tiny_model_dir, tmp_path,
                                                                  monkeypatch):
    from rft.cli import main

    publish_to_hub_cache(hub_cache, "rft-test/tiny-llama", tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--model", "rft-test/tiny-llama", "--dataset", "openai/gsm8k", "--grader",
                 '{"type": "math", "extract": "hash"}', "--steps", "1", "--quiet",
                 "--set", "data.dataset.name=main", "--set", "data.dataset.template='{question}'",
                 "--set", "data.dataset.answer_marker='####'", "--set", "data.dataset.val_split=test",
                 "--set", "grpo.prompts_per_step=2", "--set", "sampling.num_generations=2",
                 "--set", "sampling.max_new_tokens=4", "--set", "eval.samples=0", "--set", "report_to=[]"])
    assert code == 0
    saved = yaml.safe_load((tmp_path / "runs" / "run" / "config.yaml").read_text())
    assert saved["data"]["dataset"]["path"] == "openai/gsm8k" and saved["data"]["task"] is None


def test_the_cli_names_the_missing_mapping_in_one_line_with_status_2(gsm8k, tmp_path, monkeypatch, capsys):
    from rft.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(["train", "--dataset", "openai/gsm8k", "--grader", "math", "--quiet", "--set", "data.dataset.name=main"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "no 'prompt' or 'messages' column (columns: question, answer); set data.dataset.template" in err


def test_without_the_datasets_package_the_error_is_one_line_naming_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no datasets")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataError) as e:
        splits(path="openai/gsm8k", name="main")
    assert "\n" not in str(e.value) and "pip install 'rft[datasets]'" in str(e.value)
