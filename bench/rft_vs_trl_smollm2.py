#!/usr/bin/env python
"""rft vs TRL 1.16 on SmolLM2-135M-Instruct: step time, peak RSS, and each phase against its FLOP limit.

The sibling of ``bench/rft_vs_trl.py`` (the tiny GPT-2 comparison) for a real model. Alternates rft
(``python -m rft.cli train`` of this checkout's ``src``) and TRL (``bench/trl_smollm2.py`` in the TRL
venv) on the same model directory, the same prompts in the same order, and the same settings:

  4 chat word problems per step (``rft.tasks.word_problems``, two-digit + and -, seed 0) x G=8,
  at most 64 new tokens, temperature 0.7 (rft's demo; top-p 1, no top-k), beta 0.04 (a KL
  reference), 1 iteration, "dapo" loss, group-scaled rewards, linear LR decay to 0, no warm-up,
  gradient checkpointing off, 2 threads, 10 steps with the first 2 left out of the medians.
  Reward: the last number of the reply equals the answer (rft: ``math`` grader, ``extract:
  last_number``; TRL: the same rule in a reward function).

Settings (``--setting``):

  lora  LoRA r=16, alpha 32, all linear layers, over a bfloat16 base; lr 2e-4. rft: ``model.dtype:
        bfloat16`` + ``model.lora`` (adapters in bfloat16 with float32 masters in the optimizer,
        reference = adapters off). TRL:
        ``peft_config``, the base loaded in bfloat16 and ``bf16=True`` (on the CPU: autocast to
        bfloat16 around the forward, adapters float32 under autocast; ``--trl-base-dtype float32``
        runs TRL's stock mixed precision: float32 weights under autocast).
  full  full fine-tuning in mixed precision, lr 1e-5, both loading a second copy as the reference. rft:
        ``model.dtype: bfloat16`` (bf16 weights and compute, float32 masters in the optimizer,
        ``rft.training.optim``). TRL: float32 weights and ``bf16=True`` (its stock mixed precision:
        autocast to bfloat16 around scoring and training; generation runs the float32 weights).
  full-fp32  full fine-tuning in float32 on both sides (TRL's precision when bf16 is off); lr 1e-5.

Neither side can be told to ignore EOS (rft has no such setting), so completions end where the
model ends them and each run's completion tokens per step are reported; the FLOP limits below are
computed from each step's own token counts.

**FLOP-limited time per phase.** Matmul FLOPs of the work a phase has to do, counted on the model's
config (:func:`step_flops`), divided by this CPU's measured matmul rate (``torch.nn.functional.linear``
at 2 threads, in the dtype the phase runs in, best of 3, measured before and after the runs; the
faster of the two is used) for the shape the phase runs (:data:`PEAK_SHAPES`: a 32-row decode
step, 2,048-row scoring passes, the 49,152-wide output layer, the rank-16 adapters). Printed per
phase: measured time, FLOP-limited time, ratio; then the step's. The work counted is the ideal one
for both sides (each prompt once per group, no padding, finished rows free), at each run's own
completion-token counts, so TRL's ratio includes what it computes beyond that (a prefill per row,
rows padded to the longest). The dtype of each phase is :func:`phase_dtypes`'s. rft's update also
holds the AdamW step and gradient clipping, which are memory-bound, not FLOPs: an AdamW step over
the trained parameters' shapes is timed on its own and shown beside the limit, not in it.

Peak RSS is ``ru_maxrss`` of each run's process tree from ``os.wait4`` (the same for both).
Hold the CPU lock for the whole batch:

    flock /tmp/rft-cpu.lock .venv/bin/python bench/rft_vs_trl_smollm2.py --setting lora --pairs 2
    flock /tmp/rft-cpu.lock .venv/bin/python bench/rft_vs_trl_smollm2.py --setting full --pairs 1 --steps 8

Needs the TRL venv of ``bench/trl_anchor/README.md`` (``--trl-python``) and the converted model
(``--model``: a directory, or the preset ``smollm2-135m-instruct`` resolved by rft under ``$RFT_CACHE``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import rft_vs_trl as tiny  # noqa: E402  (run_measured: a process's stdout and its tree's peak RSS)

PROMPTS_PER_STEP, G, MAX_NEW, TEMPERATURE, BETA = 4, 8, 64, 0.7, 0.04
LORA_R, LORA_ALPHA = 16, 32


@dataclass(frozen=True)
class Setting:
    name: str
    lora: bool
    dtype: str  # the base weights (rft's model.dtype)
    lr: float
    trl_bf16: bool  # TRL's GRPOConfig.bf16 (autocast around scoring and training)


SETTINGS = {"lora": Setting("lora", True, "bfloat16", 2e-4, True),
            "full": Setting("full", False, "bfloat16", 1e-5, True),
            "full-fp32": Setting("full-fp32", False, "float32", 1e-5, False)}


# -- FLOPs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arch:
    """The matmul-relevant shape of a Llama-style decoder (config.json fields)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int

    @classmethod
    def from_config(cls, cfg: dict) -> "Arch":
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        return cls(cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                   cfg.get("num_key_value_heads", cfg["num_attention_heads"]), head_dim, cfg["intermediate_size"],
                   cfg["vocab_size"])

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of one layer's linears: q, k, v, o, gate, up, down."""
        d, q, kv, f = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.ffn
        return [(d, q), (d, kv), (d, kv), (q, d), (d, f), (d, f), (f, d)]

    @property
    def body_weights(self) -> int:
        return self.layers * sum(i * o for i, o in self.linears())

    @property
    def head_weights(self) -> int:
        return self.hidden * self.vocab

    def lora_weights(self, r: int) -> int:
        """Adapter weights on every linear but the head: A is r x in, B is out x r."""
        return self.layers * sum(r * (i + o) for i, o in self.linears())


