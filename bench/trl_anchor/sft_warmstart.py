#!/usr/bin/env python
"""Weak supervised warm start for the learning-efficacy anchor (3-digit addition).

Loads the tiny model made by ``make_tiny_model.py`` (random weights) and fine-tunes it with a plain
torch loop on strings ``"a+b=SUM<eos>"`` (a, b uniform in 100..999), with the cross-entropy loss on
the completion tokens only (the digits of SUM and ``<eos>``; ``<bos>`` and the prompt are masked).
Every ``--eval-every`` steps it measures greedy accuracy on the fixed 500-problem held-out set of
``addition_task.py``; it stops the first time that accuracy lies in [--acc-lo, --acc-hi]
(default 15 %..35 %) and saves that model and its tokenizer with ``save_pretrained`` to OUT_DIR.

If a check jumps from below the window straight past it, the run goes back to the previous check
(model, optimizer, scheduler and both RNG states are kept there) and replays from it with checks
five times as frequent, so the run stays deterministic and still stops inside the window.

Training problems come from ``--data-seed`` (the held-out set has its own seed) and every pair that
is in the held-out set is skipped; the script asserts that no training pair was a held-out pair.

Fixed: AdamW (betas 0.9/0.999, weight decay 0.01), linear warm-up then constant learning rate,
gradient clipping at 1.0, fp32, dropout as configured in the model (0.1), torch.set_num_threads(2).

Prints one JSON line per check and, at the end, one JSON line with the saved model's held-out greedy
accuracy and its sampled (temperature 1.0, top_k 0, top_p 1.0) accuracy, 8 samples per problem,
both measured after reloading the saved directory. OUT_DIR also gets ``warmstart.json`` with the same.

Usage:
    python bench/trl_anchor/sft_warmstart.py TINY_MODEL_DIR OUT_DIR [--lr 1e-3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from addition_task import (  # noqa: E402
    HELDOUT_SEED,
    HELDOUT_SIZE,
    HI,
    LO,
    TrainStream,
    greedy_accuracy,
    heldout_problems,
    problems_sha256,
    sampled_accuracy,
)


def weights_sha256(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def make_batch(tokenizer, pairs: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    """Right-padded ``<bos>a+b=SUM<eos>``; labels are -100 except on SUM's digits and ``<eos>``."""
    seqs, labels = [], []
    for a, b in pairs:
        prompt_ids = tokenizer(f"{a}+{b}=")["input_ids"]  # starts with <bos>
        answer_ids = tokenizer(str(a + b), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        seqs.append(prompt_ids + answer_ids)
        labels.append([-100] * len(prompt_ids) + answer_ids)
    width = max(len(s) for s in seqs)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs])
    attention_mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    label_t = torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": label_t}


