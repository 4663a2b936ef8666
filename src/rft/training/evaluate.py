"""Held-out evaluation: greedy pass@1, mean reward per grader, and sampled pass@k / maj@k.

Reuses the rollout engine and the graders. ``pass@1`` is the share of examples whose greedy
completion passes (:func:`rft.graders.base.passed_of`: the grader's verdict, else full score);
``skipped`` the count of rows the grader could not judge (``details["skipped"]``, counted as not
passed); ``mean_reward`` the mean score, and
``reward/<grader type>`` (plus ``reward/<type>/<component>`` for ``multi`` graders) the same per
grader. With ``track_fields`` it also reports, per field F, the share of greedy answers equal to
``example[F]`` where that value is wrong (e.g. ``match_sloppy``: how often the model still writes
the sloppy annotator's answer on problems where it differs from the true one).
Greedy decoding draws no random numbers, so evaluating never changes a training trajectory.

:func:`sampled_pass_at_k` samples n completions per example with the training sampler and reports
pass@k for k = 1, 2, 4, ... n with the unbiased estimator of Chen et al. 2021 (``1 - C(n-c, k) /
C(n, k)`` for c passing samples of n, averaged over examples), ``maj@n`` (the most frequent answer
of the n is graded: the grader's extracted answer where it reports one, else the whitespace-
normalised text), the mean and the best sampled score, and the share of groups with zero reward
variance.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from math import prod
from typing import Any

from transformers import PreTrainedTokenizerBase

from rft.data import Example
from rft.envs.episodes import EpisodeRunner, with_own_grades
from rft.graders.base import Grade, passed_of
from rft.graders.pool import GraderPool
from rft.rollout.base import Completion, RolloutEngine, SamplingParams


@dataclass
class EvalResult:
    metrics: dict[str, float]
    rows: list[dict[str, Any]] = field(default_factory=list)


def encode_prompt(tokenizer: PreTrainedTokenizerBase, example: Example) -> list[int]:
    """Token ids of a prompt: plain text as-is, chat messages through the tokenizer's chat template."""
    if isinstance(example.prompt, str):
        return list(tokenizer(example.prompt)["input_ids"])
    from rft.models.chat import chat_prompt_ids

    return chat_prompt_ids(tokenizer, example.prompt)


def wrong_answer_share(pool: GraderPool, texts: list[str], examples: list[Example], field_name: str) -> float:
    """Share of greedy answers equal to ``example[field_name]``, counted only over the examples where
    that value is itself graded wrong (e.g. the sloppy annotator's answer when it differs from the
    truth): judged and not passed (:func:`passed_of`); a skipped or errored verdict on the value
    leaves its example out. 0 means the model never writes the known-wrong answer."""
    candidates = [(t, e) for t, e in zip(texts, examples) if e.get(field_name) is not None]
    verdicts = pool.grade([str(e.get(field_name)) for _, e in candidates], [e for _, e in candidates])
    wrong = [(t, e) for (t, e), g in zip(candidates, verdicts) if not (passed_of(g) or g.skipped or g.errored)]
    if not wrong:
        return 0.0
    return sum(t.strip() == str(e.get(field_name)).strip() for t, e in wrong) / len(wrong)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al. 2021): 1 - C(n-c, k) / C(n, k),
    as the product prod_{i=n-c+1..n} (1 - k / i), which never forms the large binomials."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def majority_passed(texts: list[str], grades: list[Grade]) -> bool:
    """maj@n: grade of the most frequent answer (ties: the one seen first). The answer is the grader's
    ``details["extracted"]`` where it reports one (math), else the whitespace-normalised completion."""
    keys = [str(g.details["extracted"]) if "extracted" in g.details else " ".join(t.split())
            for t, g in zip(texts, grades)]
    counts = Counter(keys)
    top = max(counts.values())
    winner = next(k for k in keys if counts[k] == top)
    return passed_of(grades[keys.index(winner)])