@dataclass(frozen=True)
class Work:
    """Token positions one pass computes: through the layers, through the output layer, and the
    (query, key) pairs of causal attention."""

    body_tokens: float
    head_tokens: float
    attn_pairs: float


def _completion_inputs(prompt_len: float, completion_len: float) -> tuple[float, float]:
    """(positions, attention pairs) of a completion's fed-back tokens: all but the last one, at
    positions P .. P+C-2, each attending to itself and everything before it."""
    fed = max(completion_len - 1.0, 0.0)
    return fed, fed * (prompt_len + 1) + fed * (fed - 1) / 2


def rollout_work(prompt_lens: list[float], completion_lens: list[float]) -> tuple[Work, Work]:
    """(prefill, decode) of sampling: each prompt prefilled once for its group (output layer on its
    last position), then one decode position per fed-back completion token, each with the output
    layer. Rows that finished early cost nothing (the ideal; a real batch may carry them a while)."""
    group = len(completion_lens) // len(prompt_lens)
    prefill = Work(sum(prompt_lens), len(prompt_lens), sum(p * (p + 1) / 2 for p in prompt_lens))
    fed = pairs = 0.0
    for i, c in enumerate(completion_lens):
        f, a = _completion_inputs(prompt_lens[i // group], c)
        fed, pairs = fed + f, pairs + a
    return prefill, Work(fed, fed, pairs)


def scoring_work(prompt_lens: list[float], completion_lens: list[float]) -> Work:
    """One scoring pass (reference, or the policy's forward): each prompt once per group, each row's
    fed-back completion tokens, and the output layer on the C positions that predict the C
    completion tokens (the last prompt position and the C-1 fed-back ones)."""
    prefill, decode = rollout_work(prompt_lens, completion_lens)
    return Work(prefill.body_tokens + decode.body_tokens, sum(completion_lens), prefill.attn_pairs + decode.attn_pairs)


def forward_flops(arch: Arch, work: Work, lora_r: int = 0) -> dict[str, float]:
    """2 FLOPs per weight per token for the linears and the output layer; attention 2 x 2 x heads x
    head_dim per (query, key) pair (Q K^T and A V; GQA shares K/V, not these FLOPs); adapters
    2 r (in + out) per linear and token when ``lora_r`` > 0."""
    return {"body": 2.0 * arch.body_weights * work.body_tokens,
            "head": 2.0 * arch.head_weights * work.head_tokens,
            "attn": 4.0 * arch.heads * arch.head_dim * arch.layers * work.attn_pairs,
            "lora": 2.0 * arch.lora_weights(lora_r) * work.body_tokens if lora_r else 0.0}


def backward_flops(fwd: dict[str, float], train_base: bool) -> dict[str, float]:
    """Input gradients cost one forward; weight gradients another, for trained weights only. So the
    base linears and output layer cost 2x their forward in full fine-tuning and 1x with LoRA (frozen
    base); attention always 2x (dQ, dK, dV, no weights); adapters 2x."""
    w = 2.0 if train_base else 1.0
    return {"body": w * fwd["body"], "head": w * fwd["head"], "attn": 2.0 * fwd["attn"], "lora": 2.0 * fwd["lora"]}


def step_flops(arch: Arch, prompt_lens: list[float], completion_lens: list[float], *, lora_r: int = 0,
               train_base: bool = True) -> dict[str, dict[str, float]]:
    """{phase: {component@shape: FLOPs}} of one GRPO step with a KL reference. Phases: ``rollout``
    (prefill at the scoring shape, decode at the decode shape), ``reference`` (the base: no
    adapters), ``policy_forward``, ``backward``. Components: ``body``, ``head``, ``attn``, ``lora``."""
    prefill, decode = rollout_work(prompt_lens, completion_lens)
    score = scoring_work(prompt_lens, completion_lens)

    def tag(flops: dict[str, float], shape: str) -> dict[str, float]:
        return {f"{k}@{shape}": v for k, v in flops.items()}

    pre, dec = tag(forward_flops(arch, prefill, lora_r), "train"), tag(forward_flops(arch, decode, lora_r), "decode")
    policy = forward_flops(arch, score, lora_r)
    return {"rollout": {**pre, **dec},
            "reference": tag(forward_flops(arch, score, 0), "train"),
            "policy_forward": tag(policy, "train"),
            "backward": tag(backward_flops(policy, train_base), "train")}


def peak_shapes(arch: Arch, rows: int, lora_r: int) -> dict[str, tuple[int, int, int]]:
    """(M, K, N) of ``linear(x[M, K], w[N, K])`` measured for each component@shape of step_flops."""
    return {"body@decode": (rows, arch.hidden, arch.ffn), "body@train": (2048, arch.hidden, arch.ffn),
            "head@decode": (rows, arch.hidden, arch.vocab), "head@train": (512, arch.hidden, arch.vocab),
            "lora@decode": (rows, arch.hidden, lora_r), "lora@train": (2048, arch.hidden, lora_r),
            "square": (2048, 2048, 2048)}


def shape_of(key: str) -> str:
    """Attention has no shape of its own here: it is charged at the linears' rate of its phase."""
    return key.replace("attn@", "body@")


def limit_s(flops: dict[str, float], peaks: dict[str, dict[str, float]], dtypes: dict[str, str],
            best: bool = False) -> float:
    """Seconds the FLOPs take at the measured rate (FLOP/s) of their shape (``best``: of the fastest
    shape) in their dtype; ``dtypes`` maps a component (body, head, attn, lora) to its dtype."""
    total = 0.0
    for key, f in flops.items():
        if f:
            rates = peaks[dtypes[key.split("@")[0]]]
            total += f / (max(rates.values()) if best else rates[shape_of(key)])
    return total


# -- the machine -----------------------------------------------------------------------------------
def measure_peaks(shapes: dict[str, tuple[int, int, int]], threads: int = 2) -> dict[str, dict[str, float]]:
    """FLOP/s of ``torch.nn.functional.linear`` (nn.Linear's op) per shape, float32 and bfloat16, best of 3."""
    import torch

    torch.set_num_threads(threads)
    out: dict[str, dict[str, float]] = {}
    for dtype in ("float32", "bfloat16"):
        out[dtype] = {}
        for name, (m, k, n) in shapes.items():
            x, w = torch.randn(m, k).to(getattr(torch, dtype)), torch.randn(n, k).to(getattr(torch, dtype))
            with torch.inference_mode():
                torch.nn.functional.linear(x, w)
                t0 = time.perf_counter()
                torch.nn.functional.linear(x, w)
                reps = max(3, int(0.2 / max(time.perf_counter() - t0, 1e-6)))
                best = float("inf")
                for _ in range(3):
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        torch.nn.functional.linear(x, w)
                    best = min(best, (time.perf_counter() - t0) / reps)
            out[dtype][name] = 2.0 * m * k * n / best
    return out


def adamw_step_s(shapes: list[tuple[int, ...]], reps: int = 3) -> float:
    """Best time of ``torch.optim.AdamW.step`` (rft's optimizer, default foreach) over float32
    parameters of these shapes with random gradients: the memory-bound floor of the optimizer step."""
    import torch

    params = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.99))
    opt.step()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def trained_shapes(arch: Arch, lora: bool) -> list[tuple[int, ...]]:
    if lora:
        return [s for i, o in arch.linears() for s in ((LORA_R, i), (o, LORA_R))] * arch.layers
    per_layer = [(o, i) for i, o in arch.linears()] + [(arch.hidden,), (arch.hidden,)]
    return per_layer * arch.layers + [(arch.vocab, arch.hidden), (arch.hidden,)]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


