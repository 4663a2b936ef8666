#!/usr/bin/env python
"""TRL 1.16 ``GRPOTrainer`` on SmolLM2 chat word problems, timed like the shared CPU anchor.

Runs in the TRL venv (``$TMPDIR/trlvenv/bin/python``); ``bench/rft_vs_trl_smollm2.py`` calls it.
The step timer, the phase timers and the result line come from
``bench/trl_anchor/trl_grpo_cpu.py`` (loaded from its file, nothing in it patched): a
``TrainerCallback`` times ``on_step_begin``..``on_step_end``, a trainer subclass times
``_generate``, ``_generate_and_score_completions``, the reference forward, ``compute_loss`` and
``training_step``. What this file adds:

- the data: a JSONL of chat prompts (``prompt``: messages, ``answer``, ``id``) read in file order
  (``shuffle_dataset=False``), so that step k trains on the k-th block of ``--prompts-per-step``
  rows: the bench script writes them in the order rft's prompt cursor will draw them;
- the reward: 1.0 when the last number of the reply equals ``answer`` (commas dropped), else 0.0;
  rft's ``math`` grader with ``extract: last_number`` also rejects hedges and echoes, which changes
  rewards, not the work of a step;
- three settings. ``lora``: LoRA r=16, alpha 32, dropout 0, all linear layers (``peft_config``), the
  base loaded in ``--base-dtype`` (bfloat16 by default, like rft's ``model.dtype: bfloat16``) and
  ``bf16=True``; on the CPU accelerate then wraps the model's forward in
  ``torch.autocast("cpu", torch.bfloat16)`` (no weight cast), and peft keeps the adapters in
  float32. ``full``: float32 weights and ``bf16=True`` (TRL's mixed precision: autocast around
  scoring and training, generation on the float32 weights). ``full-fp32``: float32 weights,
  ``bf16=False`` (the anchor's setting). The DETAIL line has a
  probe of what actually ran (autocast on or off, weight and output dtypes of one base linear,
  with and without grad);
- the PEFT reference: with LoRA TRL has no reference model, it scores the reference with the
  adapters disabled; the anchor's timer files that call under ``old_logps``, so it is filed here
  under ``ref_logps`` when the adapters are off.

Fixed (both settings): ``per_device_train_batch_size`` = prompts x generations (TRL counts
completions), so one step = one generation = one optimizer update; ``num_iterations`` 1;
``gradient_checkpointing`` off; ``use_vllm`` off; TRL's ``loss_type`` "dapo" and
``scale_rewards`` "group" (its defaults, and rft's); linear LR decay, no warm-up; seed 0;
``torch.set_num_threads(--threads)``.

Prints a DETAIL line and then the anchor's result line (median step over the steps after
``--warmup-steps``, p10, p90, completions per step, completion tokens/s, peak RSS).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

SHARED = Path(__file__).resolve().parent / "trl_anchor"


def load_anchor():
    """``trl_grpo_cpu.py`` as a module (it sets the offline environment and imports trl)."""
    spec = importlib.util.spec_from_file_location("trl_grpo_cpu", SHARED / "trl_grpo_cpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


anchor = load_anchor()
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoTokenizer, set_seed  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number_equals(text: str, answer: str) -> bool:
    """Whether the last number in ``text`` ("1,234", "-3", "2.50") equals ``answer`` as a number."""
    found = NUMBER.findall(text)
    if not found:
        return False
    try:
        return float(found[-1].replace(",", "")) == float(answer)
    except ValueError:
        return False


def make_reward_fn(phases, step_ids: list[list[str]]):
    def last_number_reward(prompts, completions, answer, id, **kwargs) -> list[float]:  # noqa: A002 (TRL's column)
        """1.0 if the last number of the reply equals the answer, else 0.0."""
        t0 = time.perf_counter()
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        rewards = [1.0 if last_number_equals(t, a) else 0.0 for t, a in zip(texts, answer, strict=True)]
        step_ids.append(list(dict.fromkeys(id)))  # the step's distinct prompts, in order
        phases.add("reward_fn_s", time.perf_counter() - t0)
        phases.add("reward_sum", sum(rewards))
        return rewards

    return last_number_reward


class TimedSmolTrainer(anchor.TimedGRPOTrainer):
    """The anchor's timed trainer; the PEFT reference (adapters off, no grad) counts as ``ref_logps``,
    and each ``_generate`` records its prompts' token counts."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from peft.tuners.tuners_utils import BaseTunerLayer

        self._tuner = next((m for m in self.model.modules() if isinstance(m, BaseTunerLayer)), None)
        self.prompt_lens: list[list[int]] = []

    def _generate(self, prompts):
        out = super()._generate(prompts)
        self.prompt_lens.append([len(ids) for ids in out[0]])
        return out

    def _get_per_token_logps_and_entropies(self, model, *args, **kwargs):
        if self._tuner is not None and self._tuner.disable_adapters and not torch.is_grad_enabled():
            t0 = time.perf_counter()
            out = GRPOTrainer._get_per_token_logps_and_entropies(self, model, *args, **kwargs)
            self._phases.add("ref_logps_s", time.perf_counter() - t0)
            return out
        return super()._get_per_token_logps_and_entropies(model, *args, **kwargs)


