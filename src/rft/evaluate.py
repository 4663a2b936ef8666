"""Held-out evaluation: greedy pass@1 and mean reward on the validation split.

Reuses the rollout engine and the graders. ``pass@1`` is the share of examples whose greedy
completion the grader marks passed (``Grade.passed``); ``mean_reward`` the mean score. With
``track_fields`` it also reports, per field F, the share of greedy answers equal to ``example[F]``
where that value is wrong (e.g. ``match_sloppy``: how often the model still writes the sloppy
annotator's answer on problems where it differs from the true one).
Greedy decoding draws no random numbers, so evaluating never changes a training trajectory.
Not covered here: sampled pass@k (the pre-flight doctor measures it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from rft.data import Example
from rft.graders.base import Grade
from rft.graders.pool import GraderPool
from rft.rollout.base import RolloutEngine, SamplingParams


@dataclass
class EvalResult:
    metrics: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, example: Example) -> list[int]:
    """Token ids of a prompt: plain text as-is, chat messages through the tokenizer's chat template."""
    if isinstance(example.prompt, str):
        return list(tokenizer(example.prompt)["input_ids"])
    return list(tokenizer.apply_chat_template(example.prompt, add_generation_prompt=True, tokenize=True))


def wrong_answer_share(pool: GraderPool, texts: list[str], examples: list[Example], field_name: str) -> float:
    """Share of greedy answers equal to ``example[field_name]``, counted only over the examples where
    that value is itself graded wrong (e.g. the sloppy annotator's answer when it differs from the
    truth): 0 means the model never writes the known-wrong answer."""
    candidates = [(t, e) for t, e in zip(texts, examples) if e.get(field_name) is not None]
    verdicts = pool.grade([str(e.get(field_name)) for _, e in candidates], [e for _, e in candidates])
    wrong = [(t, e) for (t, e), g in zip(candidates, verdicts) if g.passed is False]
    if not wrong:
        return 0.0
    return sum(t.strip() == str(e.get(field_name)).strip() for t, e in wrong) / len(wrong)


def evaluate(
    engine: RolloutEngine,
    tokenizer: PreTrainedTokenizerBase,
    pool: GraderPool,
    examples: list[Example],
    max_new_tokens: int,
    batch_size: int = 512,
    track_fields: list[str] | None = None,
) -> EvalResult:
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    texts: list[str] = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        groups = engine.generate([encode_prompt(tokenizer, e) for e in chunk], 1, params)
        texts.extend(g[0].text for g in groups)
    grades: list[Grade] = pool.grade(texts, examples)
    n = max(len(examples), 1)
    metrics = {
        "pass@1": sum(bool(g.passed) for g in grades) / n,
        "mean_reward": sum(g.score for g in grades) / n,
        "skipped": float(sum(g.passed is None for g in grades)),
    }
    for f in track_fields or []:
        metrics[f"match_{f}"] = wrong_answer_share(pool, texts, examples, f)
    rows = [{"id": e.id, "prompt": e.prompt, "completion": t, "score": g.score, "passed": g.passed, "reason": g.reason}
            for e, t, g in zip(examples, texts, grades)]
    return EvalResult(metrics, rows)


def sampled_pass_at_k(
    engine: RolloutEngine,
    tokenizer: PreTrainedTokenizerBase,
    pool: GraderPool,
    examples: list[Example],
    k: int,
    params: SamplingParams,
    generator: Any,
    batch_size: int = 128,
) -> dict[str, float]:
    """Sample k completions per example with the training sampler: pass@k (at least one passed),
    the share of passed samples, mean reward per completion, and the share of groups with zero
    reward variance (no signal)."""
    any_pass, all_same, total, passed = 0, 0, 0.0, 0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        groups = engine.generate([encode_prompt(tokenizer, e) for e in chunk], k, params, generator)
        grades = pool.grade([c.text for g in groups for c in g], [e for e in chunk for _ in range(k)])
        for j in range(len(chunk)):
            scores = [gr.score for gr in grades[j * k : (j + 1) * k]]
            any_pass += any(bool(gr.passed) for gr in grades[j * k : (j + 1) * k])
            passed += sum(bool(gr.passed) for gr in grades[j * k : (j + 1) * k])
            all_same += max(scores) == min(scores)
            total += sum(scores)
    n = max(len(examples), 1)
    return {f"pass@{k}": any_pass / n, "pass_rate": passed / (n * k), "mean_reward": total / (n * k),
            "frac_zero_std_groups": all_same / n}
