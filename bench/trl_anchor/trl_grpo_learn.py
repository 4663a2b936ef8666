#!/usr/bin/env python
"""Learning-efficacy anchor: how fast TRL's GRPOTrainer raises held-out accuracy on 3-digit addition.

Starts from the weak warm start written by ``sft_warmstart.py`` (held-out greedy accuracy 15-35 %)
and trains it with GRPO on prompts ``"a+b="`` (a, b uniform in 100..999, drawn with --prompt-seed,
every held-out pair skipped and disjointness asserted). Reward: 1.0 if the completion up to its first
non-digit equals the true sum, else 0.0.

Fixed settings: 8 prompts x num_generations=8 = 64 completions per optimizer step
(per_device_train_batch_size=64, TRL counts completions), gradient_accumulation_steps=1,
num_iterations=1, max_completion_length=8, temperature=1.0 (top_p 1, top_k 0), beta=0.04
(reference model loaded), fp32 (bf16/fp16 off), gradient checkpointing off, use_cpu, no vLLM,
AdamW with TRL's default linear decay to 0 over --steps (no warm-up), dropout left on
(TRL's disable_dropout=False), logging every step, seed 0, torch.set_num_threads(2).
Chosen per run: --lr and --loss-type (default: TRL's own default, "dapo" in TRL 1.16).

Every --eval-every steps (and before the first step) a TrainerCallback puts the policy in eval mode
and measures greedy accuracy on the 500 held-out problems of ``addition_task.py``; the time spent
there is kept out of ``train_wall_s`` (wall time since training began, minus all evaluation time).
One JSON line per evaluation:
  {"step", "train_wall_s", "heldout_greedy_acc", "eval_s", "train_reward_mean"}
where train_reward_mean is the mean reward of the completions sampled since the previous evaluation.
The last line is a summary: steps and train_wall_s at which held-out greedy accuracy first reached
50 %, 80 % and 90 % (null if never; resolution is --eval-every steps), the final accuracy and the
median optimizer-step time.

Usage:
    python bench/trl_anchor/trl_grpo_learn.py WARM_DIR [--lr 3e-5] [--loss-type grpo] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer, TrainerCallback, set_seed  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from addition_task import (  # noqa: E402
    HELDOUT_SEED,
    TrainStream,
    greedy_accuracy,
    heldout_problems,
    is_correct,
    problems_sha256,
    prompt_of,
)

PROMPTS_PER_STEP = 8
NUM_GENERATIONS = 8
MAX_COMPLETION_LENGTH = 8
NUM_TRAIN_PROMPTS = 4096  # more than 300 steps x 8 prompts, so no prompt repeats in a 300-step run
THRESHOLDS = (0.5, 0.8, 0.9)


def build_dataset(prompt_seed: int, heldout: list[tuple[int, int]]) -> Dataset:
    heldout_set = set(heldout)
    pairs = TrainStream(prompt_seed, heldout_set).take(NUM_TRAIN_PROMPTS)
    assert not set(pairs) & heldout_set, "a training prompt is a held-out problem"
    return Dataset.from_dict({"prompt": [prompt_of(a, b) for a, b in pairs], "answer": [a + b for a, b in pairs]})


def sum_reward(prompts, completions, answer, **kwargs) -> list[float]:
    """1.0 if the completion, up to its first non-digit, equals the true sum, else 0.0."""
    return [1.0 if is_correct(c, int(s)) else 0.0 for c, s in zip(completions, answer, strict=True)]


class HeldoutEval(TrainerCallback):
    """Greedy held-out accuracy every ``every`` steps, with its time kept out of the training clock."""

    def __init__(self, tokenizer, heldout, every: int) -> None:
        self.tokenizer = tokenizer
        self.heldout = heldout
        self.every = every
        self.model = None
        self.t0 = 0.0
        self.eval_total_s = 0.0
        self.records: list[dict] = []
        self.rewards: list[float] = []  # per-step mean reward, from TRL's logs
        self._rewards_since_eval: list[float] = []
        self.step_s: list[float] = []
        self._t_step = 0.0

    def _evaluate(self, model, step: int) -> None:
        train_wall_s = time.perf_counter() - self.t0 - self.eval_total_s
        t_eval = time.perf_counter()
        acc = greedy_accuracy(model, self.tokenizer, self.heldout, max_new_tokens=MAX_COMPLETION_LENGTH)
        eval_s = time.perf_counter() - t_eval
        self.eval_total_s += eval_s
        rec = {
            "step": step,
            "train_wall_s": round(train_wall_s, 2),
            "heldout_greedy_acc": acc,
            "eval_s": round(eval_s, 2),
            "train_reward_mean": (
                round(float(np.mean(self._rewards_since_eval)), 4) if self._rewards_since_eval else None
            ),
        }
        self._rewards_since_eval = []
        self.records.append(rec)
        print(json.dumps(rec), flush=True)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.t0 = time.perf_counter()
        self._evaluate(model, 0)

    def on_step_begin(self, args, state, control, **kwargs):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.step_s.append(time.perf_counter() - self._t_step)
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._evaluate(model, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs:
            self.rewards.append(float(logs["reward"]))
            self._rewards_since_eval.append(float(logs["reward"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="directory written by sft_warmstart.py")
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--loss-type", default=None, help="GRPOConfig.loss_type (default: TRL's default)")
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt-seed", type=int, default=2, help="seed of the GRPO training prompts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--disable-dropout", action="store_true", help="GRPOConfig.disable_dropout=True")
    parser.add_argument("--output-dir", default=None, help="Trainer output_dir (default: a fresh temp dir)")
    parser.add_argument("--json-out", default=None, help="also write every record and the summary to this file")
    args = parser.parse_args(argv)
    if args.prompt_seed == HELDOUT_SEED:
        parser.error(f"--prompt-seed must differ from the held-out seed {HELDOUT_SEED}")

    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    set_seed(args.seed)

    heldout = heldout_problems()
    info_path = os.path.join(args.model_dir, "warmstart.json")
    warm_info = None
    if os.path.exists(info_path):
        with open(info_path) as f:
            warm_info = json.load(f)
        assert warm_info["settings"]["heldout_sha256"] == problems_sha256(heldout), "held-out set differs from SFT's"

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, padding_side="left")
    dataset = build_dataset(args.prompt_seed, heldout)
    evaluator = HeldoutEval(tokenizer, heldout, args.eval_every)

    config_kwargs = {}
    if args.loss_type is not None:
        config_kwargs["loss_type"] = args.loss_type
    config = GRPOConfig(
        output_dir=args.output_dir or tempfile.mkdtemp(prefix="trl_grpo_learn_"),
        per_device_train_batch_size=PROMPTS_PER_STEP * NUM_GENERATIONS,
        num_generations=NUM_GENERATIONS,
        gradient_accumulation_steps=1,
        num_iterations=1,
        max_completion_length=MAX_COMPLETION_LENGTH,
        temperature=1.0,
        beta=args.beta,
        learning_rate=args.lr,
        bf16=False,
        fp16=False,
        use_vllm=False,
        gradient_checkpointing=False,
        disable_dropout=args.disable_dropout,
        logging_steps=1,
        max_steps=args.steps,
        seed=args.seed,
        data_seed=args.seed,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        model_init_kwargs={"dtype": "float32"},
        **config_kwargs,
    )

    trainer = GRPOTrainer(
        model=args.model_dir,
        reward_funcs=sum_reward,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[evaluator],
    )
    assert trainer.model.device.type == "cpu", trainer.model.device
    assert (trainer.ref_model is not None) == (args.beta != 0.0)

    t_all = time.perf_counter()
    trainer.train()
    total_wall_s = time.perf_counter() - t_all

    records = evaluator.records
    summary = {
        "summary": True,
        "lr": args.lr,
        "loss_type": config.loss_type,
        "loss_type_is_trl_default": args.loss_type is None,
        "beta": args.beta,
        "disable_dropout": args.disable_dropout,
        "steps": len(evaluator.step_s),
        "eval_every": args.eval_every,
        "warmstart_heldout_greedy_acc": records[0]["heldout_greedy_acc"],
        "final_heldout_greedy_acc": records[-1]["heldout_greedy_acc"],
        "best_heldout_greedy_acc": max(r["heldout_greedy_acc"] for r in records),
    }
    for thr in THRESHOLDS:
        hit = next((r for r in records if r["heldout_greedy_acc"] >= thr), None)
        pct = int(round(thr * 100))
        summary[f"steps_to_{pct}pct"] = hit["step"] if hit else None
        summary[f"train_wall_s_to_{pct}pct"] = hit["train_wall_s"] if hit else None
    summary.update(
        {
            "train_wall_s": records[-1]["train_wall_s"],
            "eval_total_s": round(evaluator.eval_total_s, 1),
            "train_call_wall_s": round(total_wall_s, 1),
            "median_step_s": round(float(np.median(evaluator.step_s[2:])), 4),
            "train_reward_first_25_steps": round(float(np.mean(evaluator.rewards[:25])), 4),
            "train_reward_last_25_steps": round(float(np.mean(evaluator.rewards[-25:])), 4),
            "warmstart_sft": (
                {k: warm_info[k] for k in ("heldout_greedy_acc", "heldout_sampled_acc_t1", "weights_sha256")}
                if warm_info
                else None
            ),
            "versions": {"torch": torch.__version__, "trl": trl.__version__, "transformers": transformers.__version__},
        }
    )
    print(json.dumps(summary), flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"evals": records, "step_rewards": evaluator.rewards, "summary": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
