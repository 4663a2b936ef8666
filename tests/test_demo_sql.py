"""`rft demo --task sql`: the SQL demo's whole pipeline (doctor on the base, SFT warm start with retry
transcripts, doctor on the warm start, 3-turn GRPO, unseen intents through rft eval) for a few steps
on the tiny model with a chat template, in seconds. Numbers are not asserted (they depend on the
CPU's kernels); that every stage ran and reported success by turn is."""

import json
import re
import shutil

import pytest

from rft.cli import main
from rft.models.load import load_tokenizer

# A minimal chat template over the tiny model's character vocabulary (as in test_eval_command).
TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}:{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")
TINY = ["model.dtype=float32", "model.lora={r: 4, alpha: 8, target_modules: all-linear}",
        "data.task.val_size=4", "data.task.train_size=16", "environment.max_observation_tokens=32",
        "sampling.max_new_tokens=8", "sampling.num_generations=2", "grpo.steps=2", "grpo.prompts_per_step=2",
        "eval.size=4", "eval.every=1", "eval.capability=false", "checkpoint.every=1", "sft.steps=2",
        "sft.batch_size=2", "sft.eval_every=2", "sft.warmup_steps=0", "report_to=[]"]


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RFT_CACHE", str(tmp_path_factory.mktemp("rft-cache")))
        yield


def test_sql_demo_runs_every_stage_and_reports_success_by_turn(tmp_path, varied_model_dir, capsys):
    model = shutil.copytree(varied_model_dir, tmp_path / "chat-model")
    tok = load_tokenizer(model)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(model)
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["demo", "--task", "sql", "--model", str(model), "--output-dir", str(tmp_path / "runs"), *sets]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"doctor: (?:ok|warn|block)", out)) >= 2, out
    for stage in ("1/4 base model", "2/4 SFT warm start", "3/4 GRPO", "4/4 unseen intents"):
        assert stage in out
    assert "held-out questions, turn 1 / within 3" in out and re.search(r"base \d+\.\d% / \d+\.\d%", out), out
    run = tmp_path / "runs" / "sql-smollm2"
    summary = json.loads((run / "unseen_templates.eval.json").read_text())
    assert len(summary["models"]) == 3 and summary["settings"]["environment"]["max_turns"] == 3
    for m in summary["models"]:
        assert {"episode/success_by_turn_1", "episode/success_by_turn_3"} <= set(m["metrics"])
    vals = [json.loads(line) for line in (run / "metrics.jsonl").open() if '"val"' in line]
    assert "val/episode/success_by_turn_3" in vals[-1]
    sft_cfg = (tmp_path / "runs" / "sql-smollm2-sft" / "config.yaml").read_text()
    assert "retry_share: 0.3" in sft_cfg and "questions: natural" in sft_cfg


def test_the_copyable_config_is_the_demos_and_holds_every_gold_query():
    from pathlib import Path

    from rft.config import load_config
    from rft.commands.common import demo_config_path
    from rft.commands.demo_sql import SQL_CONFIG
    from rft.tasks import TASKS

    mine = Path(__file__).resolve().parents[1] / "configs" / "sql_smollm2.yaml"
    assert mine.read_text() == demo_config_path(SQL_CONFIG).read_text(), "configs/sql_smollm2.yaml is a copy"
    cfg = load_config(mine)
    assert (cfg.environment.type, cfg.environment.turns, cfg.data.task.questions) == ("sql_retry", 3, "natural")
    train, val, _ = TASKS["sql"](cfg.data.task, cfg.seed)
    longest = max(len(e.get("gold_sql")) for e in train + val)
    assert longest <= 2.5 * cfg.sampling.max_new_tokens, "a SmolLM2 token holds 2.5+ characters of SQL"
