#!/usr/bin/env python
"""TRL 1.16's GRPOTrainer on the demo's sloppy-annotator warm start (run it in the TRL venv).

The other side of ``bench/efficacy_sloppy.py``: the same model directory (rft's tiny
LlamaForCausalLM with its character tokenizer, written by ``rft sft`` with ``save_pretrained``),
the same training prompts and the same 500 held-out problems (``ROOT/data/{train,val}.jsonl``,
exported by ``efficacy_sloppy.py warmstart``), and the same check as rft's ``arithmetic`` grader:
reward 1.0 if ``completion.strip()`` is one integer (``-?\\d+``, at most 32 characters) equal to
the row's ``answer``, else 0.0.

Fixed to rft's demo settings: 16 prompts x 8 generations = 128 completions per optimizer step
(``per_device_train_batch_size=128``: TRL counts completions), ``max_completion_length=5``,
temperature 1.0 (top_p 1, top_k 0), ``num_iterations=1``, fp32, no gradient checkpointing,
``use_cpu``, seed 0, ``torch.set_num_threads(2)``. Chosen per run: ``--lr``, ``--beta`` (TRL's
default 0.0), ``--loss-type`` (TRL's default ``dapo``), ``--lr-scheduler`` (TRL's default linear),
``--keep-dropout`` (dropout is disabled by default here; the tiny Llama has none anyway).

A callback measures greedy held-out accuracy (policy in eval mode, ``max_new_tokens=5``) before
step 1 and every ``--eval-every`` steps; its time is kept out of ``train_wall_s`` (wall time since
``on_train_begin`` minus evaluation). ``train_s`` is the sum of the optimizer steps' own times
(``on_step_begin`` to ``on_step_end``), rft's ``train_s`` counterpart. ``--max-train-s`` stops a run
once that much training time is spent; ``--stop-at`` stops it once accuracy reaches that value.

Usage (from the project root):
    "$TMPDIR/trlvenv/bin/python" bench/efficacy_sloppy_trl.py ROOT --lr 1e-4 [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from efficacy_summary import threshold_hits  # noqa: E402  (bench/, no rft import)
from transformers import AutoTokenizer, TrainerCallback, set_seed  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

PROMPTS_PER_STEP = 16
NUM_GENERATIONS = 8
MAX_COMPLETION_LENGTH = 5
_INT = re.compile(r"-?\d+")


def is_right(completion: str, answer) -> bool:
    """rft's ``arithmetic`` grader: exactly one integer (after strip), equal to the answer."""
    text = completion.strip()
    return len(text) <= 32 and _INT.fullmatch(text) is not None and int(text) == int(answer)