# -- inputs ----------------------------------------------------------------------------------------
def write_data(work: Path, steps: int, seed: int) -> tuple[Path, Path, Path, list[list[str]]]:
    """rft's train/val JSONL from ``rft.tasks.word_problems``, and TRL's JSONL: the train rows in the
    order rft's prompt cursor draws them, so step k of both trains on the same 4 prompts. Returns the
    paths and each step's prompt ids."""
    from rft.config import task_config
    from rft.data import PromptCursor, write_jsonl
    from rft.tasks.word_problems import make_word_problems

    n = steps * PROMPTS_PER_STEP
    train, val, _ = make_word_problems(task_config(name="word_problems", digits=2, ops=["+", "-"], val_size=4,
                                                  train_size=n), seed)
    cursor = PromptCursor(len(train), seed)
    order = [cursor.take(PROMPTS_PER_STEP) for _ in range(steps)]
    paths = work / "train.jsonl", work / "val.jsonl", work / "trl_prompts.jsonl"
    write_jsonl(paths[0], train)
    write_jsonl(paths[1], val)
    paths[2].write_text("".join(json.dumps({"id": train[i].id, "prompt": train[i].prompt, "answer": train[i].get("answer")})
                                + "\n" for ids in order for i in ids))
    return *paths, [[train[i].id for i in ids] for ids in order]


