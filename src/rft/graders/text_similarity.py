"""The ``text_similarity`` grader (OpenAI RFT shape): a similarity score in [0, 1] plus a pass bar.

Spec::

    {"type": "text_similarity", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
     "evaluation_metric": "fuzzy_match" | "bleu" | "rouge_1" | "rouge_2" | "rouge_l",
     "pass_threshold": 0.8}

Metrics (tokens = ``\\w+`` runs and single punctuation marks):

- ``fuzzy_match``: normalized Indel similarity of the two strings (rapidfuzz ``fuzz.ratio`` / 100),
  i.e. 1 - (insertions + deletions) / (len(a) + len(b)).
- ``bleu``: sentence BLEU-4 (Papineni et al., 2002): geometric mean of clipped n-gram precisions
  p_1..p_N times the brevity penalty min(1, exp(1 - r/c)), N = min(4, candidate tokens) (the
  "effective order" of sacrebleu's sentence BLEU, so a one-word answer can score 1); a zero count is
  smoothed to 0.1 / (count of candidate n-grams) (Chen & Cherry 2014, method 1). Case-sensitive.
- ``rouge_n``: F1 of clipped n-gram overlap; ``rouge_l``: F1 of the longest common token
  subsequence (Lin, 2004). Lower-cased.

score = the metric; passed = score >= pass_threshold (default 1.0 when absent, as in OpenAI's).
Padding the answer with repeats lowers precision (clipping), so it lowers every metric; a bare echo
of the prompt scores only what it shares with the reference. Inputs over ``max_chars`` score 0.
Not covered: OpenAI's ``gleu``, ``meteor`` and ``cosine`` (embedding) metrics -- spec error.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from rapidfuzz import fuzz
from rapidfuzz.distance import LCSseq

from rft.config.graders import TextSimilaritySpec
from rft.data import Example
from rft.graders.base import Grade
from rft.graders.templates import Template, render_pair

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _ngrams(toks: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def fuzzy_match(candidate: str, reference: str) -> float:
    return fuzz.ratio(candidate, reference) / 100.0


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    cand, ref = tokens(candidate), tokens(reference)
    if not cand or not ref:
        return 0.0
    orders = min(max_n, len(cand))  # effective order: no n-grams longer than the candidate
    log_sum = 0.0
    for n in range(1, orders + 1):
        c_grams, r_grams = _ngrams(cand, n), _ngrams(ref, n)
        total = sum(c_grams.values())
        hits = sum(min(count, r_grams[g]) for g, count in c_grams.items())
        log_sum += math.log(hits / total if hits else 0.1 / total)
    brevity = min(1.0, math.exp(1 - len(ref) / len(cand)))
    return brevity * math.exp(log_sum / orders)


def _f1(hits: float, n_cand: int, n_ref: int) -> float:
    if hits == 0 or n_cand == 0 or n_ref == 0:
        return 0.0
    precision, recall = hits / n_cand, hits / n_ref
    return 2 * precision * recall / (precision + recall)


def rouge_n(candidate: str, reference: str, n: int) -> float:
    c_grams, r_grams = _ngrams(tokens(candidate.lower()), n), _ngrams(tokens(reference.lower()), n)
    hits = sum(min(count, r_grams[g]) for g, count in c_grams.items())
    return _f1(hits, sum(c_grams.values()), sum(r_grams.values()))


def rouge_l(candidate: str, reference: str) -> float:
    cand, ref = tokens(candidate.lower()), tokens(reference.lower())
    return _f1(LCSseq.similarity(cand, ref), len(cand), len(ref))


METRICS: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": fuzzy_match,
    "bleu": bleu,
    "rouge_1": lambda c, r: rouge_n(c, r, 1),
    "rouge_2": lambda c, r: rouge_n(c, r, 2),
    "rouge_l": rouge_l,
}


@dataclass(frozen=True)
class TextSimilarityGrader:
    spec: TextSimilaritySpec
    input: Template
    reference: Template

    @classmethod
    def from_spec(cls, spec: TextSimilaritySpec) -> "TextSimilarityGrader":
        return cls(spec, Template.parse(spec.input, spec.type, "input"),
                   Template.parse(spec.reference, spec.type, "reference"))

    def __call__(self, completion: str, example: Example) -> Grade:
        rendered = render_pair(self.input, self.reference, completion, example, self.spec.max_chars)
        if isinstance(rendered, Grade):
            return rendered
        text, ref = rendered
        score = METRICS[self.spec.evaluation_metric](text, ref)
        ok = score >= self.spec.pass_threshold
        reason = f"{self.spec.evaluation_metric} = {score:.3f} ({'>=' if ok else '<'} {self.spec.pass_threshold:g})"
        return Grade(score, ok, reason, {"metric": self.spec.evaluation_metric})
