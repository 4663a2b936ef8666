#!/usr/bin/env python
"""rft on one GPU in one command: CUDA correctness, GRPO throughput and memory, TRL on the same work.

Issue 17. rft's CUDA path was written without a GPU; this script is what runs when one is lent
(an H100 or H200, about 15 minutes of device time in all, each start counted), so it is one
command, prepared and tested on the CPU (``--dry-run``, which the test suite runs), that must not
stop at the first failure. Every part is a named entry of ``results.json`` with a status (pass,
fail, or skipped with the reason) and its numbers; an exception fails that entry only.

(a) Correctness, on the device:

  greedy_matches_generate  rft's sampler (KV slab cache, written-out decode step, left padding,
      rows stopping early and compaction) at temperature 0 gives the tokens of transformers'
      greedy ``generate``, row by row, in float32 with TF32 off (in bf16 the two round differently
      and near-ties of a random model may flip; the next check covers bf16). An "EOS" is chosen
      from the first row's output so that some rows stop early.
  decode_step_bf16  ``rft.rollout.fast_decode``'s step against the model's own forward in bf16,
      both against the float32 model: the step's largest logit error must stay within twice the
      model's own bf16 error (tests/test_fast_decode.py's criterion), over 8 steps, left-padded.
  logprobs_train_vs_sampler  the log-probs of the sampled tokens from the logits the sampler drew
      them from, against ``rft.grpo.logprobs.completion_logprobs`` (the training forward, grad on)
      in bf16; both against the float32 training forward: the sampler's error within twice the
      training forward's own (+ 0.01 nats), every value finite.
  lora_resume  ``rft.grpo.train.train`` (what ``rft train`` runs) with LoRA in bf16 on the device,
      4 steps straight against 2 steps plus a resume to 4: the resumed run's adapter weights
      differ from the straight run's by under 5 % of what training moved them (GPU kernels need
      not be bit-reproducible, so bit-identity is recorded, not required).

(b) Throughput: rft's GRPO on a random-init model with the Qwen2.5-0.5B shape (hidden 896, 24
layers, 14 heads, 2 KV heads, intermediate 4864, vocabulary 151,936, tied embeddings, rope theta
1e6), bf16, 16 prompts of 64 tokens x 8 generations x 256 new tokens, beta 0.04, temperature 1,
full fine-tuning (lr 1e-6) and LoRA (r 16, alpha 32, all linear layers, lr 1e-5), 4 steps of which
the first is left out of the medians. rft has no setting to ignore EOS, so the tokenizer makes EOS
unsampleable: a byte-level BPE whose id i >= 256 decodes to ``t<i>`` and whose ``<|endoftext|>`` is
id 151,936, one past the output layer (:func:`id_tokenizer`); every completion runs to 256 tokens in
rft and in TRL (the completion lengths are recorded, not assumed). Prompts are random lowercase
letters, one token each. Reward: regex ``[0-4]$`` (the last token's id ends in 0-4), about half of
the rows, so groups carry signal. Reported per run: rollout tokens/s (completion tokens over
``time/rollout``), training tokens/s (completion tokens over reference + update time), the whole
step's tokens/s counting every row's prompt and completion (how prime-rl's anchor counts), MFU of the
training phase and of the whole step (FLOPs counted by ``bench/rft_vs_trl_smollm2.step_flops``:
each prompt once per group, no padding) against the card's bf16 dense peak (H100/H200 SXM: 989
TFLOP/s) and against a measured 8192^3 bf16 matmul, peak GPU memory
(``torch.cuda.max_memory_allocated``, reset before each run), and the per-phase times of
``metrics.jsonl`` (rft's phase timers synchronise CUDA).

(c) TRL 1.16 ``GRPOTrainer`` (transformers generation, no vLLM) on the same model directory,
prompts, reward and settings (``loss_type`` dapo, ``scale_rewards`` group, both rft's defaults),
alternating with rft: rft full, TRL full, rft LoRA, TRL LoRA, then again (``--pairs``) while the
time budget lasts. Its step is timed by a callback, generation and scoring by a trainer subclass,
all with ``torch.cuda.synchronize``. Not the same in the two: TRL loads the bf16 weights into plain
AdamW, rft keeps float32 master weights for bf16 (``rft.training.optim``); both are recorded. When trl does
not import, the TRL entries are "skipped: trl not importable" and the rest still runs.

Not covered: vLLM (too large to carry), several GPUs, pretrained weights (too large to carry; a
random model does the same arithmetic per token, and with EOS unsampleable the same token counts).

On the device (``run`` tool of this workplace; the GPU machine has no network): the wheels of
``bench/gpu_wheels.txt`` fetched here first with ``bench/gpu_wheels.sh`` into ``.whl`` (about 9 MB,
ignored by git), then::

    run(command="python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1 &&
        python3 bench/gpu_check.py --out $OUT/gpu", carry=[".whl"], timeout_s=540)

(one line; the tool sends the session's own checkout, so this file and ``.whl`` must be there).
Results come back as ``$OUT/gpu/results.json`` and ``summary.md`` (two files, rewritten after every
entry, so a run stopped at its limit still returns what it measured); the models and runs go to
``--work`` (default a temporary directory), not to ``$OUT``. Throughput runs stop starting after
``--budget-s`` (420 s) and a second round starts only if the first one's time still fits. On the CPU::

    flock /tmp/rft-cpu.lock python bench/gpu_check.py --out /tmp/gpu_dry --dry-run

Published anchors to compare with (issue 17): prime-rl on 1xH100, Qwen3-0.6B full fine-tuning:
11.9k tokens/s, MFU 11 %, 12.5 GiB; TRL's async trainer: 5.5-7.3k tokens/s on Qwen3-1.7B.
Targets there: MFU >= 10 % in the training phase on the 0.5B model, step time below TRL's.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from transformers import (
        PreTrainedModel,
        PreTrainedTokenizerBase,
        PreTrainedTokenizerFast,
    )

    from rft.config import Config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
sys.path.insert(0, str(BENCH))

import rft_vs_trl_smollm2 as flops  # noqa: E402  (Arch, step_flops: the FLOP count of a GRPO step)
import torch  # noqa: E402

PEAK_BF16 = {"H100": 989e12, "H200": 989e12}  # dense bf16 FLOP/s of the SXM cards (datasheet)
REWARD_PATTERN = r"[0-4]$"  # the last token ``t<i>`` has i ending in 0-4: about half the rows
LETTERS = "abcdefghijklmnopqrstuvwxyz"
LORA_R, LORA_ALPHA = 16, 32


@dataclass(frozen=True)
class Sizes:
    """The model shape (Qwen2 architecture) and the work of one mode."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    prompts: int       # per GRPO step
    gens: int          # G
    new_tokens: int    # per completion (EOS unsampleable: exactly this many)
    prompt_len: int
    steps: int         # per throughput run
    warmup: int        # leading steps left out of the medians
    check_rows: int    # prompts of the correctness checks
    check_tokens: int  # new tokens of the correctness checks