def prompt_token_lens(model: Path, train: Path) -> dict[str, int]:
    """Chat-template token count of every training prompt, as rft renders it."""
    from rft.data import read_jsonl
    from rft.models.chat import chat_prompt_ids
    from rft.models.load import load_tokenizer

    tok = load_tokenizer(model)
    return {e.id: len(chat_prompt_ids(tok, e.prompt)) for e in read_jsonl(train)}


def rft_config(work: Path, model: Path, s: Setting, steps: int, data: tuple[Path, Path]) -> Path:
    lora = f", lora: {{r: {LORA_R}, alpha: {LORA_ALPHA}, target_modules: all-linear}}" if s.lora else ""
    text = f"""name: smollm2_{s.name}
output_dir: {work / "runs"}
report_to: []
seed: 0
threads: 2
model: {{path: {model}, dtype: {s.dtype}{lora}}}
data: {{train_file: {data[0]}, val_file: {data[1]}}}
grader: {{type: math, extract: last_number}}
sampling: {{num_generations: {G}, temperature: {TEMPERATURE}, top_p: 1.0, top_k: 0, max_new_tokens: {MAX_NEW}}}
grpo: {{steps: {steps}, prompts_per_step: {PROMPTS_PER_STEP}, lr: {s.lr}, lr_schedule: linear, beta: {BETA},
       num_iterations: 1, gradient_accumulation_steps: 1, loss_type: dapo, scale_rewards: group}}
eval: {{every: {steps + 1000}, size: 4, samples: 0, capability: false}}
checkpoint: {{every: {steps + 1000}, keep_last: 1}}
monitors: {{enabled: false}}
"""
    path = work / f"rft_{s.name}.yaml"
    path.write_text(text)
    return path


