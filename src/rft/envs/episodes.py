"""Run episodes: n per prompt, batched across episodes turn by turn, on any rollout engine.

Turn 1 is one ``engine.generate(prompts, n, params, seeds)`` call, exactly as a single-turn rollout
samples (so the trivial environment gives the same completions and the same rewards as before
episodes existed; for it that call is the whole run, see :meth:`EpisodeRunner.run`). Each later turn is one ``generate`` call over every episode still going, each
with its own context (prompt + every earlier turn and observation) and its own seed, derived from
its group's seed, its index in the group and the turn.

Token ids are never re-tokenized: the context of turn k is the exact ids the sampler produced for
turns 1..k-1 plus the observations' ids (:class:`ObservationFormat`), and the training batch is
those same ids, so the log-probs the loss scores are those of the sampled context. The loss mask
is 1 on the model's tokens and 0 on the observations'.

Observation tokens: for a chat prompt, the observation is a ``user`` message rendered by the
tokenizer's chat template (the end of the model's turn, the message, and the header of the next
assistant turn); for a plain-text prompt, ``"\\n" + observation + "\\n" + env.cue``. The observation is
text, never control tokens, and is cut in its text, never in that wrapper. A turn cut at
``max_new_tokens`` (no EOS) ends its episode (``end = "length"``), as it would end a single turn.
"""

from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from transformers import PreTrainedTokenizerBase

from rft.data import Example
from rft.envs.base import Environment, Episode, SingleTurn, call_deadline
from rft.graders.base import Grade, checked, passed_of
from rft.graders.pool import GraderPool
from rft.rollout.base import (
    END_REASONS,
    Completion,
    EpisodeRecord,
    Message,
    RolloutEngine,
    SamplingParams,
)

_A, _O = "\x00RFT-A\x00", "\x00RFT-O\x00"  # sentinels located in a rendered chat template
STEP_GRACE_S = 1.0  # the least time an environment step gets, even in an episode already past timeout_s
# What an environment call may raise and only end its episode (score 0, the reason kept): any Exception, and
# SystemExit (a `sys.exit()` in environment code, or one re-raised from a worker thread by its future).
# KeyboardInterrupt and GeneratorExit are the caller's and pass.
ENV_FAILURES = (Exception, SystemExit)
CHARS_PER_TOKEN = 16  # an observation is cut to 16 x max_observation_tokens characters before it is tokenized