def per_grader_rewards(pool: GraderPool, examples: list[Example], grades: list[Grade]) -> dict[str, float]:
    """Mean score per grader type, and per component of graders that report ``details["components"]``."""
    scores: dict[str, list[float]] = defaultdict(list)
    for e, g in zip(examples, grades):
        spec = e.grader or pool.default_spec or {}
        kind = str(spec.get("type", "unknown"))
        scores[f"reward/{kind}"].append(g.score)
        for name, value in (g.details.get("components") or {}).items():
            if isinstance(value, (int, float)):
                scores[f"reward/{kind}/{name}"].append(float(value))
    return {k: sum(v) / len(v) for k, v in scores.items()}


def evaluate(
    engine: RolloutEngine,
    tokenizer: PreTrainedTokenizerBase,
    pool: GraderPool,
    examples: list[Example],
    max_new_tokens: int,
    batch_size: int = 512,
    track_fields: list[str] | None = None,
    episodes: EpisodeRunner | None = None,
) -> EvalResult:
    """Greedy pass@1 (one episode per example with ``episodes``; one completion without)."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    runner = episodes or EpisodeRunner.single_turn()
    done: list[Completion] = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        groups = runner.run(engine, chunk, [encode_prompt(tokenizer, e) for e in chunk], 1, params)
        done.extend(g[0] for g in groups)
    texts = [c.text for c in done]
    grades: list[Grade] = with_own_grades(done, pool.grade(texts, examples), pool)
    n = max(len(examples), 1)
    metrics = {
        "pass@1": sum(passed_of(g) for g in grades) / n,
        "mean_reward": sum(g.score for g in grades) / n,
        "skipped": float(sum(g.skipped for g in grades)),
        **per_grader_rewards(pool, examples, grades),
    }
    for f in track_fields or []:
        metrics[f"match_{f}"] = wrong_answer_share(pool, texts, examples, f)
    metrics.update(runner.metrics(done, grades))
    rows = [{"id": e.id, "prompt": e.prompt, "completion": c.text, "score": g.score, "passed": passed_of(g),
             "reason": g.reason, **runner.sample_fields(c)} for e, c, g in zip(examples, done, grades)]
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
    episodes: EpisodeRunner | None = None,
) -> dict[str, float]:
    """Sample k completions per example with the training sampler: ``pass@j`` for j = 1, 2, 4, ... k
    (unbiased estimator; ``pass@1`` is the share of passed samples, ``pass@k`` the share of examples
    with at least one pass), ``maj@k``, the mean reward per completion, the best score of any sample
    (``max_reward``), and the share of groups with zero reward variance (no signal)."""
    ks = sorted({2**i for i in range(k.bit_length()) if 2**i <= k} | {k})
    sums = dict.fromkeys(ks, 0.0)
    majority, all_same, total, best = 0, 0, 0.0, float("-inf")
    runner = episodes or EpisodeRunner.single_turn()
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        groups = runner.run(engine, chunk, [encode_prompt(tokenizer, e) for e in chunk], k, params, generator=generator)
        done = [c for g in groups for c in g]
        texts = [c.text for c in done]
        grades = with_own_grades(done, pool.grade(texts, [e for e in chunk for _ in range(k)]), pool)
        for j in range(len(chunk)):
            mine = grades[j * k : (j + 1) * k]
            scores = [gr.score for gr in mine]
            c = sum(passed_of(gr) for gr in mine)
            for kk in ks:
                sums[kk] += pass_at_k(k, c, kk)
            majority += majority_passed(texts[j * k : (j + 1) * k], mine)
            all_same += max(scores) == min(scores)
            total += sum(scores)
            best = max(best, *scores)
    n = max(len(examples), 1)
    return {**{f"pass@{kk}": sums[kk] / n for kk in ks}, f"maj@{k}": majority / n,
            "mean_reward": total / (n * k), "max_reward": best if examples else 0.0,
            "frac_zero_std_groups": all_same / n}