# -- the two runners -------------------------------------------------------------------------------
@dataclass
class Run:
    who: str
    setting: str
    median_step_s: float
    tokens_per_step: list[float]  # every step's completion tokens (warm-up included)
    step_s: list[float]
    phases: dict[str, list[float]]  # per step: rollout, reference, update, other
    peak_rss_mb: float
    wall_s: float
    detail: dict


def run_rft(work: Path, cfg: Path, s: Setting, src: Path = ROOT / "src", who: str = "rft") -> Run:
    """``rft train`` of ``src`` (this checkout's by default; ``--baseline-src``: another one, as "base")."""
    cmd = [sys.executable, "-m", "rft.cli", "train", str(cfg), "--overwrite", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(src)}  # that checkout's rft, whatever is installed
    t0 = time.perf_counter()
    _, rss = tiny.run_measured(cmd, work / f"{who}_{s.name}.log", env=env)
    wall = time.perf_counter() - t0
    run_dir = work / "runs" / f"smollm2_{s.name}"
    steps = [r for r in map(json.loads, (run_dir / "metrics.jsonl").open()) if r.get("type") == "train"]
    phases = {"rollout": [r["time/rollout"] for r in steps],
              "reference": [r.get("time/ref_logprobs", 0.0) for r in steps],
              "update": [r["time/update"] for r in steps],
              "other": [r["step_s"] - r["time/rollout"] - r.get("time/ref_logprobs", 0.0) - r["time/update"]
                        for r in steps]}
    last = sorted((run_dir / "samples").glob("step_*.jsonl"))
    last_prompts = [json.loads(line)["prompt"] for line in last[-1].open()][::G] if last else []
    detail = {"update_skipped": [r.get("update_skipped", 0.0) for r in steps],
              "truncated_frac": [r["truncated_frac"] for r in steps],
              "reward_mean": [r["reward_mean"] for r in steps], "last_step_prompts": last_prompts}
    return Run(who, s.name, 0.0, [r["completion_len_mean"] * PROMPTS_PER_STEP * G for r in steps],
               [r["step_s"] for r in steps], phases, rss, wall, detail)


def run_trl(work: Path, trl_py: str, model: Path, prompts: Path, s: Setting, steps: int, warmup: int,
            base_dtype: str) -> Run:
    cmd = [trl_py, str(BENCH / "trl_smollm2.py"), str(model), str(prompts), "--setting", s.name,
           "--base-dtype", base_dtype, "--beta", str(BETA), "--lr", str(s.lr), "--steps", str(steps),
           "--warmup-steps", str(warmup), "--prompts-per-step", str(PROMPTS_PER_STEP), "--num-generations", str(G),
           "--max-completion-length", str(MAX_NEW), "--temperature", str(TEMPERATURE)]
    t0 = time.perf_counter()
    out, rss = tiny.run_measured(cmd, work / f"trl_{s.name}.log")
    wall = time.perf_counter() - t0
    lines = out.strip().splitlines()
    detail = json.loads(next(line for line in reversed(lines) if line.startswith("DETAIL "))[len("DETAIL "):])
    recs = detail.pop("phase_s_per_step")
    phases = {"rollout": [r["generate_s"] for r in recs],
              "reference": [r.get("ref_logps_s", 0.0) for r in recs],
              # policy forward + loss, backward (training_step less generation and scoring), AdamW
              "update": [r["training_step_s"] - r["generate_and_score_s"] + r.get("optimizer_s", 0.0) for r in recs]}
    phases["other"] = [r["step_s"] - a - b - c for r, a, b, c in
                       zip(recs, phases["rollout"], phases["reference"], phases["update"])]
    detail["result"] = json.loads(lines[-1])
    return Run("trl", s.name, 0.0, [float(t) for t in detail["completion_tokens_per_step"]], detail["step_s"], phases,
               rss, wall, detail)