QWEN25_05B = Sizes(896, 24, 14, 2, 4864, 151936, prompts=16, gens=8, new_tokens=256, prompt_len=64, steps=4,
                   warmup=1, check_rows=8, check_tokens=32)
DRY = Sizes(64, 2, 4, 2, 128, 512, prompts=2, gens=2, new_tokens=8, prompt_len=8, steps=2, warmup=1,
            check_rows=3, check_tokens=6)


@dataclass
class Entry:
    """One named part of the run: ``status`` pass, fail or skipped, and what it measured."""

    name: str
    status: str
    seconds: float
    detail: dict[str, Any]


class Skipped(Exception):
    """A part that cannot run here (e.g. trl not importable); recorded as skipped with the reason."""


def run_entry(name: str, fn: Callable[[], tuple[bool, dict[str, Any]]]) -> Entry:
    """Run ``fn`` -> (passed, detail); an exception fails this entry only, with its traceback kept."""
    t0 = time.perf_counter()
    try:
        ok, detail = fn()
        status = "pass" if ok else "fail"
    except Skipped as e:
        status, detail = "skipped", {"reason": str(e)}
    except Exception as e:  # noqa: BLE001 -- recorded as this entry's failure; the other entries still run
        status, detail = "fail", {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=12)}
    free_memory()
    entry = Entry(name, status, time.perf_counter() - t0, detail)
    print(f"[{entry.seconds:6.1f} s] {name}: {status}"
          + (f" ({detail.get('error') or detail.get('reason')})" if status != "pass" else ""), flush=True)
    return entry


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the model, its tokenizer and the data ----------------------------------------------------------
# Qwen2's pre-tokenizer split (transformers' tokenization_qwen2.PRETOKENIZE_REGEX, copied: older 5.x may lack it)
QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
               r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
EOS_TEXT = "<|endoftext|>"


def id_tokenizer(vocab: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer built the way transformers' ``Qwen2Tokenizer`` builds one (NFC,
    Qwen2's split, byte-level pre-tokenizer and decoder, no merges), because ``AutoTokenizer`` loads a
    ``qwen2`` model directory's tokenizer as ``Qwen2Tokenizer`` whatever tokenizer_config.json says
    (transformers 5.24), rebuilding that pipeline from the saved vocabulary: both load paths then
    give the same tokenizer. Ids 0-255 are the 256 byte symbols (so any lowercase text encodes to
    one token per letter), id i >= 256 decodes to ``t<i>``, and ``<|endoftext|>`` (EOS) is id
    ``vocab``, one past the model's output layer, so that no sampler can draw it. Pad is id 0."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )
    from transformers import PreTrainedTokenizerFast

    table = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    table.update({f"t{i}": i for i in range(len(table), vocab)})
    table[EOS_TEXT] = vocab
    tok = Tokenizer(models.BPE(vocab=table, merges=[], continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(EOS_TEXT, special=True)])
    pad = next(ch for ch, i in table.items() if i == 0)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TEXT, unk_token=EOS_TEXT, pad_token=pad,
                                   padding_side="left")