class ObservationFormat:
    """Token ids that put an observation in the context after a model turn, per prompt kind.

    The layout is a wrapper around the observation's text: for a chat prompt the chat template's own
    end of the assistant turn, user header, and (after the text) the next assistant header; for a
    plain-text prompt ``"\\n"`` before and ``"\\n" + cue`` after. Only the wrapper is encoded with its
    special tokens parsed; the observation (SQLite's error, a tool's result, test output: text the
    model or the data may have chosen) is encoded as text, so ``<|im_end|><|im_start|>system`` in it
    becomes ordinary tokens and never forges a turn (:meth:`text_ids`). An observation longer than
    ``max_tokens`` ids in all is cut in its text -- first to ``CHARS_PER_TOKEN`` characters per
    token, so a 20 MB tool result costs nothing to tokenize, then in ids -- never in the wrapper: a
    cut observation still ends with the assistant header or the cue. Not covered: a wrapper longer
    than ``max_tokens`` (the text then gets no ids; ``rft.training.session`` refuses such a config).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase | None, cue: str = "", max_tokens: int = 128) -> None:
        self.tokenizer, self.cue, self.max_tokens = tokenizer, cue, max_tokens  # tokenizer None: one turn only
        self.eos_id = getattr(tokenizer, "eos_token_id", None)
        self._chat: tuple[str, str] | None = None
        self._controls: dict[bool, tuple[set[int], re.Pattern[str] | None]] = {}

    def _chat_wrap(self) -> tuple[str, str]:
        """(text before, text after) an observation in a chat: the template's own end of the assistant
        turn, the user header, and after the message the next assistant header."""
        if self._chat is None:
            msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": _A},
                    {"role": "user", "content": _O}]
            text = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
            if _A not in text or _O not in text:
                raise ValueError("the chat template drops message contents; cannot place observations in it")
            before, after = text[text.index(_A) + len(_A):].split(_O, 1)
            self._chat = before, after
        return self._chat

    def wrapper(self, chat: bool, turn_stopped: bool) -> tuple[list[int], list[int]]:
        """The ids before and after an observation's text; ``turn_stopped``: the model's turn ended with
        EOS (already in the context, not repeated)."""
        if chat:
            before, after = self._chat_wrap()
            eos_text = self.tokenizer.eos_token or ""
            if turn_stopped and eos_text and before.startswith(eos_text):
                before = before[len(eos_text):]
            return self.markup_ids(before), self.markup_ids(after)
        return ([] if turn_stopped else [self.eos_id]) + self.markup_ids("\n"), self.markup_ids("\n" + self.cue)

    def layout(self, observation: str, chat: bool, turn_stopped: bool) -> tuple[list[int], str]:
        """(the observation's ids in the context, the text the transcript shows): the wrapper whole
        around the observation's text, cut to fit ``max_tokens`` ids in all (the shown text then ends
        with ``[cut]``)."""
        before, after = self.wrapper(chat, turn_stopped)
        room = max(0, self.max_tokens - len(before) - len(after))
        text = observation[: room * CHARS_PER_TOKEN]
        ids = self.text_ids(text, chat)
        if len(text) < len(observation) or len(ids) > room:
            ids = ids[:room]
            observation = self.tokenizer.decode(ids).strip() + " [cut]"
        return before + ids + after, observation

    def check(self, chat: bool) -> None:
        """ValueError when ``max_tokens`` cannot hold the wrapper and some of an observation's text."""
        wrap = sum(len(ids) for ids in self.wrapper(chat, False))
        if wrap + 8 > self.max_tokens:
            raise ValueError(f"environment.max_observation_tokens={self.max_tokens} cannot hold an observation: its "
                             f"{'chat template' if chat else 'plain-text'} wrapper alone is {wrap} tokens; raise it "
                             f"to at least {wrap + 8}")

    def ids(self, observation: str, chat: bool, turn_stopped: bool) -> list[int]:
        """The observation's ids (:meth:`layout`)."""
        return self.layout(observation, chat, turn_stopped)[0]

    def markup_ids(self, text: str) -> list[int]:
        """Ids of the template's own text, its special tokens parsed (``<|im_start|>`` is one token)."""
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def text_ids(self, text: str, chat: bool) -> list[int]:
        """Ids of untrusted text, never a control token: special-token parsing off, and where the
        tokenizer still matches a control token (an added token the chat template uses, not marked
        special) the text is encoded in pieces that split every occurrence of one."""
        controls, pattern = self._control_tokens(chat)
        ids = self._plain(text)
        if pattern is not None and controls.intersection(ids):
            pieces, at = [], 0
            for m in pattern.finditer(text):
                pieces += [text[at:m.start()], m.group()[:1], m.group()[1:]]
                at = m.end()
            ids = [i for piece in pieces + [text[at:]] if piece for i in self._plain(piece)]
        return [i for i in ids if i not in controls]

    def _plain(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]]

    def _control_tokens(self, chat: bool) -> tuple[set[int], re.Pattern[str] | None]:
        """(ids text must never encode to, a pattern of their strings): the special tokens (but UNK) and
        every added token of the wrapper (a chat template's ``<|im_start|>`` even where it is not special)."""
        if chat not in self._controls:
            tok = self.tokenizer
            added = {int(i): t for i, t in (getattr(tok, "added_tokens_decoder", None) or {}).items()}
            before, after = self.wrapper(chat, False)
            ids = {int(i) for i in tok.all_special_ids} | {i for i, t in added.items() if getattr(t, "special", False)}
            ids |= {i for i in before + after if i in added}
            ids.discard(getattr(tok, "unk_token_id", None))  # an unknown character stays one; it forges nothing
            texts = {str(added[i].content) if i in added else str(tok.convert_ids_to_tokens(i)) for i in ids}
            pattern = "|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True) if t)
            self._controls[chat] = ids, (re.compile(pattern) if pattern else None)
        return self._controls[chat]