# -- the report ------------------------------------------------------------------------------------
def phase_dtypes(who: str, setting: Setting, trl_base_dtype: str) -> dict[str, dict[str, str]]:
    """{phase: {component: dtype}} the matmuls of each phase run in. rft: base and adapters in
    ``model.dtype`` (rft.models.lora wraps with ``autocast_adapter_dtype=False``). TRL
    with ``bf16=True``: accelerate's autocast wraps the forward that scores and trains (base and
    adapters in bf16) but not generation, which runs the unwrapped model in its weights' dtype
    (adapters float32); the DETAIL line's ``dtype_probe`` shows it."""
    def same(base: str, lora: str) -> dict[str, str]:
        return {"body": base, "head": base, "attn": base, "lora": lora}

    if who in ("rft", "base") or not setting.trl_bf16:
        return dict.fromkeys(("rollout", "reference", "update"), same(setting.dtype, setting.dtype))
    if not setting.lora:  # TRL full, mixed: generation on the float32 weights, the rest under autocast
        trl_base_dtype = "float32"
    return {"rollout": same(trl_base_dtype, "float32"), "reference": same("bfloat16", "bfloat16"),
            "update": same("bfloat16", "bfloat16")}


def flop_table(run: Run, arch: Arch, plens: list[list[int]], peaks: dict, warmup: int, adamw_s: float) -> dict:
    """Per phase: median measured s, median FLOP-limited s (shape peaks / best peak), their ratio."""
    s = SETTINGS[run.setting]
    dtypes = phase_dtypes(run.who, s, run.detail.get("base_dtype", s.dtype))
    per_step = []
    for k in range(warmup, len(run.step_s)):
        mean_c = run.tokens_per_step[k] / (PROMPTS_PER_STEP * G)
        fl = step_flops(arch, plens[k], [mean_c] * PROMPTS_PER_STEP * G, lora_r=LORA_R if s.lora else 0,
                        train_base=not s.lora)
        fwd, bwd = fl.pop("policy_forward"), fl.pop("backward")
        fl["update"] = {k2: fwd[k2] + bwd[k2] for k2 in fwd}
        per_step.append(fl)
    rows = {}
    for ph in ("rollout", "reference", "update"):
        lims = [limit_s(st[ph], peaks, dtypes[ph]) for st in per_step]
        best = [limit_s(st[ph], peaks, dtypes[ph], best=True) for st in per_step]
        measured = run.phases[ph][warmup:]
        rows[ph] = {"measured_s": statistics.median(measured), "gflop": statistics.median(
            sum(st[ph].values()) for st in per_step) / 1e9, "limit_s": statistics.median(lims),
            "limit_best_peak_s": statistics.median(best)}
    rows["other"] = {"measured_s": statistics.median(run.phases["other"][warmup:]), "gflop": 0.0, "limit_s": 0.0,
                     "limit_best_peak_s": 0.0}
    rows["step"] = {"measured_s": statistics.median(run.step_s[warmup:]),
                    "gflop": sum(rows[p]["gflop"] for p in ("rollout", "reference", "update")),
                    "limit_s": sum(rows[p]["limit_s"] for p in ("rollout", "reference", "update")),
                    "limit_best_peak_s": sum(rows[p]["limit_best_peak_s"] for p in ("rollout", "reference", "update"))}
    for r in rows.values():
        r["ratio"] = r["measured_s"] / r["limit_s"] if r["limit_s"] else None
    rows["update"]["adamw_floor_s"] = adamw_s
    return rows


def print_table(who: str, rows: dict) -> None:
    print(f"  {who:3s}  phase       measured s     GFLOP   limit s (shape peaks)   limit s (best peak)   measured/limit")
    for ph, r in rows.items():
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        extra = f"   (AdamW step alone, torch foreach: {r['adamw_floor_s']:.3f} s)" if "adamw_floor_s" in r else ""
        print(f"       {ph:10s} {r['measured_s']:11.3f} {r['gflop']:9.1f} {r['limit_s']:23.3f} {r['limit_best_peak_s']:21.3f}"
              f" {ratio:>16s}{extra}")