def dtype_probe(model: torch.nn.Module) -> tuple[dict[str, int], object]:
    """Counts of (grad, autocast, weight dtype, output dtype) seen by the first decoder layer's base
    ``down_proj`` linear: what TRL's bf16 setting does on the CPU."""
    seen: dict[str, int] = {}
    target = next(m for n, m in model.named_modules() if n.endswith("layers.0.mlp.down_proj.base_layer")
                  or (n.endswith("layers.0.mlp.down_proj") and isinstance(m, torch.nn.Linear)))

    def hook(module, inputs, output):
        key = (f"grad={torch.is_grad_enabled()} autocast={torch.is_autocast_enabled('cpu')} "
               f"weight={module.weight.dtype} input={inputs[0].dtype} output={output.dtype}")
        seen[key] = seen.get(key, 0) + 1

    return seen, target.register_forward_hook(hook)


def phase_medians(measured: list[dict]) -> dict[str, float]:
    """The anchor's phase breakdown (medians over the measured steps): backward = training_step minus
    generation/scoring and the loss forward; "other" = the rest of the step."""
    def med(values) -> float:
        return float(np.median(list(values)))

    return {
        "generate": med(r["generate_s"] for r in measured),
        "ref_model_logps": med(r.get("ref_logps_s", 0.0) for r in measured),
        "old_logps": med(r.get("old_logps_s", 0.0) for r in measured),
        "reward_and_advantages_rest": med(r["generate_and_score_s"] - r["generate_s"] - r.get("ref_logps_s", 0.0)
                                          - r.get("old_logps_s", 0.0) for r in measured),
        "policy_forward_and_loss": med(r["policy_forward_loss_s"] for r in measured),
        "backward": med(r["training_step_s"] - r["generate_and_score_s"] - r["policy_forward_loss_s"]
                        for r in measured),
        "optimizer_step": med(r.get("optimizer_s", 0.0) for r in measured),
        "other": med(r["step_s"] - r["training_step_s"] - r.get("optimizer_s", 0.0) for r in measured),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir")
    p.add_argument("prompts", help="JSONL: prompt (chat messages), answer, id; read in file order")
    p.add_argument("--setting", choices=["lora", "full", "full-fp32"], required=True)
    p.add_argument("--base-dtype", choices=["bfloat16", "float32"], default="bfloat16",
                   help="lora only: the dtype the base is loaded in (full and full-fp32: float32)")
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--lr", type=float, default=None, help="default 2e-4 (lora), 1e-5 (full)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--prompts-per-step", type=int, default=4)
    p.add_argument("--num-generations", type=int, default=8)
    p.add_argument("--max-completion-length", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--detail-json", default=None)
    args = p.parse_args(argv)
    if args.steps <= args.warmup_steps:
        p.error("--steps must be larger than --warmup-steps")

    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    rows = [json.loads(line) for line in Path(args.prompts).read_text().splitlines() if line.strip()]
    need = args.steps * args.prompts_per_step
    if len(rows) < need:
        p.error(f"{args.prompts}: {len(rows)} rows, {need} needed for {args.steps} steps without reuse")
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": str(r["answer"]), "id": r["id"]}
                                 for r in rows[:need]])
    lora = args.setting == "lora"
    base_dtype = args.base_dtype if lora else "float32"
    lr = args.lr if args.lr is not None else (2e-4 if lora else 1e-5)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir, padding_side="left")
    phases, step_ids = anchor.Phases(), []
    timer = anchor.StepTimer(phases)
    batch = args.prompts_per_step * args.num_generations
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl_smollm2_"),
        per_device_train_batch_size=batch,  # completions: one generation per optimizer step
        num_generations=args.num_generations,
        gradient_accumulation_steps=1,
        num_iterations=1,
        max_completion_length=args.max_completion_length,
        temperature=args.temperature,
        top_p=1.0,
        top_k=0,
        beta=args.beta,
        learning_rate=lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        loss_type="dapo",
        scale_rewards="group",
        bf16=args.setting != "full-fp32",
        fp16=False,
        use_vllm=False,
        gradient_checkpointing=False,
        shuffle_dataset=False,
        logging_steps=1,
        max_steps=args.steps,
        seed=args.seed,
        data_seed=args.seed,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
        model_init_kwargs={"dtype": base_dtype},
    )
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", bias="none",
                                 task_type="CAUSAL_LM")
    trainer = TimedSmolTrainer(model=args.model_dir, reward_funcs=make_reward_fn(phases, step_ids), args=config,
                               train_dataset=dataset, processing_class=tokenizer, callbacks=[timer],
                               peft_config=peft_config, phases=phases)
    assert trainer.model.device.type == "cpu", trainer.model.device
    probe, handle = dtype_probe(trainer.model)
    trainable = sum(t.numel() for t in trainer.model.parameters() if t.requires_grad)

    t_train = time.perf_counter()
    trainer.train()
    train_wall_s = time.perf_counter() - t_train
    handle.remove()
    if len(timer.step_s) != args.steps:
        raise RuntimeError(f"expected {args.steps} optimizer steps, timed {len(timer.step_s)}")
    if {int(r["completions"]) for r in timer.records} != {batch}:
        raise RuntimeError(f"a step did not sample {batch} completions: {[r['completions'] for r in timer.records]}")

    measured = timer.records[args.warmup_steps :]
    step_s = np.array([r["step_s"] for r in measured])
    phase_median_s = phase_medians(measured)
    total = sum(r["completions"] for r in timer.records)
    detail = {
        "setting": args.setting, "base_dtype": base_dtype, "bf16": config.bf16, "beta": args.beta, "lr": lr,
        "temperature": args.temperature, "max_completion_length": args.max_completion_length,
        "prompts_per_step": args.prompts_per_step, "num_generations": args.num_generations,
        "reference_model": trainer.ref_model is not None, "peft": peft_config is not None,
        "trainable_params": trainable, "threads": torch.get_num_threads(), "optim": str(config.optim),
        "attn_implementation": trainer.model.config._attn_implementation,
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__, "trl": trl.__version__,
                     "transformers": transformers.__version__},
        "warmup_steps_excluded": args.warmup_steps, "train_wall_s": train_wall_s,
        "step_s": timer.step_s,
        "completion_tokens_per_step": [int(r["completion_tokens"]) for r in timer.records],
        "prompt_ids_per_step": step_ids,
        "prompt_token_lens_per_step": [lens[:: args.num_generations] for lens in trainer.prompt_lens],
        "clipped_fraction_all_steps": sum(r["clipped"] for r in timer.records) / total,
        "mean_completion_len": sum(r["completion_tokens"] for r in timer.records) / total,
        "reward_mean_all_steps": sum(r.get("reward_sum", 0.0) for r in timer.records) / total,
        "phase_median_s": phase_median_s,
        "phase_s_per_step": timer.records,
        "dtype_probe": probe,
    }
    print("DETAIL " + json.dumps(detail))
    if args.detail_json:
        Path(args.detail_json).write_text(json.dumps(detail, indent=2))
    result = {
        "trl_version": trl.__version__, "torch_version": torch.__version__, "steps": len(timer.step_s),
        "median_step_s": round(float(np.median(step_s)), 4),
        "p10_step_s": round(float(np.percentile(step_s, 10)), 4),
        "p90_step_s": round(float(np.percentile(step_s, 90)), 4),
        "completions_per_step": batch,
        "median_completion_tokens_per_s": round(float(np.median([r["completion_tokens"] / r["step_s"]
                                                                  for r in measured])), 1),
        "peak_rss_mb": round(anchor.peak_rss_mb(), 1),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
