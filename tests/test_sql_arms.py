"""bench/sql_arms.py --smoke: the issue-23 comparison's whole pipeline (the SQL demo as arm c, its warm
start trained by 1-turn GRPO as arm b, SFT alone as arm a, each on (c)'s wall time; every model through
the same 3-turn environment on held-out and unseen questions; general-text NLL) on a tiny random chat
model, in seconds. Numbers are not asserted; that every arm ran, on its budget, and was reported is."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "sql_arms.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("sql_arms", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.model
def test_the_smoke_run_reports_every_arm_on_equal_wall_time(bench, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "arms.json"
    assert bench.main(["--smoke", "--work", str(tmp_path / "work"), "--json-out", str(out)]) == 0
    printed = capsys.readouterr().out
    for arm in ("(a) SFT only", "(b) SFT + 1-turn GRPO", "(c) SFT + 3-turn GRPO (demo)", "SFT warm start"):
        assert arm in printed
    [r] = json.loads(out.read_text())
    assert set(r["eval"]["held_out"]) == set(r["eval"]["unseen"]) == {"warm start", "a", "b", "c"}
    for per_set in r["eval"].values():
        for arm in per_set.values():
            assert {"episode/success_by_turn_1", "episode/success_by_turn_3"} <= set(arm["metrics"])
            assert set(arm["retry_counts"]) == {"fixed", "changed", "repeated"}
    assert set(r["nll"]) == {"base", "warm start", "a", "b", "c"}
    arms = r["arms"]
    assert arms["b"]["grpo_steps"] >= 1 and arms["a"]["sft_steps"] >= 1 and arms["a"]["grpo_steps"] == 0
    b_cfg = (Path(r["demo"]["run_dir"]).parent / "sql-smollm2-grpo1turn" / "config.yaml").read_text()
    assert "max_turns: 1" in b_cfg  # arm b trained on one turn, and was still evaluated on three


def test_retries_sort_episodes_by_what_the_model_did_after_an_error(bench):
    def row(turns, passed):
        roles = ["assistant", "observation"] * len(turns)
        texts = [t for pair in turns for t in pair]
        return {"id": "x", "prompt": [{"role": "user", "content": "q?"}], "passed": passed,
                "transcript": [{"role": r, "text": t} for r, t in zip(roles, texts) if t is not None]}

    rows = [row([("SELECT budget FROM emp", "Error: no such column: budget"), ("SELECT 1", None)], True),
            row([("SELECT budget FROM emp", "Error: no such column: budget"), ("SELECT 2", None)], False),
            row([("SELECT budget FROM emp", "Error: no such column: budget"), ("SELECT budget FROM emp", None)], False),
            row([("SELECT 1", None)], True)]
    got = bench.retries(rows)
    assert [len(got[k]) for k in ("fixed", "changed", "repeated")] == [1, 1, 1]
    assert got["fixed"][0]["question"] == "q?"