def arithmetic_reward(prompts, completions, answer, **kwargs) -> list[float]:
    return [1.0 if is_right(c, a) else 0.0 for c, a in zip(completions, answer, strict=True)]


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@torch.no_grad()
def greedy_accuracy(model, tokenizer, rows: list[dict], batch_size: int = 500) -> float:
    was_training = model.training
    model.eval()
    right = 0
    try:
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            enc = tokenizer([r["prompt"] for r in chunk], return_tensors="pt", padding=True)
            gen = model.generate(**enc, do_sample=False, max_new_tokens=MAX_COMPLETION_LENGTH,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            right += sum(is_right(t, r["answer"]) for t, r in zip(texts, chunk, strict=True))
    finally:
        model.train(was_training)
    return right / len(rows)


class HeldoutEval(TrainerCallback):
    """Greedy held-out accuracy every ``every`` steps, with its time kept out of the training clock."""

    def __init__(self, tokenizer, heldout, every: int, max_train_s: float | None, stop_at: float | None) -> None:
        self.tokenizer, self.heldout, self.every = tokenizer, heldout, every
        self.max_train_s, self.stop_at = max_train_s, stop_at
        self.t0 = 0.0
        self.eval_total_s = 0.0
        self.records: list[dict] = []
        self.rewards: list[float] = []
        self._since_eval: list[float] = []
        self.step_s: list[float] = []
        self._t_step = 0.0

    def _evaluate(self, model, step: int) -> float:
        train_wall_s = time.perf_counter() - self.t0 - self.eval_total_s
        t = time.perf_counter()
        acc = greedy_accuracy(model, self.tokenizer, self.heldout)
        eval_s = time.perf_counter() - t
        self.eval_total_s += eval_s
        rec = {"step": step, "train_s": round(sum(self.step_s), 2), "train_wall_s": round(train_wall_s, 2),
               "heldout_greedy_acc": acc, "eval_s": round(eval_s, 2),
               "train_reward_mean": round(statistics.mean(self._since_eval), 4) if self._since_eval else None}
        self._since_eval = []
        self.records.append(rec)
        print(json.dumps(rec), flush=True)
        return train_wall_s

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.t0 = time.perf_counter()
        self._evaluate(model, 0)

    def on_step_begin(self, args, state, control, **kwargs):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.step_s.append(time.perf_counter() - self._t_step)
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            wall = self._evaluate(model, state.global_step)
            if self.max_train_s is not None and wall >= self.max_train_s:
                control.should_training_stop = True
            if self.stop_at is not None and self.records[-1]["heldout_greedy_acc"] >= self.stop_at:
                control.should_training_stop = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs:
            self.rewards.append(float(logs["reward"]))
            self._since_eval.append(float(logs["reward"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="directory written by `efficacy_sloppy.py warmstart`")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--loss-type", default=None, help="GRPOConfig.loss_type (default: TRL's, dapo)")
    p.add_argument("--lr-scheduler", default="linear", help="lr_scheduler_type (TRL's default: linear)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=20)
    p.add_argument("--max-train-s", type=float, default=None)
    p.add_argument("--stop-at", type=float, default=None, help="stop once held-out accuracy reaches this")
    p.add_argument("--keep-dropout", action="store_true", help="leave disable_dropout at TRL's default (False)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    model_dir = os.path.join(args.root, "demo-sft", "model")
    train_rows = read_jsonl(os.path.join(args.root, "data", "train.jsonl"))
    heldout = read_jsonl(os.path.join(args.root, "data", "val.jsonl"))
    assert not {r["prompt"] for r in train_rows} & {r["prompt"] for r in heldout}, "train and held-out overlap"
    dataset = Dataset.from_dict({"prompt": [r["prompt"] for r in train_rows],
                                 "answer": [int(r["answer"]) for r in train_rows]})
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    evaluator = HeldoutEval(tokenizer, heldout, args.eval_every, args.max_train_s, args.stop_at)
    extra = {"loss_type": args.loss_type} if args.loss_type else {}
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl_sloppy_"),
        per_device_train_batch_size=PROMPTS_PER_STEP * NUM_GENERATIONS,
        num_generations=NUM_GENERATIONS,
        gradient_accumulation_steps=1,
        num_iterations=1,
        max_completion_length=MAX_COMPLETION_LENGTH,
        temperature=1.0,
        beta=args.beta,
        learning_rate=args.lr,
        lr_scheduler_type=args.lr_scheduler,
        bf16=False,
        fp16=False,
        use_vllm=False,
        gradient_checkpointing=False,
        disable_dropout=not args.keep_dropout,
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
        **extra,
    )
    trainer = GRPOTrainer(model=model_dir, reward_funcs=arithmetic_reward, args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[evaluator])
    assert trainer.model.device.type == "cpu"
    t_all = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t_all

    recs = evaluator.records
    summary = {"summary": True, "side": "trl", "lr": args.lr, "beta": args.beta, "loss_type": config.loss_type,
               "lr_scheduler": args.lr_scheduler, "disable_dropout": not args.keep_dropout,
               "steps": len(evaluator.step_s), "eval_every": args.eval_every,
               "warmstart_heldout_greedy_acc": recs[0]["heldout_greedy_acc"],
               "final_heldout_greedy_acc": recs[-1]["heldout_greedy_acc"],
               "best_heldout_greedy_acc": max(r["heldout_greedy_acc"] for r in recs)}
    summary.update(threshold_hits(recs))
    summary.update({
        "train_s": round(sum(evaluator.step_s), 1),
        "train_wall_s": recs[-1]["train_wall_s"],
        "eval_total_s": round(evaluator.eval_total_s, 1),
        "train_call_wall_s": round(total, 1),
        "median_step_s": round(statistics.median(evaluator.step_s[2:]), 4),
        "train_reward_first_25_steps": round(statistics.mean(evaluator.rewards[:25]), 4),
        "train_reward_last_25_steps": round(statistics.mean(evaluator.rewards[-25:]), 4),
        "versions": {"torch": torch.__version__, "trl": trl.__version__, "transformers": transformers.__version__},
    })
    print(json.dumps(summary), flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"evals": recs, "step_rewards": evaluator.rewards, "summary": summary}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
