"""Memory of GRPO with the KL term on (beta > 0): full fine-tuning vs LoRA, on a ~50M-parameter
random Llama (the tiny model's character tokenizer, a bigger body), a few real `rft.grpo.train`
steps each, every mode in its own process so that peak RSS is that mode's alone.

    python bench/lora_memory.py [--steps 3] [--out /tmp/lora_mem]

Reported per mode: parameters (total, trainable), bytes of the weights held (policy, plus the
reference copy for full fine-tuning), of the gradients and of the AdamW state (2 fp32 tensors per
trainable parameter, read from the optimizer after the run), peak RSS of the process
(``VmHWM``, :func:`rft.models.memory.peak_rss_bytes`: ``ru_maxrss`` would carry this parent's peak
into each child), RSS after loading, and seconds per step. The model is random: the numbers are
about memory and time, not learning.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

SHAPE = {"hidden_size": 640, "intermediate_size": 1728, "num_hidden_layers": 10, "num_attention_heads": 10}


def make_model(out: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from rft.models.tiny import char_tokenizer

    if (out / "config.json").is_file():
        return out
    tok = char_tokenizer(512)
    cfg = LlamaConfig(vocab_size=len(tok), num_key_value_heads=SHAPE["num_attention_heads"],
                      max_position_embeddings=512, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **SHAPE)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def rss_mib() -> float:
    from rft.models.memory import peak_rss_bytes

    return peak_rss_bytes() / 2**20


def run_mode(mode: str, model_dir: Path, out: Path, steps: int) -> dict:
    """One mode, in this process: train, then measure what the trainer held."""
    import rft.grpo.train as train_mod
    from rft.config import config_from_dict
    from rft.console import Console

    torch.set_num_threads(2)
    captured: dict = {}
    real_update = train_mod.update_policy

    def spy(model, optimizer, *args, **kwargs):  # keep handles on the trainer's objects, change nothing
        captured.update(model=model, optimizer=optimizer)
        return real_update(model, optimizer, *args, **kwargs)

    train_mod.update_policy = spy
    real_load = train_mod.load_model

    def spy_load(*args, **kwargs):  # the separate reference model (full fine-tuning only)
        m = real_load(*args, **kwargs)
        captured["ref"] = m
        return m

    train_mod.load_model = spy_load
    lora = {"r": 16, "alpha": 32, "target_modules": "all-linear"} if mode == "lora" else None
    cfg = config_from_dict({
        "name": mode, "output_dir": str(out), "seed": 0, "threads": 2, "report_to": [],
        "model": {"path": str(model_dir), "lora": lora},
        "data": {"task": {"digits": 2, "val_size": 4}},
        "sampling": {"num_generations": 4, "max_new_tokens": 16},
        "grpo": {"steps": steps, "prompts_per_step": 4, "beta": 0.04, "lr": 1e-5},
        "eval": {"every": 1000, "size": 4}, "checkpoint": {"every": 1000},
        "monitors": {"enabled": False},
    })
    t0 = time.perf_counter()
    train_mod.train(cfg, overwrite=True, console=Console(quiet=True))
    wall = time.perf_counter() - t0
    model, opt = captured["model"], captured["optimizer"]
    params = list(model.parameters())
    nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
    opt_bytes = sum(nbytes([v for v in st.values() if torch.is_tensor(v) and v.dim() > 0])
                    for st in opt.state.values())
    ref_bytes = nbytes(list(captured["ref"].parameters())) if "ref" in captured else 0
    steps_s = [json.loads(line)["step_s"] for line in (out / mode / "metrics.jsonl").read_text().splitlines()
               if json.loads(line).get("type") == "train"]
    return {
        "mode": mode,
        "params_total": sum(p.numel() for p in params),
        "params_trainable": sum(p.numel() for p in params if p.requires_grad),
        "weights_mib": (nbytes(params) + ref_bytes) / 2**20,
        "reference_copy_mib": ref_bytes / 2**20,
        "grad_mib": nbytes([p for p in params if p.requires_grad]) / 2**20,
        "optimizer_state_mib": opt_bytes / 2**20,
        "peak_rss_mib": rss_mib(),
        "step_s_mean": sum(steps_s) / len(steps_s),
        "train_wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", default="/tmp/lora_mem")
    ap.add_argument("--mode", choices=["full", "lora"], help="internal: run one mode in this process")
    args = ap.parse_args()
    out = Path(args.out)
    model_dir = out / "model"
    if args.mode:
        print(json.dumps(run_mode(args.mode, model_dir, out, args.steps)))
        return
    make_model(model_dir)
    rows = []
    for mode in ("full", "lora"):
        res = subprocess.run([sys.executable, __file__, "--mode", mode, "--steps", str(args.steps), "--out", str(out)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
    full, lora = rows
    print(f"peak RSS saved by LoRA: {full['peak_rss_mib'] - lora['peak_rss_mib']:.0f} MiB "
          f"({full['peak_rss_mib']:.0f} -> {lora['peak_rss_mib']:.0f}); weights+grads+optimizer: "
          f"{full['weights_mib'] + full['grad_mib'] + full['optimizer_state_mib']:.0f} -> "
          f"{lora['weights_mib'] + lora['grad_mib'] + lora['optimizer_state_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