def completion_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    # Position t predicts token t+1.
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)).float(), batch["labels"][:, 1:].reshape(-1), ignore_index=-100
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", help="directory written by make_tiny_model.py")
    parser.add_argument("out_dir", help="where the warm-started model and tokenizer are saved")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--max-steps", type=int, default=30000)
    parser.add_argument("--acc-lo", type=float, default=0.15)
    parser.add_argument("--acc-hi", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0, help="torch seed (dropout)")
    parser.add_argument("--data-seed", type=int, default=1, help="seed of the training problems")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.data_seed == HELDOUT_SEED:
        parser.error(f"--data-seed must differ from the held-out seed {HELDOUT_SEED}")

    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    torch.manual_seed(args.seed)

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    model.train()

    heldout = heldout_problems()
    heldout_set = set(heldout)
    assert len(heldout_set) == HELDOUT_SIZE
    stream = TrainStream(args.data_seed, heldout_set)
    seen_train: set[tuple[int, int]] = set()

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, args.warmup_steps)))

    def snapshot(step: int) -> dict:
        return {
            "step": step,
            "model": copy.deepcopy(model.state_dict()),
            "opt": copy.deepcopy(opt.state_dict()),
            "sched": copy.deepcopy(sched.state_dict()),
            "torch_rng": torch.get_rng_state(),
            "data_rng": stream.rng.getstate(),
            "data_counts": (stream.skipped, stream.drawn),
            "seen_train": set(seen_train),
        }

    def restore(snap: dict) -> int:
        nonlocal seen_train
        model.load_state_dict(snap["model"])
        opt.load_state_dict(snap["opt"])
        sched.load_state_dict(snap["sched"])
        torch.set_rng_state(snap["torch_rng"])
        stream.rng.setstate(snap["data_rng"])
        stream.skipped, stream.drawn = snap["data_counts"]
        seen_train = set(snap["seen_train"])
        return snap["step"]

    eval_every = args.eval_every
    snap = None
    step = 0
    loss_acc, loss_n = 0.0, 0
    t0 = time.perf_counter()
    train_s = 0.0
    final_acc = None
    replays = 0
    while True:
        if step % eval_every == 0:
            acc = greedy_accuracy(model, tokenizer, heldout)
            mean_loss = loss_acc / loss_n if loss_n else None
            loss_acc, loss_n = 0.0, 0
            print(
                json.dumps(
                    {"step": step, "heldout_greedy_acc": acc, "train_loss": mean_loss, "train_s": round(train_s, 1)}
                ),
                flush=True,
            )
            if args.acc_lo <= acc <= args.acc_hi:
                final_acc = acc
                break
            if acc > args.acc_hi:
                if snap is None or eval_every == 1:
                    raise SystemExit(f"accuracy jumped past {args.acc_hi} between checks; lower --lr or --eval-every")
                eval_every = max(1, eval_every // 5)
                replays += 1
                step = restore(snap)
                print(json.dumps({"replay_from_step": step, "eval_every": eval_every}), flush=True)
                continue
            snap = snapshot(step)
        if step >= args.max_steps:
            raise SystemExit(f"held-out accuracy never reached {args.acc_lo} in {args.max_steps} steps")
        t_step = time.perf_counter()
        pairs = stream.take(args.batch_size)
        seen_train.update(pairs)
        loss = completion_loss(model, make_batch(tokenizer, pairs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        train_s += time.perf_counter() - t_step
        loss_acc += loss.item()
        loss_n += 1
        step += 1

    overlap = seen_train & heldout_set
    assert not overlap, f"{len(overlap)} training problems are held-out problems"

    model.eval()
    os.makedirs(args.out_dir, exist_ok=True)
    model.save_pretrained(args.out_dir)
    tokenizer.save_pretrained(args.out_dir)

    # Measure again on the saved copy, so that the numbers belong to what the GRPO run will load.
    reloaded = AutoModelForCausalLM.from_pretrained(args.out_dir, dtype=torch.float32)
    reloaded_tok = AutoTokenizer.from_pretrained(args.out_dir)
    greedy = greedy_accuracy(reloaded, reloaded_tok, heldout)
    assert abs(greedy - final_acc) < 1e-9, (greedy, final_acc)
    sampled = sampled_accuracy(reloaded, reloaded_tok, heldout, samples=8, seed=0)

    info = {
        "sft_steps": step,
        "sft_examples": step * args.batch_size,
        "distinct_train_problems": len(seen_train),
        "heldout_pairs_skipped_in_training_stream": stream.skipped,
        "heldout_overlap": len(overlap),
        "heldout_greedy_acc": greedy,
        "heldout_sampled_acc_t1": sampled["mean_acc"],
        "heldout_sampled_pass_at_8_t1": sampled["pass_at_8"],
        "heldout_sampled_all_8_right_t1": sampled["all_8_right"],
        "replays": replays,
        "final_eval_every": eval_every,
        "sft_train_s": round(train_s, 1),
        "sft_wall_s": round(time.perf_counter() - t0, 1),
        "settings": {
            "operands": [LO, HI],
            "lr": args.lr,
            "warmup_steps": args.warmup_steps,
            "batch_size": args.batch_size,
            "eval_every": args.eval_every,
            "acc_window": [args.acc_lo, args.acc_hi],
            "seed": args.seed,
            "data_seed": args.data_seed,
            "heldout_seed": HELDOUT_SEED,
            "heldout_size": HELDOUT_SIZE,
            "heldout_sha256": problems_sha256(heldout),
            "threads": torch.get_num_threads(),
        },
        "weights_sha256": weights_sha256(reloaded),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    with open(os.path.join(args.out_dir, "warmstart.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(json.dumps(info), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
