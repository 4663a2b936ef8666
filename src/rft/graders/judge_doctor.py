"""``rft doctor``'s judge check: for each model grader (``score_model``, ``label_model``) of the run's
spec, the same completions are judged twice with the cache bypassed (a judge that answers the same
messages differently is noise in the reward), and the judge's time per request, measured on those
calls, is scaled to a step's judgments (``prompts_per_step x num_generations``, before the cache
collapses identical ones) to give its share of the cost.

:func:`judge_report` returns ``(verdict, summary, advice, values)`` tuples, one per judge, which
``doctor.py`` wraps as its ``judge`` checks; none for a spec without a model grader.

Not covered: non-determinism that needs more than two tries to show, the judge's cost under the
training run's own concurrency (the estimate assumes requests one after another: an upper bound
when the server batches), and the completions the model will write (the row's reference, else a
fixed text, stands in for them).
"""

from __future__ import annotations

from typing import Any

from rft.config.graders import parse_spec
from rft.data import Example
from rft.graders.judge import JudgeGrader
from rft.graders.judge_attacks import model_graders
from rft.graders.judge_client import JudgeError

PROBES = 4  # completions judged twice


def _completion(example: Example) -> str:
    for key in ("reference", "answer", "label", "solution", "expected"):
        if isinstance(example.get(key), str) and example.get(key):
            return str(example.get(key))
    return "The answer is 42."


def judge_report(spec: dict[str, Any] | None, pool: Any, examples: list[Example],
                 per_step: int) -> list[tuple[str, str, str, dict[str, Any]]]:
    """One ``(verdict, summary, advice, values)`` per model grader of ``spec`` (``pool`` starts local judges)."""
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    resolved = pool.resolve(spec) if spec else None
    for judge_spec in model_graders(resolved):
        grader = JudgeGrader.from_spec(parse_spec(judge_spec))
        name = judge_spec.get("name") or judge_spec["type"]
        seconds, differ, failed, tokens = [], 0, "", 0
        for ex in examples[:PROBES]:
            try:
                messages = grader.messages(_completion(ex), ex)
                first, _ = grader.ask(messages, use_cache=False)
                second, _ = grader.ask(messages, use_cache=False)
            except (JudgeError, LookupError) as e:
                failed = f"{type(e).__name__}: {e}"
                break
            seconds += [first.seconds, second.seconds]
            tokens += first.prompt_tokens + first.completion_tokens
            differ += first.text != second.text
        if failed:
            out.append(("block", f"{name}: the judge did not answer ({failed[:200]})",
                        "start the judge's server, or fix judge.base_url / judge.model", {}))
            continue
        each = sum(seconds) / max(len(seconds), 1)
        values = {"judge": name, "probes": len(seconds) // 2, "differ": differ, "request_s": each,
                  "judge_s_per_step": each * per_step, "tokens_per_request": tokens / max(len(seconds) // 2, 1)}
        cost = (f"{each:.2f} s per request, up to {each * per_step:.1f} s of judging per step ({per_step} "
                "judgments before the cache)")
        if differ:
            out.append(("warn", f"{name}: not deterministic: {differ} of {len(seconds) // 2} replies changed when "
                        f"judged again; {cost}", "set sampling_params.temperature to 0 (greedy), or a seed", values))
        else:
            out.append(("ok", f"{name}: the same reply twice on {len(seconds) // 2} completions; {cost}", "", values))
    return out