def build_model(s: Sizes, out: Path, dtype: torch.dtype, device: torch.device, seed: int = 0,
                scale: float = 1.0) -> Path:
    """A random-init Qwen2 causal LM of shape ``s`` and its tokenizer, saved with save_pretrained.
    ``scale`` multiplies every matrix (the correctness checks use 4, as tests/test_fast_decode.py
    does: logits that differ by a lot per row, so that greedy choices are not near-ties)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=s.vocab, hidden_size=s.hidden, intermediate_size=s.ffn, num_hidden_layers=s.layers,
                      num_attention_heads=s.heads, num_key_value_heads=s.kv_heads, max_position_embeddings=32768,
                      rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                      rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                      bos_token_id=None, eos_token_id=s.vocab, pad_token_id=0)
    torch.manual_seed(seed)
    with device:  # initialised where it will run: 0.5B parameters initialise in seconds on a GPU, not a minute
        model = Qwen2ForCausalLM(cfg).to(dtype)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() > 1:
                    p.mul_(scale)
    model.generation_config.eos_token_id, model.generation_config.pad_token_id = s.vocab, 0
    model.save_pretrained(out)
    id_tokenizer(s.vocab).save_pretrained(out)
    check_tokenizer(out, s.vocab)
    return out


def check_tokenizer(model_dir: Path, vocab: int) -> None:
    """The saved tokenizer, loaded as rft loads it, encodes letters one token each, decodes any
    model id, and has its EOS out of the model's reach; raises with what differs otherwise."""
    from rft.models.load import load_tokenizer

    tok = load_tokenizer(model_dir)
    ids = tok("abcz")["input_ids"]
    text = tok.decode([vocab - 1, 300 % vocab], skip_special_tokens=True)
    if len(ids) != 4 or tok.eos_token_id != vocab or tok.pad_token_id != 0 or text != f"t{vocab - 1}t{300 % vocab}":
        raise RuntimeError(f"tokenizer as loaded ({type(tok).__name__}): 'abcz' -> {ids}, eos {tok.eos_token_id}, "
                           f"pad {tok.pad_token_id}, decode -> {text!r}; expected 4 ids, eos {vocab}, pad 0")


def write_data(work: Path, s: Sizes, n_train: int, seed: int = 0) -> tuple[Path, Path]:
    """Random prompts of ``s.prompt_len`` lowercase letters, one token each (no padding anywhere):
    train and 2 validation rows."""
    rng = random.Random(seed)
    paths = work / "train.jsonl", work / "val.jsonl"
    for path, n, tag in ((paths[0], n_train, "t"), (paths[1], 2, "v")):
        rows = [{"id": f"{tag}{i}", "prompt": "".join(rng.choice(LETTERS) for _ in range(s.prompt_len))}
                for i in range(n)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def rft_config(work: Path, name: str, model: Path, data: tuple[Path, Path], s: Sizes, device: str, *, lora: bool,
               steps: int, lr: float, checkpoint_every: int | None = None) -> Config:
    from rft.config import config_from_dict

    return config_from_dict({
        "name": name, "output_dir": str(work / "runs"), "report_to": [], "seed": 0,
        "threads": 2 if device == "cpu" else None,
        "model": {"path": str(model), "dtype": "bfloat16", "device": device,
                  "lora": {"r": LORA_R, "alpha": LORA_ALPHA} if lora else None},
        "data": {"train_file": str(data[0]), "val_file": str(data[1])},
        "grader": {"type": "regex", "pattern": REWARD_PATTERN, "mode": "search"},
        "sampling": {"num_generations": s.gens, "temperature": 1.0, "max_new_tokens": s.new_tokens},
        "grpo": {"steps": steps, "prompts_per_step": s.prompts, "lr": lr, "beta": 0.04, "lr_schedule": "constant"},
        "eval": {"every": 10_000, "size": 2, "samples": 0, "capability": False, "batch_size": 2},
        "checkpoint": {"every": checkpoint_every or 10_000, "keep_last": 4},
        "monitors": {"enabled": False},
    })


def load(path: Path, dtype: str, device: torch.device) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from rft.models.load import load_model, load_tokenizer

    return load_model(path, dtype, str(device)), load_tokenizer(path)


def random_prompts(rows: int, lens: list[int], vocab: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, vocab, (lens[i % len(lens)],), generator=g).tolist() for i in range(rows)]


class _CountingFastStep:
    """Wraps ``rft.rollout.sampler.fast_decoder`` while in use, counting the written-out steps taken:
    a check of the sampler must show that it ran through them (not only the model's forward)."""

    def __init__(self) -> None:
        import rft.rollout.sampler as sampler_mod

        self.module, self.original, self.steps = sampler_mod, sampler_mod.fast_decoder, 0

    def __enter__(self) -> "_CountingFastStep":
        def counting(model, cache):
            step = self.original(model, cache)
            if step is None:
                return None

            def counted(*args):
                self.steps += 1
                return step(*args)

            return counted

        self.module.fast_decoder = counting
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.fast_decoder = self.original


