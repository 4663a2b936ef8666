"""DAPO dynamic sampling: groups with equal rewards are dropped and the batch is refilled."""

import json
from types import SimpleNamespace

from rft.config import config_from_dict
from rft.console import Console
from rft.data import Example, PromptCursor
from rft.graders.base import Grade
from rft.grpo.groups import GroupSampler
from rft.grpo.train import train
from rft.rollout.base import Completion, SamplingParams
from rft.training.distributed import Dist

G = 4


class FakeSampler:
    """Completion j of prompt p is the text 'p:j'; records every prompt batch it was asked for."""

    def __init__(self):
        self.calls: list[list[int]] = []

    def generate(self, prompts, n, params, generator=None, seeds=None):
        self.calls.append([p[0] for p in prompts])
        return [[Completion([p[0], j], f"{p[0]}:{j}", "stop") for j in range(n)] for p in prompts]


class FakePool:
    """Prompt p has reward variance iff p % 4 == 0 (one right answer in its group); others all 0."""

    def submit(self, texts, examples):  # the rollout without dynamic sampling submits, then waits
        return SimpleNamespace(wait=lambda: self.grade(texts, examples))

    def grade(self, texts, examples):
        out = []
        for t in texts:
            p, j = map(int, t.split(":"))
            out.append(Grade(1.0 if p % 4 == 0 and j == 0 else 0.0, p % 4 == 0 and j == 0))
        return out


def _groups_of(sampler, pool, dynamic: bool, rounds: int = 3, want: int = 4) -> GroupSampler:
    cfg = config_from_dict({"sampling": {"num_generations": G},
                            "grpo": {"prompts_per_step": want, "dynamic_sampling": dynamic, "max_refill_rounds": rounds}})
    train_set = [Example(id=str(i), prompt=f"p{i}") for i in range(64)]
    return GroupSampler(sampler, pool, train_set, {e.id: [int(e.id)] for e in train_set}, IdentityCursor(64, 0),
                        SamplingParams(3), G, cfg.grpo, cfg.seed, Dist())


class IdentityCursor(PromptCursor):
    """Prompts in order 0, 1, 2, ... so the test knows which ones carry signal."""

    def _order(self):
        return list(range(self.size))


def _run(dynamic, rounds=3, want=4):
    sampler = FakeSampler()
    groups, sampled = _groups_of(sampler, FakePool(), dynamic, rounds, want).rollout(1, {}).wait()
    return groups, sampled, sampler.calls


def test_without_dynamic_sampling_the_batch_is_the_first_prompts_whatever_their_signal():
    groups, sampled, calls = _run(dynamic=False)
    assert [g.example.id for g in groups] == ["0", "1", "2", "3"]
    assert groups == sampled and calls == [[0, 1, 2, 3]]
    assert [g.has_signal for g in groups] == [True, False, False, False]


def test_dynamic_sampling_refills_with_fresh_prompts_until_every_group_has_signal():
    groups, sampled, calls = _run(dynamic=True)
    # round 1: 4 prompts, 1 with signal (share 1/4) -> ask for 3 / (1/4) = 12 more: prompts 4..15
    assert calls == [[0, 1, 2, 3], list(range(4, 16))]
    assert [g.example.id for g in groups] == ["0", "4", "8", "12"]
    assert all(g.has_signal for g in groups) and len(sampled) == 16
    for g in groups:  # each group keeps its own completions and grades, in order
        assert [c.text for c in g.completions] == [f"{g.example.id}:{j}" for j in range(G)]
        assert [gr.score for gr in g.grades] == [1.0, 0.0, 0.0, 0.0]


def test_a_batch_still_short_after_the_last_round_is_topped_up_with_dropped_groups():
    groups, sampled, calls = _run(dynamic=True, rounds=0)
    assert calls == [[0, 1, 2, 3]]
    assert [g.example.id for g in groups] == ["0", "1", "2", "3"]  # signal first, then the dropped ones
    assert len(groups) == 4


def test_a_refill_round_never_asks_for_more_than_four_batches():
    class NoSignal(FakePool):
        def grade(self, texts, examples):
            return [Grade(0.0, False) for _ in texts]

    sampler = FakeSampler()
    groups, sampled = _groups_of(sampler, NoSignal(), True, rounds=2, want=4).rollout(1, {}).wait()
    assert [len(c) for c in sampler.calls] == [4, 16, 16]
    assert len(groups) == 4 and len(sampled) == 36 and not any(g.has_signal for g in groups)


def test_grpo_with_dynamic_sampling_trains_on_groups_with_signal(tmp_path, tiny_model_dir):
    """On the raw tiny model almost every group is all-wrong; dynamic sampling logs how many groups it
    sampled and the training batch holds the groups with signal it found."""
    cfg = config_from_dict({
        "name": "dyn", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"task": {"digits": 1, "val_size": 8}},
        "grader": {"type": "python", "source": "def grade(sample, item):\n    return float(sample['output_text'].startswith('1'))\n"},
        "sampling": {"num_generations": 4, "max_new_tokens": 2, "temperature": 1.0},
        "grpo": {"steps": 2, "prompts_per_step": 4, "dynamic_sampling": True, "max_refill_rounds": 2},
        "eval": {"every": 2}, "report_to": [],
    })
    run = train(cfg, console=Console(quiet=True)).run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["type"] == "train"]
    assert len(train_rows) == 2
    for r in train_rows:
        assert r["dynamic/groups_sampled"] >= 4
        assert 0 <= r["dynamic/groups_with_signal"] <= 4
        # the batch has signal whenever enough was sampled: with a share of 1 - frac_zero groups carrying
        # signal among everything sampled, the kept count is that share times the sampled count, capped
        with_signal_sampled = round((1 - r["frac_zero_std_groups"]) * r["dynamic/groups_sampled"])
        assert r["dynamic/groups_with_signal"] == min(4, with_signal_sampled)
