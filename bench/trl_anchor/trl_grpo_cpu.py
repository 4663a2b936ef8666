#!/usr/bin/env python
"""CPU throughput baseline for Hugging Face TRL's GRPOTrainer.

Trains the tiny local model made by ``make_tiny_model.py`` with GRPO on 256 plain-text
arithmetic prompts ("37+45=") for a fixed number of optimizer steps, entirely on the CPU, and
times every optimizer step with a TrainerCallback (time.perf_counter in on_step_begin /
on_step_end).

Fixed settings (the anchor other GRPO implementations are compared against):
  8 prompts x num_generations=8 = 64 completions per optimizer step
  (TRL counts per_device_train_batch_size in completions, so it is 64 here),
  gradient_accumulation_steps=1, num_iterations=1, max_completion_length=16,
  temperature=1.0, learning_rate=1e-5, fp32 (bf16/fp16 off), no vLLM, logging every step,
  seed 0, report_to none, use_cpu=True, torch.set_num_threads(2).
  beta defaults to 0.04 (a reference model is loaded); --beta 0.0 drops it.
  Gradient checkpointing is OFF (TRL 1.x defaults it to ON; --gradient-checkpointing turns it on).
  Dropout is left as TRL leaves it (disable_dropout=False; --disable-dropout turns it off).

The last line printed is one JSON object:
  {"trl_version", "torch_version", "steps", "median_step_s", "p10_step_s", "p90_step_s",
   "completions_per_step", "median_completion_tokens_per_s", "peak_rss_mb"}
Step statistics exclude the first --warmup-steps (2) steps. The line before it starts with
"DETAIL " and carries a JSON object with the settings, the per-step times and a per-phase
breakdown (generation, reference-model forward, policy forward+loss, backward, optimizer).

Usage:
    python bench/trl_anchor/trl_grpo_cpu.py MODEL_DIR [--beta 0.04] [--steps 20] [--detail-json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import tempfile
import time
import warnings
from collections import defaultdict

# Nothing may come from the Hugging Face hub: the model and tokenizer are local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Hide any GPU so that everything runs on the CPU even on a machine that has one.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer, TrainerCallback, set_seed  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

NUM_PROMPTS = 256
PROMPTS_PER_STEP = 8
NUM_GENERATIONS = 8
MAX_COMPLETION_LENGTH = 16
LEADING_DIGITS = re.compile(r"\d*")


def build_dataset(seed: int) -> Dataset:
    """256 prompts "a+b=" with two-digit operands; the answer column holds the true sum."""
    rng = random.Random(seed)
    prompts, answers = [], []
    for _ in range(NUM_PROMPTS):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        prompts.append(f"{a}+{b}=")
        answers.append(a + b)
    return Dataset.from_dict({"prompt": prompts, "answer": answers})


class Phases:
    """Per-optimizer-step accumulators, written by the trainer subclass and the callback."""

    def __init__(self) -> None:
        self.cur: dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.cur = defaultdict(float)

    def add(self, key: str, value: float) -> None:
        self.cur[key] += value


def make_reward_fn(phases: Phases):
    def sum_reward(prompts, completions, answer, **kwargs) -> list[float]:
        """1.0 if the completion, up to its first non-digit, equals the true sum, else 0.0."""
        t0 = time.perf_counter()
        rewards = []
        for completion, true_sum in zip(completions, answer, strict=True):
            digits = LEADING_DIGITS.match(completion).group(0)
            rewards.append(1.0 if digits and int(digits) == int(true_sum) else 0.0)
        phases.add("reward_fn_s", time.perf_counter() - t0)
        phases.add("reward_sum", sum(rewards))
        return rewards

    return sum_reward


class TimedGRPOTrainer(GRPOTrainer):
    """GRPOTrainer with timers around its phases. Behaviour is unchanged."""

    def __init__(self, *args, phases: Phases, **kwargs):
        self._phases = phases
        super().__init__(*args, **kwargs)

    def _generate(self, prompts):
        t0 = time.perf_counter()
        out = super()._generate(prompts)
        self._phases.add("generate_s", time.perf_counter() - t0)
        completion_ids = out[1]
        stop_ids = {*self.eos_token_ids, self._tokenizer.pad_token_id}
        self._phases.add("completions", len(completion_ids))
        self._phases.add("completion_tokens", sum(len(ids) for ids in completion_ids))
        # Same definition as TRL's completions/clipped_ratio: the completion did not end with EOS,
        # i.e. it ran to max_completion_length.
        self._phases.add("clipped", sum(1 for ids in completion_ids if not ids or ids[-1] not in stop_ids))
        return out

    def _generate_and_score_completions(self, inputs):
        t0 = time.perf_counter()
        out = super()._generate_and_score_completions(inputs)
        self._phases.add("generate_and_score_s", time.perf_counter() - t0)
        return out

    def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
        t0 = time.perf_counter()
        out = super()._get_per_token_logps_and_entropies(model, *args, **kwargs)
        dt = time.perf_counter() - t0
        if self.ref_model is not None and model is self.ref_model:
            self._phases.add("ref_logps_s", dt)
        elif torch.is_grad_enabled():
            self._phases.add("policy_logps_s", dt)  # part of compute_loss
        else:
            self._phases.add("old_logps_s", dt)  # only when generation and optimisation are misaligned
        return out

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        t0 = time.perf_counter()
        out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        self._phases.add("policy_forward_loss_s", time.perf_counter() - t0)
        return out

    def training_step(self, model, inputs, num_items_in_batch):
        t0 = time.perf_counter()
        out = super().training_step(model, inputs, num_items_in_batch)
        self._phases.add("training_step_s", time.perf_counter() - t0)
        return out


class StepTimer(TrainerCallback):
    """Times each optimizer step between on_step_begin and on_step_end."""

    def __init__(self, phases: Phases) -> None:
        self.phases = phases
        self.step_s: list[float] = []
        self.records: list[dict[str, float]] = []
        self.logs: list[dict] = []
        self._t0 = 0.0
        self._t_opt = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.phases.reset()
        self._t0 = time.perf_counter()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self._t_opt = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.phases.add("optimizer_s", time.perf_counter() - self._t_opt)

    def on_step_end(self, args, state, control, **kwargs):
        dt = time.perf_counter() - self._t0
        self.step_s.append(dt)
        rec = dict(self.phases.cur)
        rec["step_s"] = dt
        self.records.append(rec)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None:
            self.logs.append(dict(logs))


def peak_rss_mb() -> float:
    # VmHWM: this address space's peak, which starts afresh at exec. ru_maxrss (KiB on Linux) survives
    # fork and exec, so a process started from a bigger one reports the parent's peak; it is the fallback.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="directory written by make_tiny_model.py")
    parser.add_argument("--beta", type=float, default=0.04, help="KL coefficient; 0.0 means no reference model")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps")
    parser.add_argument("--warmup-steps", type=int, default=2, help="leading steps left out of the statistics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--gradient-checkpointing", action="store_true", help="turn gradient checkpointing on (TRL's own default)"
    )
    parser.add_argument(
        "--disable-dropout",
        action="store_true",
        help="GRPOConfig.disable_dropout=True (TRL's default is False; the tiny GPT-2 has dropout 0.1)",
    )
    parser.add_argument("--output-dir", default=None, help="Trainer output_dir (default: a fresh temp dir)")
    parser.add_argument("--detail-json", default=None, help="also write the DETAIL object to this file")
    args = parser.parse_args(argv)

    if args.steps <= args.warmup_steps:
        parser.error("--steps must be larger than --warmup-steps")

    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    set_seed(args.seed)

    output_dir = args.output_dir or tempfile.mkdtemp(prefix="trl_grpo_cpu_")
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, padding_side="left")
    dataset = build_dataset(args.seed)
    phases = Phases()
    timer = StepTimer(phases)

    config = GRPOConfig(
        output_dir=output_dir,
        # TRL counts this batch in completions: 8 prompts x 8 generations = 64 per optimizer step.
        per_device_train_batch_size=PROMPTS_PER_STEP * NUM_GENERATIONS,
        num_generations=NUM_GENERATIONS,
        gradient_accumulation_steps=1,
        num_iterations=1,
        max_completion_length=MAX_COMPLETION_LENGTH,
        temperature=1.0,
        beta=args.beta,
        learning_rate=1e-5,
        bf16=False,
        fp16=False,
        use_vllm=False,
        gradient_checkpointing=args.gradient_checkpointing,
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
    )

    trainer = TimedGRPOTrainer(
        model=args.model_dir,  # TRL loads the policy, and (beta != 0) the reference model, from this path
        reward_funcs=make_reward_fn(phases),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[timer],
        phases=phases,
    )
    assert trainer.model.device.type == "cpu", trainer.model.device
    assert (trainer.ref_model is not None) == (args.beta != 0.0)

    t_train = time.perf_counter()
    trainer.train()
    train_wall_s = time.perf_counter() - t_train

    steps_done = len(timer.step_s)
    if steps_done != args.steps:
        raise RuntimeError(f"expected {args.steps} optimizer steps, timed {steps_done}")

    measured = timer.records[args.warmup_steps :]
    step_s = np.array([r["step_s"] for r in measured])
    tok_per_s = np.array([r["completion_tokens"] / r["step_s"] for r in measured])
    completions_per_step = sorted({int(r["completions"]) for r in timer.records})
    if completions_per_step != [PROMPTS_PER_STEP * NUM_GENERATIONS]:
        raise RuntimeError(f"unexpected completions per step: {completions_per_step}")

    def med(key: str) -> float:
        return float(np.median([r.get(key, 0.0) for r in measured]))

    # Phase breakdown (medians over the measured steps). backward = training_step minus generation/scoring and
    # the loss forward; "other" = the rest of the step (grad clipping, LR scheduler, zero_grad, callbacks).
    per_step_backward = [
        r["training_step_s"] - r["generate_and_score_s"] - r["policy_forward_loss_s"] for r in measured
    ]
    per_step_score_rest = [
        r["generate_and_score_s"] - r["generate_s"] - r.get("ref_logps_s", 0.0) - r.get("old_logps_s", 0.0)
        for r in measured
    ]
    per_step_other = [r["step_s"] - r["training_step_s"] - r.get("optimizer_s", 0.0) for r in measured]
    phase_median_s = {
        "generate": med("generate_s"),
        "ref_model_logps": med("ref_logps_s"),
        "old_logps": med("old_logps_s"),
        "reward_and_advantages_rest": float(np.median(per_step_score_rest)),
        "policy_forward_and_loss": med("policy_forward_loss_s"),
        "backward": float(np.median(per_step_backward)),
        "optimizer_step": med("optimizer_s"),
        "other": float(np.median(per_step_other)),
    }
    total_completions = sum(r["completions"] for r in timer.records)
    detail = {
        "beta": args.beta,
        "reference_model": trainer.ref_model is not None,
        "gradient_checkpointing": config.gradient_checkpointing,
        "disable_dropout": config.disable_dropout,
        "threads": torch.get_num_threads(),
        "seed": args.seed,
        "optim": str(config.optim),
        "attn_implementation": trainer.model.config._attn_implementation,
        "model_params": sum(p.numel() for p in trainer.model.parameters()),
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "trl": trl.__version__,
            "transformers": transformers.__version__,
        },
        "warmup_steps_excluded": args.warmup_steps,
        "train_wall_s": train_wall_s,
        "step_s": timer.step_s,
        "completion_tokens_per_step": [int(r["completion_tokens"]) for r in timer.records],
        "clipped_fraction_all_steps": sum(r["clipped"] for r in timer.records) / total_completions,
        "mean_completion_len": sum(r["completion_tokens"] for r in timer.records) / total_completions,
        "reward_mean_all_steps": sum(r.get("reward_sum", 0.0) for r in timer.records) / total_completions,
        "median_generate_only_tokens_per_s": float(
            np.median([r["completion_tokens"] / r["generate_s"] for r in measured])
        ),
        "phase_median_s": phase_median_s,
        "phase_median_fraction_of_step": {k: v / float(np.median(step_s)) for k, v in phase_median_s.items()},
        "trl_logged_step_time": [lg["step_time"] for lg in timer.logs if "step_time" in lg],
        "trl_logged_clipped_ratio": [
            lg["completions/clipped_ratio"] for lg in timer.logs if "completions/clipped_ratio" in lg
        ],
    }
    print("DETAIL " + json.dumps(detail))
    if args.detail_json:
        with open(args.detail_json, "w") as f:
            json.dump(detail, f, indent=2)

    result = {
        "trl_version": trl.__version__,
        "torch_version": torch.__version__,
        "steps": steps_done,
        "median_step_s": round(float(np.median(step_s)), 4),
        "p10_step_s": round(float(np.percentile(step_s, 10)), 4),
        "p90_step_s": round(float(np.percentile(step_s, 90)), 4),
        "completions_per_step": completions_per_step[0],
        "median_completion_tokens_per_s": round(float(np.median(tok_per_s)), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