def check_runs(runs: list[Run], plens: list[list[int]], step_ids: list[list[str]], trl_prompts: Path,
               warmup: int) -> None:
    """Warn when a run did not train on the planned prompts (TRL reports every step's prompt ids and
    token counts; rft's samples of its last step show that step's prompts) or when rft skipped the
    update of a measured step (no reward signal and the policy still at the reference)."""
    last = [json.loads(line)["prompt"] for line in trl_prompts.open()][-PROMPTS_PER_STEP:]
    for r in runs:
        if r.who == "trl" and r.detail["prompt_token_lens_per_step"] != plens:
            print(f"WARNING: TRL's prompt token counts differ from rft's: {r.detail['prompt_token_lens_per_step']}")
        if r.who == "trl" and r.detail["prompt_ids_per_step"] != step_ids:
            print(f"WARNING: TRL's prompts per step differ from the plan: {r.detail['prompt_ids_per_step']}")
        if r.who in ("rft", "base") and r.detail["last_step_prompts"] != last:
            print(f"WARNING: {r.who}'s last step did not train on the planned prompts")
        if r.who in ("rft", "base") and any(r.detail["update_skipped"][warmup:]):
            print(f"WARNING: rft skipped the update of measured steps: {r.detail['update_skipped']}")


def summarise(runs: list[Run], s: Setting, arch: Arch, plens: list[list[int]], peaks: dict, warmup: int) -> dict:
    """Medians over each side's runs, the FLOP tables, and the rft / TRL ratios; printed and returned."""
    summary: dict = {"adamw_step_s": adamw_step_s(trained_shapes(arch, s.lora))}
    for who in ("base", "rft", "trl"):
        rs = [r for r in runs if r.who == who]
        if not rs:
            continue
        tables = [flop_table(r, arch, plens, peaks, warmup, summary["adamw_step_s"]) for r in rs]
        med = {ph: {k: statistics.median(t[ph][k] for t in tables) for k in row if k != "ratio"}
               for ph, row in tables[0].items()}
        for row in med.values():
            row["ratio"] = row["measured_s"] / row["limit_s"] if row["limit_s"] else None
        summary[who] = {"median_step_s": statistics.median(r.median_step_s for r in rs),
                        "completion_tokens_per_step": statistics.median(
                            statistics.mean(r.tokens_per_step[warmup:]) for r in rs),
                        "peak_rss_mb": statistics.median(r.peak_rss_mb for r in rs), "phases": med}
        print(f"[{s.name}] {who}: medians over {len(rs)} run(s)")
        print_table(who, med)
    if "rft" in summary and "base" in summary:
        a, b = summary["rft"], summary["base"]
        summary["ratio_rft_over_base"] = {ph: a["phases"][ph]["measured_s"] / b["phases"][ph]["measured_s"]
                                          for ph in ("rollout", "reference", "update", "step")}
        print(f"[{s.name}] rft (this checkout) vs base (--baseline-src): " + ", ".join(
            f"{ph} {b['phases'][ph]['measured_s']:.3f} -> {a['phases'][ph]['measured_s']:.3f} s"
            for ph in ("rollout", "reference", "update", "step")))
    if "rft" in summary and "trl" in summary:
        a, b = summary["rft"], summary["trl"]
        ratio = summary["ratio_rft_over_trl"] = {"step": a["median_step_s"] / b["median_step_s"],
                                                 "peak_rss": a["peak_rss_mb"] / b["peak_rss_mb"]}
        print(f"[{s.name}] rft {a['median_step_s']:.3f} s/step vs TRL {b['median_step_s']:.3f} -> {ratio['step']:.3f}x "
              f"(issue 25: <= 0.25x); rft step / its FLOP limit {a['phases']['step']['ratio']:.2f}x (issue 25: <= 2.5x); "
              f"peak RSS {a['peak_rss_mb']:.0f} vs {b['peak_rss_mb']:.0f} MB ({ratio['peak_rss']:.2f}x); "
              f"completion tokens/step {a['completion_tokens_per_step']:.0f} vs {b['completion_tokens_per_step']:.0f}")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    p.add_argument("--setting", choices=[*SETTINGS, "both"], default="lora")
    p.add_argument("--pairs", type=int, default=2, help="(rft, TRL) pairs per setting, alternating")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2, help="leading steps left out of the medians")
    p.add_argument("--model", default="smollm2-135m-instruct", help="model directory or rft preset name")
    p.add_argument("--trl-python", default=str(tmp / "trlvenv" / "bin" / "python"))
    p.add_argument("--trl-base-dtype", choices=["bfloat16", "float32"], default="bfloat16",
                   help="lora: the dtype TRL loads the base in (float32 = TRL's stock bf16 autocast over fp32 weights)")
    p.add_argument("--work", default=str(tmp / "rft-vs-trl-smollm2"))
    p.add_argument("--skip-trl", action="store_true", help="rft runs only (prints no ratios to TRL)")
    p.add_argument("--baseline-src", help="another checkout's src/ (e.g. `git archive` of main): its rft runs "
                   "before each of this checkout's, as 'base', for a before/after in one batch")
    p.add_argument("--json-out", help="write every run, the peaks and the tables to this file")
    args = p.parse_args(argv)
    if not args.skip_trl and not Path(args.trl_python).exists():
        p.error(f"--trl-python {args.trl_python}: not found; create the TRL venv as bench/trl_anchor/README.md says")
    if args.steps <= args.warmup:
        p.error("--steps must be larger than --warmup")

    sys.path.insert(0, str(ROOT / "src"))
    from rft.models.load import resolve_model_path

    model = resolve_model_path(args.model)
    arch = Arch.from_config(json.loads((model / "config.json").read_text()))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train, val, trl_prompts, step_ids = write_data(work, args.steps, 0)
    lens = prompt_token_lens(model, train)
    plens = [[lens[i] for i in ids] for ids in step_ids]
    settings = ["lora", "full"] if args.setting == "both" else [args.setting]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"{started}; CPU {cpu_model()}, {os.cpu_count()} cores; model {model} "
          f"({arch.layers} layers, hidden {arch.hidden}, vocab {arch.vocab}); prompt tokens per step "
          f"{[sum(x) for x in plens]}", flush=True)
    shapes = peak_shapes(arch, PROMPTS_PER_STEP * G, LORA_R)
    peaks_before = measure_peaks(shapes)

    runs: list[Run] = []
    for name in settings:
        s = SETTINGS[name]
        cfg = rft_config(work, model, s, args.steps, (train, val))
        for i in range(args.pairs):
            for who in ("base", "rft", "trl"):
                if (who == "trl" and args.skip_trl) or (who == "base" and not args.baseline_src):
                    continue
                r = (run_rft(work, cfg, s) if who == "rft"
                     else run_rft(work, cfg, s, Path(args.baseline_src), "base") if who == "base"
                     else run_trl(work, args.trl_python, model, trl_prompts, s, args.steps, args.warmup,
                                  args.trl_base_dtype))
                r.median_step_s = statistics.median(r.step_s[args.warmup:])
                runs.append(r)
                print(f"[{name}] {who:3s} run {i + 1}: median step {r.median_step_s:.3f} s, "
                      f"{statistics.mean(r.tokens_per_step[args.warmup:]):.0f} completion tokens/step, peak RSS "
                      f"{r.peak_rss_mb:.0f} MB, wall {r.wall_s:.0f} s; phases "
                      + ", ".join(f"{k} {statistics.median(v[args.warmup:]):.3f}" for k, v in r.phases.items()),
                      flush=True)
                if who == "trl":
                    print(f"[{name}] TRL's first down_proj saw: {r.detail['dtype_probe']}", flush=True)

    peaks_after = measure_peaks(shapes)
    peaks = {d: {k: max(peaks_before[d][k], peaks_after[d][k]) for k in shapes} for d in peaks_before}
    for d in peaks:
        print(f"matmul GFLOP/s, {d}, 2 threads (before / after the runs): " + ", ".join(
            f"{k} {shapes[k][0]}x{shapes[k][1]}x{shapes[k][2]} {peaks_before[d][k] / 1e9:.0f}/{peaks_after[d][k] / 1e9:.0f}"
            for k in shapes))
    out = {"started": started, "cpu": cpu_model(), "model": str(model), "arch": asdict(arch),
           "peaks_flops_per_s": {"before": peaks_before, "after": peaks_after}, "runs": [asdict(r) for r in runs],
           "prompt_token_lens_per_step": plens, "summary": {}}
    for name in settings:
        rs = [r for r in runs if r.setting == name]
        check_runs(rs, plens, step_ids, trl_prompts, args.warmup)
        out["summary"][name] = summarise(rs, SETTINGS[name], arch, plens, peaks, args.warmup)
    print("RESULT " + json.dumps(out["summary"]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