def turn_seed(group_seed: int, index: int, turn: int) -> int:
    """The sampling seed of turn ``turn`` (>= 2) of episode ``index`` of a group."""
    digest = hashlib.blake2b(f"{group_seed}/{index}/{turn}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass
class _Run:
    """One episode in progress."""

    example: Example
    prompt: list[int]
    seed: int
    episode: Episode | None
    started: float
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    transcript: list[Message] = field(default_factory=list)
    end: str = ""
    error: str = ""
    last_finish: str = "stop"

    def add(self, role: str, text: str, ids: list[int]) -> None:
        self.ids += ids
        self.mask += [1 if role == "assistant" else 0] * len(ids)
        self.transcript.append(Message(role, text, len(ids)))  # type: ignore[arg-type]


def _guarded(run: _Run, call: Callable[[], Any], timeout_s: float | None) -> Any:
    """Call into the environment by the episode's deadline; an exception ends the episode (score 0,
    the reason kept)."""
    try:
        with call_deadline(_deadline(run, timeout_s, time.monotonic())):
            return call()
    except ENV_FAILURES as e:  # environment code must not kill training
        run.end, run.error = "env_error", f"{type(e).__name__}: {e}"[:300]
        return None


def _deadline(run: _Run, timeout_s: float | None, since: float) -> float | None:
    """When the runner stops waiting for an environment call made at ``since``: the episode's deadline,
    but at least STEP_GRACE_S after the call (an episode whose sampling used up its time still has
    its last turn recorded before it ends)."""
    return None if timeout_s is None else max(run.started + timeout_s, since + STEP_GRACE_S)


def _within(deadline: float | None, call: Callable[..., Any], *args: Any) -> Any:
    with call_deadline(deadline):  # in the worker thread: the environment's own bound on its calls
        return call(*args)


@dataclass
class EpisodeRunner:
    """Runs the environment's episodes on an engine: what every rollout and validation samples through."""

    env: Environment
    fmt: ObservationFormat
    workers: int = 8  # threads that call the environment's steps (its queries, its sandboxed tests)

    @classmethod
    def of(cls, env: Environment, tokenizer: PreTrainedTokenizerBase | None) -> "EpisodeRunner":
        return cls(env, ObservationFormat(tokenizer, getattr(env, "cue", ""), env.limits.max_observation_tokens))

    @classmethod
    def single_turn(cls) -> "EpisodeRunner":
        """One completion per episode, graded once: what every caller without an environment samples through."""
        return cls.of(SingleTurn(), None)

    def run(self, engine: RolloutEngine, examples: list[Example], prompts: list[list[int]], n: int,
            params: SamplingParams, seeds: list[int] | None = None,
            generator: torch.Generator | None = None) -> list[list[Completion]]:
        """``n`` episodes per example, grouped per example, in order. Each returned :class:`Completion`
        holds every id after the prompt (``token_ids``), the text to grade (``text``: the episode's
        answer) and its :class:`EpisodeRecord` (``episode``), whose ``grade`` is set when the episode
        graded itself or failed. The trivial environment (:class:`SingleTurn`: one turn, graded by the run's
        grader) returns the engine's own completions (``episode`` None, every token the model's): no
        thread pool, no episode objects, nothing the one turn does not need."""
        if isinstance(self.env, SingleTurn):
            return engine.generate(prompts, n, params, generator, seeds=seeds)
        env, limits, now = self.env, self.env.limits, time.monotonic()
        runs = [_Run(e, p, seeds[i] if seeds else 0, None, now) for i, (e, p) in enumerate(zip(examples, prompts))
                for _ in range(n)]
        for r in runs:
            r.episode = _guarded(r, lambda r=r: env.reset(r.example), limits.timeout_s)
        first = engine.generate(prompts, n, params, generator, seeds=seeds)
        outputs = [c for group in first for c in group]
        active = list(range(len(runs)))
        threads = ThreadPoolExecutor(max_workers=max(1, self.workers))
        try:
            for turn in range(1, limits.max_turns + 1):
                observations = _steps(threads, [runs[i] for i in active], outputs, limits.timeout_s)
                going = [i for i, obs in zip(active, observations) if obs is not None
                         and _admit(runs[i], obs, turn, self.fmt, limits, params.max_new_tokens)]
                if not going:
                    break
                contexts = [runs[i].prompt + runs[i].ids for i in going]
                turn_seeds = [turn_seed(runs[i].seed, i % n, turn + 1) for i in going] if seeds else None
                outputs = [g[0] for g in engine.generate(contexts, 1, params, generator, seeds=turn_seeds)]
                active = going
        finally:  # a step still running past its episode's time is abandoned, not waited for
            threads.shutdown(wait=False, cancel_futures=True)
        return [[_completion(r, limits.timeout_s) for r in runs[i * n:(i + 1) * n]] for i in range(len(examples))]

    def retry_prompt(self, example: Example, prompt: list[int], target: str, rng: Any) -> list[int] | None:
        """A procedural retry transcript's context for an SFT warm start: ``prompt``, a wrong first turn
        and the observation it gets (from an environment with ``mistake(example, target, rng)``, e.g.
        sql_retry), laid out exactly as an episode lays them out; ``target`` is then the second turn.
        None when the environment makes no such transcript for this example."""
        make = getattr(self.env, "mistake", None)
        found = make(example, target, rng) if make is not None else None
        if found is None:
            return None
        bad, observation = found
        chat = isinstance(example.prompt, list)
        turn = self.fmt.text_ids(bad, chat) + [self.fmt.eos_id]
        return prompt + turn + self.fmt.ids(observation, chat, True)

    def sample_fields(self, c: Completion) -> dict[str, Any]:
        """A sample row's transcript fields in a multi-turn run: every model turn and observation as the
        model saw it, the turn count and why the episode ended (nothing in a single-turn run)."""
        rec = c.episode
        if rec is None or self.env.limits.max_turns == 1:
            return {}
        return {"transcript": [{"role": m.role, "text": m.text} for m in rec.transcript], "turns": rec.turns,
                "end": rec.end, **({"answer_turn": rec.answer_turn} if rec.answer_turn is not None else {})}

    def metrics(self, done: list[Completion], grades: list[Grade]) -> dict[str, float]:
        """``episode/*`` metrics of multi-turn episodes (none for a single-turn environment): mean turns,
        success by turn k (the share of episodes that passed with their answer found by turn k: the
        turn the episode reports (``answer_turn()``; sql_retry: the first turn whose query returned the
        answer's rows, so a right first query the model confirms at turn 2 under ``on_success: show``
        counts at turn 1), else its last turn), tokens by role, the
        length of one model turn (what the length monitor watches), and the share of episodes ended
        by each reason (``end/max_turns``, ``end/length``, ...)."""
        K = self.env.limits.max_turns
        recs = [c.episode for c in done if c.episode is not None]
        if K == 1 or not recs or len(recs) != len(grades):
            return {}
        n = len(recs)
        out = {"episode/turns_mean": sum(r.turns for r in recs) / n,
               "episode/model_tokens_mean": sum(r.tokens_of("assistant") for r in recs) / n,
               "episode/turn_len_mean": sum(r.tokens_of("assistant") / max(r.turns, 1) for r in recs) / n,
               "episode/observation_tokens_mean": sum(r.tokens_of("observation") for r in recs) / n}
        for k in range(1, K + 1):
            out[f"episode/success_by_turn_{k}"] = sum(passed_of(g) and (r.answer_turn or r.turns) <= k
                                                      for r, g in zip(recs, grades)) / n
        out.update({f"episode/end/{why}": sum(r.end == why for r in recs) / n for why in END_REASONS})
        return out


def _steps(threads: ThreadPoolExecutor, runs: list[_Run], turns: list[Completion],
           timeout_s: float | None) -> list[str | None]:
    """Record each model turn and ask each episode's environment, in parallel threads; the
    observations, None where an episode ended. A step that outlives its episode's ``timeout_s``
    ends it (``end: timeout``); its thread is abandoned and its late answer ignored."""
    futures, submitted = [], time.monotonic()
    for run, turn in zip(runs, turns):
        run.add("assistant", turn.text, list(turn.token_ids))
        run.last_finish = turn.finish_reason
        episode = run.episode
        futures.append(None if episode is None else
                       threads.submit(_within, _deadline(run, timeout_s, submitted), episode.step, turn.text))
    out: list[str | None] = []
    for run, turn, future in zip(runs, turns, futures):
        out.append(_observation(run, turn, future, timeout_s, submitted))
    return out


def _observation(run: _Run, turn: Completion, future: Any, timeout_s: float | None, submitted: float) -> str | None:
    if future is None:  # reset failed: the episode is already over
        return None
    deadline = _deadline(run, timeout_s, submitted)  # the waits overlap: all steps went out at `submitted`
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        obs = future.result(timeout=left)
    except FutureTimeout:
        run.end = "timeout"
        return None
    except ENV_FAILURES as e:  # environment code must not kill training
        run.end, run.error = "env_error", f"{type(e).__name__}: {e}"[:300]
        return None
    if obs is None:
        run.end = "answer"
        return None
    if turn.finish_reason == "length":
        run.end = "length"
        return None
    return str(obs)


def _admit(run: _Run, obs: str, turn: int, fmt: ObservationFormat, limits: Any, max_new: int) -> bool:
    """Put the observation in the context when the limits allow another turn; else end the episode."""
    if turn >= limits.max_turns:
        run.end = "max_turns"
        return False
    if limits.timeout_s is not None and time.monotonic() - run.started > limits.timeout_s:
        run.end = "timeout"
        return False
    ids, obs = fmt.layout(obs, isinstance(run.example.prompt, list), run.last_finish == "stop")
    if limits.max_tokens is not None and len(run.ids) + len(ids) + max_new > limits.max_tokens:
        run.end = "max_tokens"
        return False
    run.add("observation", obs, ids)
    return True


def _completion(run: _Run, timeout_s: float | None) -> Completion:
    grade: Grade | None = None
    found: Any = None
    answer = run.transcript[-1].text if run.transcript else ""
    if run.episode is not None and run.end != "env_error":
        answer = _guarded(run, run.episode.answer, timeout_s) or ""
        grade = _guarded(run, run.episode.grade, timeout_s)
        answer_turn = getattr(run.episode, "answer_turn", None)  # optional (rft.envs.base.Episode)
        if answer_turn is not None:  # a metric's helper: its failure neither ends nor zeroes the episode
            end, error = run.end, run.error
            found = _guarded(run, answer_turn, timeout_s)
            run.end, run.error = end, error
    if run.end == "env_error":
        grade = Grade(0.0, False, f"environment error: {run.error}",
                      {"error": run.error.partition(":")[0], "env_error": run.error})
    turns = sum(m.role == "assistant" for m in run.transcript)
    found = found if isinstance(found, int) and not isinstance(found, bool) and 1 <= found <= turns else None
    record = EpisodeRecord(tuple(run.transcript), run.end or "answer", tuple(run.mask), run.error, grade, found)
    return Completion(run.ids, answer, run.last_finish, record)  # type: ignore[arg-type]


def model_ids(c: Completion) -> list[int]:
    """The ids the model wrote (an episode's observations left out): what lengths and repetition count."""
    if c.episode is None:
        return c.token_ids
    return [t for t, m in zip(c.token_ids, c.episode.loss_mask) if m]


def with_own_grades(completions: list[Completion], grades: list[Grade],
                    pool: GraderPool | None = None) -> list[Grade]:
    """The pool's grades, replaced by the episode's own where it has one (a self-grading episode, an
    environment error). An own grade passes the same score gate as the pool's
    (:func:`rft.graders.base.checked`: a NaN, inf or non-number ``get_reward()`` scores 0 with the
    error) and is counted in ``pool``'s statistics (when given) as grader type ``environment``."""
    out = []
    for c, g in zip(completions, grades):
        if c.episode is not None and c.episode.grade is not None:
            g = checked(c.episode.grade)
            if pool is not None:
                pool.count("environment", g)
        out.append(g)
    return out