# -- (a) correctness -------------------------------------------------------------------------------
def check_greedy(model_dir: Path, s: Sizes, device: torch.device) -> tuple[bool, dict[str, Any]]:
    """Sampler at temperature 0 == ``generate(do_sample=False)`` per row, float32, TF32 off."""
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32 (torch's default; set in case something changed it)
    try:
        return _greedy(model_dir, s, device)
    finally:
        torch.set_float32_matmul_precision(precision)


def _greedy(model_dir: Path, s: Sizes, device: torch.device) -> tuple[bool, dict[str, Any]]:
    from rft.rollout import SamplingParams, TorchSampler

    model, tok = load(model_dir, "float32", device)
    T = s.check_tokens
    prompts = random_prompts(s.check_rows, [s.prompt_len, s.prompt_len // 2, s.prompt_len - 3], s.vocab, seed=1)
    free = []  # generate per row (no padding): the reference; EOS unsampleable, so every row runs to T
    for p in prompts:
        ids = torch.tensor([p], device=device)
        free.append(model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=T, do_sample=False,
                                   eos_token_id=s.vocab, pad_token_id=0)[0, len(p):].tolist())
    stop = free[0][min(3, T - 1)]  # a token row 0 emits: as "EOS", rows that emit it stop early
    want = [r[: r.index(stop) + 1] if stop in r else r for r in free]
    sampler = TorchSampler(model, tok)
    sampler.eos_id = stop
    with _CountingFastStep() as counter:
        got = [g[0].token_ids for g in sampler.generate(prompts, 1, SamplingParams(T, temperature=0.0))]
    diffs = [{"row": i, "first_diff": next((j for j, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w))),
              "len_got": len(g), "len_want": len(w)} for i, (g, w) in enumerate(zip(got, want)) if g != w]
    detail = {"dtype": "float32", "rows": len(prompts), "max_new_tokens": T, "prompt_lens": sorted({len(p) for p in prompts}),
              "rows_stopped_early": sum(len(w) < T for w in want), "fast_steps": counter.steps, "mismatches": diffs}
    return not diffs and counter.steps > 0, detail


def check_decode_bf16(model_dir: Path, s: Sizes, device: torch.device, steps: int = 8) -> tuple[bool, dict[str, Any]]:
    """Written-out decode step vs the model's forward in bf16, both against the float32 forward."""
    from rft.models.compat import cache_kwargs
    from rft.rollout.fast_decode import fast_decoder
    from rft.rollout.kv_cache import decode_cache
    from rft.rollout.sampler import left_pad

    m32, m16 = load(model_dir, "float32", device)[0], load(model_dir, "bfloat16", device)[0]
    prompts = random_prompts(s.check_rows, [s.prompt_len, s.prompt_len // 2, s.prompt_len - 3], s.vocab, seed=2)
    ids, mask = left_pad(prompts, 0, device)
    N, width = ids.shape
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    runs = {"float32": m32, "bfloat16": m16, "fast": m16}
    caches = {k: decode_cache(m, width + steps) for k, m in runs.items()}
    worst = {"model_bf16": 0.0, "fast_bf16": 0.0}
    rel = {"model_bf16": 0.0, "fast_bf16": 0.0}
    finite = True
    with torch.inference_mode():
        for k, m in runs.items():
            m(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, **cache_kwargs(m, caches[k]))
        fast = fast_decoder(m16, caches["fast"])
        if fast is None:
            return False, {"error": "fast_decoder returned None: no written-out step for this model"}
        full = torch.cat([mask, mask.new_ones(N, steps)], -1)
        next_pos = mask.sum(-1, keepdim=True)
        tok = torch.tensor([p[-1] for p in prompts], device=device)
        for t in range(steps):
            step_mask = full[:, : width + t + 1]
            truth = m32(input_ids=tok[:, None], attention_mask=step_mask, position_ids=next_pos, use_cache=True,
                        **cache_kwargs(m32, caches["float32"])).logits[:, -1]
            own = m16(input_ids=tok[:, None], attention_mask=step_mask, position_ids=next_pos, use_cache=True,
                      **cache_kwargs(m16, caches["bfloat16"])).logits[:, -1].float()
            ours = fast(tok, next_pos, step_mask.bool()).float()
            for key, got in (("model_bf16", own), ("fast_bf16", ours)):
                finite = finite and bool(torch.isfinite(got).all())
                worst[key] = max(worst[key], float((got - truth).abs().max()))
                rel[key] = max(rel[key], float((got - truth).norm() / truth.norm()))
            tok, next_pos = truth.argmax(-1), next_pos + 1
    ok = finite and worst["model_bf16"] > 0 and worst["fast_bf16"] <= 2 * worst["model_bf16"]
    return ok, {"steps": steps, "rows": N, "max_abs_err_vs_float32": worst, "max_rel_err_vs_float32": rel,
                "criterion": "fast_bf16 <= 2 x model_bf16 (max |logit - float32 logit|)", "finite": finite}


def check_logprobs(model_dir: Path, s: Sizes, device: torch.device, n: int = 2) -> tuple[bool, dict[str, Any]]:
    """The sampler's log-probs of the tokens it drew vs the training forward's, bf16, T=1."""
    from rft.grpo.logprobs import build_token_batch, completion_logprobs
    from rft.rollout import SamplingParams, TorchSampler

    class RecordingSampler(TorchSampler):
        """Keeps log softmax(logits / T)[drawn token] of every decode step, rows in batch order."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.steps: list[torch.Tensor] = []

        def _next_tokens(self, logits_BV, params, gen, group_gens, group_B):
            tok = super()._next_tokens(logits_BV, params, gen, group_gens, group_B)
            logp = torch.log_softmax(logits_BV.float() / params.temperature, -1)
            self.steps.append(logp.gather(-1, tok[:, None]).squeeze(-1))
            return tok

    m16, tok = load(model_dir, "bfloat16", device)
    m32 = load(model_dir, "float32", device)[0]
    T = s.check_tokens
    prompts = random_prompts(s.check_rows, [s.prompt_len, s.prompt_len - 3], s.vocab, seed=3)
    sampler = RecordingSampler(m16, tok)
    with _CountingFastStep() as counter:
        groups = sampler.generate(prompts, n, SamplingParams(T, temperature=1.0), seeds=list(range(len(prompts))))
    completions = [c.token_ids for g in groups for c in g]
    if any(len(c) != T for c in completions) or len(sampler.steps) != T:
        return False, {"error": "a completion stopped before max_new_tokens (EOS should be unsampleable)",
                       "lengths": sorted({len(c) for c in completions})}
    sampled = torch.stack(sampler.steps, 1)  # [N, T]; no row finished, so rows never moved
    batch = build_token_batch([p for p in prompts for _ in range(n)], completions, 0)
    with torch.enable_grad():
        m16.zero_grad(set_to_none=True)
        train_lp, _ = completion_logprobs(m16, batch, 1.0)
        train_lp.sum().backward()
    grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in m16.parameters() if p.grad is not None)
    m16.zero_grad(set_to_none=True)
    with torch.inference_mode():
        ref = completion_logprobs(m32, batch, 1.0)[0]
    train_lp = train_lp.detach()
    err_sampler, err_train = float((sampled - ref).abs().max()), float((train_lp - ref).abs().max())
    diff = (sampled - train_lp).abs()
    finite = bool(torch.isfinite(sampled).all() and torch.isfinite(train_lp).all())
    ok = finite and grads_finite and counter.steps > 0 and err_sampler <= 2 * err_train + 0.01
    return ok, {"rows": len(completions), "tokens": T, "fast_steps": counter.steps, "grads_finite": grads_finite,
                "max_abs_err_vs_float32": {"sampler_bf16": err_sampler, "train_forward_bf16": err_train},
                "sampler_minus_train": {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
                                        "mean": float((sampled - train_lp).mean())},
                "mean_logp": float(ref.mean()),
                "criterion": "sampler error <= 2 x train-forward error + 0.01 nats (max, vs float32 forward)"}


def check_lora_resume(work: Path, model_dir: Path, s: Sizes, device: torch.device) -> tuple[bool, dict[str, Any]]:
    """rft train with LoRA on the device: 4 steps straight vs 2 steps + resume to 4."""
    from safetensors.torch import load_file

    from rft.console import Console
    from rft.grpo.train import train

    small = replace(s, prompts=min(s.prompts, 4), gens=min(s.gens, 4), new_tokens=min(s.new_tokens, 32))
    (work / "lora_data").mkdir(exist_ok=True)
    data = write_data(work / "lora_data", small, n_train=4 * small.prompts, seed=1)
    quiet = Console(quiet=True)
    cfgs = {k: rft_config(work, f"lora_{k}", model_dir, data, small, device.type, lora=True, steps=4, lr=1e-3,
                          checkpoint_every=2) for k in ("straight", "resumed")}
    straight = train(cfgs["straight"], overwrite=True, console=quiet)
    half = cfgs["resumed"].model_copy(update={"grpo": cfgs["resumed"].grpo.model_copy(update={"steps": 2})})
    first = train(half, overwrite=True, console=quiet)
    (first.run_dir / "config.yaml").write_text(cfgs["resumed"].to_yaml())  # the full budget, as a user would
    resumed = train(cfgs["resumed"], resume=first.run_dir, console=quiet)

    def adapter(run: Path, step: int) -> dict[str, torch.Tensor]:
        return load_file(run / "checkpoints" / f"step_{step:06d}" / "adapter_model.safetensors")

    a4, b4, a2, b2 = (adapter(straight.run_dir, 4), adapter(resumed.run_dir, 4), adapter(straight.run_dir, 2),
                      adapter(first.run_dir, 2))

    def dist(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> float:
        return float(sum(((x[k].float() - y[k].float()) ** 2).sum() for k in x) ** 0.5)

    moved, gap = dist(a4, a2), dist(a4, b4)
    ok = resumed.steps == 4 and a4.keys() == b4.keys() and moved > 0 and gap < 0.05 * moved
    return ok, {"steps": resumed.steps, "adapter_tensors": len(a4), "adapter_dtype": str(next(iter(a4.values())).dtype),
                "moved_steps_3_4": moved, "straight_vs_resumed": gap, "relative_gap": gap / moved if moved else None,
                "bit_identical_step4": all(torch.equal(a4[k], b4[k]) for k in a4),
                "bit_identical_step2": all(torch.equal(a2[k], b2[k]) for k in a2),
                "criterion": "|straight - resumed| < 5% of |step 4 - step 2| (adapter weights, L2)"}


# -- (b) throughput --------------------------------------------------------------------------------
def matmul_rate(device: torch.device) -> float:
    """bf16 FLOP/s of a square matmul (8192 on the GPU, 512 on the CPU): random data, 3 warm-ups,
    mean of 10, synchronised."""
    n = 8192 if device.type == "cuda" else 512
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=g)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 2.0 * n**3 * 10 / (time.perf_counter() - t0)


def datasheet_peak(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return platform.processor() or "cpu", None
    name = torch.cuda.get_device_name(device)
    return name, next((v for k, v in PEAK_BF16.items() if k in name), None)


def work_flops(model_dir: Path, s: Sizes, completion_len: float, lora: bool) -> dict[str, float]:
    """FLOPs of one step's phases on this work (bench/rft_vs_trl_smollm2.step_flops), summed."""
    arch = flops.Arch.from_config(json.loads((model_dir / "config.json").read_text()))
    per_phase = flops.step_flops(arch, [float(s.prompt_len)] * s.prompts, [completion_len] * (s.prompts * s.gens),
                                 lora_r=LORA_R if lora else 0, train_base=not lora)
    return {phase: sum(parts.values()) for phase, parts in per_phase.items()}


def rates(step_s: float, rollout_s: float, train_s: float, completion_tokens: float, sequence_tokens: float,
          fl: dict[str, float], peak: float | None, measured: float) -> dict[str, Any]:
    """tokens/s and MFU of a step whose phases took these seconds. ``sequence_tokens``: every row's
    prompt plus completion, the count trainers such as prime-rl report tokens/s of."""
    train_fl = fl["reference"] + fl["policy_forward"] + fl["backward"]
    total = sum(fl.values())
    return {"rollout_tokens_per_s": completion_tokens / rollout_s, "train_tokens_per_s": completion_tokens / train_s,
            "step_tokens_per_s": completion_tokens / step_s, "step_sequence_tokens_per_s": sequence_tokens / step_s,
            "train_tflops": train_fl / train_s / 1e12, "step_tflops": total / step_s / 1e12,
            "mfu_train": train_fl / train_s / peak if peak else None, "mfu_step": total / step_s / peak if peak else None,
            "mfu_train_vs_measured_matmul": train_fl / train_s / measured,
            "mfu_step_vs_measured_matmul": total / step_s / measured}


def reset_peak(device: torch.device) -> None:
    free_memory()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict[str, float | None]:
    """Peak GPU memory since :func:`reset_peak` (allocated by tensors, and held by the caching allocator),
    and the process's peak RSS so far (the whole run's, not this part's: the kernel keeps one maximum;
    ``VmHWM``, :func:`rft.models.memory.peak_rss_bytes`, not a parent's peak as ``ru_maxrss`` can be)."""
    from rft.models.memory import peak_rss_bytes

    cuda = device.type == "cuda"
    return {"peak_gpu_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
            "peak_gpu_reserved_gib": torch.cuda.max_memory_reserved(device) / 2**30 if cuda else None,
            "peak_rss_gib_process": peak_rss_bytes() / 2**30}


LR = {"full": 1e-6, "lora": 1e-5}


@contextmanager
def no_checkpoints() -> Iterator[None]:
    """``train`` without its final checkpoint: for full fine-tuning of the 0.5B model that is ~7 GB
    (weights, float32 masters, Adam moments) written after the timed steps, time the lease cannot
    spare. Checkpoints and resume are checked by ``lora_resume``; the timings do not include them."""
    import rft.grpo.train as train_mod

    original = train_mod.save_checkpoint_on_main
    train_mod.save_checkpoint_on_main = lambda *args, **kwargs: None
    try:
        yield
    finally:
        train_mod.save_checkpoint_on_main = original


def rft_throughput(work: Path, model_dir: Path, data: tuple[Path, Path], s: Sizes, device: torch.device, setting: str,
                   tag: str, peak: float | None, measured: float) -> tuple[bool, dict[str, Any]]:
    """One ``train()`` of ``s.steps`` steps; medians over the steps after ``s.warmup``."""
    from rft.console import Console
    from rft.grpo.train import train

    cfg = rft_config(work, f"tput_{setting}_{tag}", model_dir, data, s, device.type, lora=setting == "lora",
                     steps=s.steps, lr=LR[setting])
    reset_peak(device)
    t0 = time.perf_counter()
    with no_checkpoints():
        result = train(cfg, overwrite=True, console=Console(quiet=True))
    wall = time.perf_counter() - t0
    mem = peak_memory(device)
    recs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    steps = [r for r in recs if r.get("type") == "train"]
    kept = steps[s.warmup:]
    rows = s.prompts * s.gens
    med = {k: statistics.median(r[k] for r in kept) for k in ("step_s", "time/rollout", "time/ref_logprobs",
                                                               "time/update", "completion_len_mean")}
    train_s = med["time/ref_logprobs"] + med["time/update"]
    fl = work_flops(model_dir, s, med["completion_len_mean"], setting == "lora")
    out = {"who": "rft", "setting": setting, "steps": len(steps), "medians_over_steps": len(kept), "wall_s": wall,
           "step_s": med["step_s"], "rollout_s": med["time/rollout"], "train_s": train_s,
           "completion_tokens_per_step": med["completion_len_mean"] * rows,
           "completion_len": {"mean": med["completion_len_mean"], "max": max(r["completion_len_max"] for r in steps)},
           "phases_median_s": {k.removeprefix("time/"): statistics.median(r.get(k, 0.0) for r in kept)
                               for k in kept[0] if k.startswith("time/")},
           "step_s_all": [r["step_s"] for r in steps], "reward_mean": [r["reward_mean"] for r in steps],
           "update_skipped": [r.get("update_skipped", 0) for r in steps],
           "optimizer": "MasterWeightAdamW (float32 masters over bf16 weights)", "lr": LR[setting],
           **mem, **rates(med["step_s"], med["time/rollout"], train_s, med["completion_len_mean"] * rows,
                          rows * (s.prompt_len + med["completion_len_mean"]), fl, peak, measured), "flops_per_step": fl}
    full_length = all(r["completion_len_mean"] == s.new_tokens for r in steps)
    out["all_completions_full_length"] = full_length
    return len(steps) == s.steps and full_length and train_s > 0, out


# -- (c) TRL ---------------------------------------------------------------------------------------
def trl_throughput(work: Path, model_dir: Path, data: tuple[Path, Path], s: Sizes, device: torch.device, setting: str,
                   tag: str, peak: float | None, measured: float) -> tuple[bool, dict[str, Any]]:
    """TRL's GRPOTrainer on the same model directory, prompts, reward and settings."""
    try:
        import trl
        from datasets import Dataset
        from transformers import AutoTokenizer, TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except Exception as e:  # noqa: BLE001 -- any import failure means the same: no TRL here
        raise Skipped(f"trl not importable ({type(e).__name__}: {e})") from None

    phases: dict[str, float] = {}
    records: list[dict[str, float]] = []
    log_rows: list[dict[str, Any]] = []

    def add(key: str, value: float) -> None:
        phases[key] = phases.get(key, 0.0) + value

    class Timed(GRPOTrainer):
        """Generation and generation + scoring (rewards, reference log-probs) timed, synchronised."""

        def _generate(self, prompts):
            sync(device)
            t0 = time.perf_counter()
            out = super()._generate(prompts)
            sync(device)
            add("generate_s", time.perf_counter() - t0)
            add("completion_tokens", float(sum(len(ids) for ids in out[1])))
            return out

        def _generate_and_score_completions(self, inputs):
            sync(device)
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            sync(device)
            add("generate_and_score_s", time.perf_counter() - t0)
            return out

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            phases.clear()
            sync(device)
            phases["_t0"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync(device)
            records.append({**phases, "step_s": time.perf_counter() - phases.pop("_t0")})

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is not None:
                log_rows.append(dict(logs))

    prompts = [json.loads(line)["prompt"] for line in data[0].open()]
    peft_config = None
    if setting == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    config = GRPOConfig(
        output_dir=str(work / f"trl_{setting}_{tag}"), per_device_train_batch_size=s.prompts * s.gens,
        num_generations=s.gens, gradient_accumulation_steps=1, num_iterations=1, max_completion_length=s.new_tokens,
        temperature=1.0, top_p=1.0, beta=0.04, loss_type="dapo", scale_rewards="group", learning_rate=LR[setting],
        lr_scheduler_type="constant", bf16=True, use_vllm=False, gradient_checkpointing=False, disable_dropout=True,
        logging_steps=1, max_steps=s.steps, seed=0, data_seed=0, report_to="none", save_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, shuffle_dataset=False, use_cpu=device.type == "cpu",
        model_init_kwargs={"dtype": "bfloat16"})
    reset_peak(device)
    t0 = time.perf_counter()
    trainer = Timed(model=str(model_dir), reward_funcs=[last_id_reward], args=config,
                    train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
                    processing_class=AutoTokenizer.from_pretrained(str(model_dir), padding_side="left"),
                    callbacks=[StepTimer()], peft_config=peft_config)
    trainer.train()
    wall = time.perf_counter() - t0
    mem = peak_memory(device)
    on_device = trainer.model.device.type == device.type
    del trainer
    kept = records[s.warmup:]
    med = {k: statistics.median(r.get(k, 0.0) for r in kept) for k in ("step_s", "generate_s", "generate_and_score_s",
                                                                         "completion_tokens")}
    rows = s.prompts * s.gens
    comp_len = med["completion_tokens"] / rows
    train_s = med["step_s"] - med["generate_s"]
    fl = work_flops(model_dir, s, comp_len, setting == "lora")
    out = {"who": "trl", "trl_version": trl.__version__, "setting": setting, "steps": len(records),
           "medians_over_steps": len(kept), "wall_s": wall, "step_s": med["step_s"], "rollout_s": med["generate_s"],
           "train_s": train_s, "completion_tokens_per_step": med["completion_tokens"],
           "completion_len": {"mean": comp_len, "max_per_step_mean": max(r.get("completion_tokens", 0) for r in records) / rows},
           "phases_median_s": {"generate": med["generate_s"],
                               "score_after_generate": med["generate_and_score_s"] - med["generate_s"],
                               "rest_of_step": med["step_s"] - med["generate_and_score_s"]},
           "step_s_all": [r["step_s"] for r in records], "model_on_device": on_device,
           "optimizer": "AdamW over the bf16 weights (TRL/Trainer default)", "lr": LR[setting],
           "logged_completion_mean_length": [lg["completions/mean_length"] for lg in log_rows
                                             if "completions/mean_length" in lg],
           **mem, **rates(med["step_s"], med["generate_s"], train_s, med["completion_tokens"],
                          rows * s.prompt_len + med["completion_tokens"], fl, peak, measured),
           "flops_per_step": fl}
    out["all_completions_full_length"] = all(r.get("completion_tokens") == rows * s.new_tokens for r in records)
    return len(records) == s.steps and on_device and train_s > 0, out


def last_id_reward(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
    """rft's grader here: 1.0 when the completion's last token id ends in 0-4 (``REWARD_PATTERN``)."""
    return [1.0 if re.search(REWARD_PATTERN, c) else 0.0 for c in completions]


# -- the run ---------------------------------------------------------------------------------------
def environment(device: torch.device) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    names = ["torch", "transformers", "tokenizers", "peft", "accelerate", "trl", "datasets", "pyarrow", "fsspec",
             "huggingface-hub", "pydantic", "numpy", "math-verify", "google-re2", "rapidfuzz", "jsonschema"]
    env = {"python": sys.version.split()[0], "packages": {n: ver(n) for n in names}, "device": str(device),
           "torch_cuda": torch.version.cuda, "rft_file": __import__("rft").__file__}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, sm_count=props.multi_processor_count)
    return env


def summary_markdown(res: dict[str, Any]) -> str:
    """The short human-readable view of ``results.json``."""
    env, lines = res["env"], []
    lines += [f"# rft GPU check ({res['mode']})", "",
              f"{res['started']}, {env.get('gpu', env['device'])}, torch {env['packages']['torch']} (CUDA "
              f"{env['torch_cuda']}), transformers {env['packages']['transformers']}, trl {env['packages']['trl']}; "
              f"bf16 peak {res['peak']['datasheet_tflops']} TFLOP/s (datasheet), "
              f"{res['peak']['measured_matmul_tflops']:.1f} measured (square bf16 matmul). Total {res['total_s']:.0f} s.",
              "", "| entry | status | s | note |", "| --- | --- | --- | --- |"]
    for e in res["entries"]:
        d = e["detail"]
        note = d.get("error") or d.get("reason") or d.get("criterion", "")
        lines.append(f"| {e['name']} | {e['status']} | {e['seconds']:.1f} | {(str(note).splitlines() or [''])[0][:120]} |")
    runs = [e for e in res["entries"] if e["name"].startswith("throughput/") and e["status"] == "pass"]
    if runs:
        lines += ["", "| run | step s | rollout s | train s | rollout tok/s | train tok/s | MFU train | MFU step | "
                  "peak GPU GiB | completion len |", "| --- " * 10 + "|"]
        for e in runs:
            d = e["detail"]

            def pct(x: float | None) -> str:
                return f"{100 * x:.1f} %" if x is not None else "n/a"

            gib = f"{d['peak_gpu_gib']:.1f}" if d["peak_gpu_gib"] is not None else "n/a"
            lines.append(f"| {e['name'].removeprefix('throughput/')} | {d['step_s']:.3f} | {d['rollout_s']:.3f} | "
                         f"{d['train_s']:.3f} | {d['rollout_tokens_per_s']:.0f} | {d['train_tokens_per_s']:.0f} | "
                         f"{pct(d['mfu_train'])} | {pct(d['mfu_step'])} | {gib} | {d['completion_len']['mean']:.0f} |")
    for setting, r in res["ratios"].items():
        lines.append(f"\n{setting}: rft/TRL step time {r['step_s']:.3f} (medians over {r['runs']} runs each)")
    lines += ["", "Anchors (issue 17): prime-rl 1xH100 Qwen3-0.6B full FT 11.9k tok/s, MFU 11 %, 12.5 GiB; "
              "TRL async 5.5-7.3k tok/s on Qwen3-1.7B. Targets: MFU >= 10 % in training, step below TRL's."]
    return "\n".join(lines) + "\n"


def ratios(entries: list[Entry]) -> dict[str, dict[str, float]]:
    """rft/TRL median step time per setting, over the passing runs of each."""
    out = {}
    for setting in ("full", "lora"):
        by = {who: [e.detail["step_s"] for e in entries if e.status == "pass" and e.detail.get("who") == who
                    and e.detail.get("setting") == setting] for who in ("rft", "trl")}
        if by["rft"] and by["trl"]:
            out[setting] = {"step_s": statistics.median(by["rft"]) / statistics.median(by["trl"]),
                            "runs": min(len(by["rft"]), len(by["trl"]))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="results directory: results.json and summary.md")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny model, 2 prompts x 2 generations x 8 tokens")
    p.add_argument("--work", help="scratch directory for models and runs (default: a new temporary directory)")
    p.add_argument("--pairs", type=int, default=2, help="rounds of (rft, TRL) x (full, LoRA), alternating")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="seconds from the start after which no throughput run starts; a round starts only when "
                        "the last round's time still fits")
    args = p.parse_args(argv)

    t_start = time.monotonic()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars for every model load would bury the log
    s = DRY if args.dry_run else QWEN25_05B
    if not args.dry_run and not torch.cuda.is_available():
        p.error("no CUDA device here; --dry-run runs the same code on the CPU with a tiny model")
    device = torch.device("cpu" if args.dry_run else "cuda")
    if args.dry_run:
        torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                           "mode": "dry-run (CPU, tiny model)" if args.dry_run else "gpu", "sizes": asdict(s),
                           "env": environment(device), "work": str(work), "entries": [], "ratios": {}}
    entries: list[Entry] = []

    def save() -> None:  # after every entry: a run stopped at its time limit still leaves what it measured
        res.update(entries=[asdict(e) for e in entries], ratios=ratios(entries), total_s=time.monotonic() - t_start)
        (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
        (out / "summary.md").write_text(summary_markdown(res))

    name, sheet = datasheet_peak(device)
    res["peak"] = {"device": name, "datasheet_tflops": sheet / 1e12 if sheet else None,
                   "measured_matmul_tflops": matmul_rate(device) / 1e12}
    measured = res["peak"]["measured_matmul_tflops"] * 1e12
    model_dir, check_dir = work / "model", work / "check_model"

    def setup() -> tuple[bool, dict[str, Any]]:
        build_model(s, model_dir, torch.bfloat16, device)
        build_model(s, check_dir, torch.bfloat16, device, seed=1, scale=4.0)
        return True, {"model_dir": str(model_dir), "check_model_dir": str(check_dir)}

    entries.append(run_entry("setup/models", setup))
    save()
    if entries[-1].status != "pass":
        return 1

    checks = {"greedy_matches_generate": lambda: check_greedy(check_dir, s, device),
              "decode_step_bf16": lambda: check_decode_bf16(check_dir, s, device),
              "logprobs_train_vs_sampler": lambda: check_logprobs(check_dir, s, device),
              "lora_resume": lambda: check_lora_resume(work, model_dir, s, device)}
    for check, fn in checks.items():
        entries.append(run_entry(f"check/{check}", fn))
        save()

    data = write_data(work, s, n_train=s.prompts * s.steps)
    runners = {"rft": rft_throughput, "trl": trl_throughput}
    pair_s = 0.0  # the last round's seconds: a round is started only if one more of those fits the budget
    for pair in range(1, args.pairs + 1):
        t_pair = time.monotonic()
        late = time.monotonic() - t_start + (pair_s if pair > 1 else 0.0) > args.budget_s
        for setting in ("full", "lora"):
            for who, runner in runners.items():
                name = f"throughput/{who}/{setting}/{pair}"
                if late or time.monotonic() - t_start > args.budget_s:
                    late = True
                    entries.append(Entry(name, "skipped", 0.0, {"reason": f"time budget: --budget-s {args.budget_s:.0f} "
                                                                          "spent or too little left for a round"}))
                else:
                    entries.append(run_entry(name, lambda: runner(work, model_dir, data, s, device, setting, str(pair),
                                                                  sheet, measured)))
                save()
        pair_s = time.monotonic() - t_pair
    print(summary_markdown(res))
    return 0 if all(e.status != "fail" for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
