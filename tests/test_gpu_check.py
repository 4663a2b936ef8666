"""bench/gpu_check.py's CPU dry-run: the script the GPU run uses, end to end on a tiny model.

The GPU run gets one chance in a short lease, so every code path of it runs here first: the four
correctness checks must pass on the CPU, every rft throughput run must produce positive numbers, and
TRL's runs either pass or are skipped because trl does not import here (it is not a test
dependency). Runs in-process, so the suite's warning filters (FutureWarning as error) apply to it.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "gpu_check.py"
CHECKS = ["check/greedy_matches_generate", "check/decode_step_bf16", "check/logprobs_train_vs_sampler",
          "check/lora_resume"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there (string annotations)
    spec.loader.exec_module(module)
    out, work = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("work")
    code = module.main(["--out", str(out), "--work", str(work), "--dry-run", "--pairs", "1"])
    return code, json.loads((out / "results.json").read_text()), (out / "summary.md").read_text()


def test_every_correctness_check_passes_on_the_cpu(dry_run):
    code, res, _ = dry_run
    status = {e["name"]: e["status"] for e in res["entries"]}
    failed = {e["name"]: e["detail"].get("error") for e in res["entries"] if e["status"] == "fail"}
    assert not failed and code == 0, failed
    assert status["setup/models"] == "pass"
    assert [status.get(name) for name in CHECKS] == ["pass"] * len(CHECKS)


def test_the_checks_exercise_what_they_claim(dry_run):
    details = {e["name"]: e["detail"] for e in dry_run[1]["entries"]}
    greedy = details["check/greedy_matches_generate"]
    assert greedy["fast_steps"] > 0 and greedy["rows_stopped_early"] >= 1 and len(greedy["prompt_lens"]) > 1
    decode = details["check/decode_step_bf16"]["max_abs_err_vs_float32"]
    assert 0 < decode["model_bf16"] and decode["fast_bf16"] <= 2 * decode["model_bf16"]
    resume = details["check/lora_resume"]
    assert resume["steps"] == 4 and resume["moved_steps_3_4"] > 0


def test_rft_throughput_runs_report_positive_rates(dry_run):
    res = dry_run[1]
    sizes = res["sizes"]
    runs = {e["name"]: e for e in res["entries"] if e["name"].startswith("throughput/rft/")}
    assert set(runs) == {"throughput/rft/full/1", "throughput/rft/lora/1"}
    for name, e in runs.items():
        d = e["detail"]
        assert e["status"] == "pass", (name, d.get("error"))
        for key in ("step_s", "rollout_s", "train_s", "rollout_tokens_per_s", "train_tokens_per_s",
                    "mfu_train_vs_measured_matmul", "mfu_step_vs_measured_matmul", "peak_rss_gib_process"):
            assert d[key] > 0, (name, key, d[key])
        assert d["mfu_train"] is None and d["peak_gpu_gib"] is None  # no card, no datasheet peak or GPU memory
        assert d["completion_tokens_per_step"] == sizes["prompts"] * sizes["gens"] * sizes["new_tokens"]
        assert d["all_completions_full_length"]
        assert {"rollout", "ref_logprobs", "update"} <= set(d["phases_median_s"])


def test_trl_runs_pass_or_say_why_they_were_skipped(dry_run):
    trl = [e for e in dry_run[1]["entries"] if e["name"].startswith("throughput/trl/")]
    assert len(trl) == 2
    for e in trl:
        assert e["status"] == "pass" or (e["status"] == "skipped"
                                         and e["detail"]["reason"].startswith("trl not importable")), e


def test_the_summary_lists_every_entry(dry_run):
    res, summary = dry_run[1], dry_run[2]
    assert all(f"| {e['name']} | {e['status']} |" in summary for e in res["entries"])
    assert "prime-rl" in summary
