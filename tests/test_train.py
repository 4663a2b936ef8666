"""GRPO end to end on the tiny model: a smoke test of the run directory, and resume equivalence."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rft.config import config_from_dict
from rft.console import Console
from rft.grpo.train import train
from rft.training.sft import sft

QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def one_digit_warm_start(tmp_path_factory, tiny_model_dir):
    """A quick SFT on 1-digit addition with half the carry labels sloppy: samples are mixed right
    and wrong, so GRPO groups carry a learning signal."""
    out = tmp_path_factory.mktemp("warm")
    cfg = config_from_dict({
        "name": "warm", "output_dir": str(out), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"task": {"digits": 1, "sloppy_rate": 0.5, "val_size": 20}},
        "sampling": {"max_new_tokens": 3},
        "sft": {"steps": 250, "batch_size": 32, "lr": 2e-3, "warmup_steps": 20, "eval_every": 250},
    })
    return sft(cfg, console=QUIET).model_dir


def _cfg(tmp_path, model_dir, **grpo):
    return config_from_dict({
        "name": "smoke", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(model_dir)},
        "data": {"task": {"digits": 1, "val_size": 20}},
        # T=1.3 and 8 prompts a step: the warm start is confident on most prompts (about 85% of its
        # groups have equal rewards at T=1), and every step must carry some learning signal
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": 4, "prompts_per_step": 8, "lr": 1e-3, **grpo},
        "eval": {"every": 2}, "checkpoint": {"every": 2, "keep_last": 1},
    })


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith("time/") and k not in ("step_s", "completion_tokens_per_s")
             and not k.endswith("latency_ms")} for r in rows]


def test_smoke_grpo_writes_a_complete_run_directory(tmp_path, one_digit_warm_start):
    result = train(_cfg(tmp_path, one_digit_warm_start, beta=0.04, num_iterations=2), console=QUIET)
    run = result.run_dir
    assert (run / "config.yaml").is_file()
    train_rows = [r for r in _metrics(run) if r["type"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for key in ["reward_mean", "reward_std", "frac_zero_std_groups", "completion_len_mean", "completion_len_max",
                "truncated_frac", "kl", "entropy", "grad_norm", "lr", "clip_frac", "loss", "grader/arithmetic/mean"]:
        assert key in train_rows[0], key
    raw = json.loads((run / "metrics.jsonl").read_text().splitlines()[1])
    for phase in ["rollout", "grade", "advantages", "ref_logprobs", "update"]:
        assert raw[f"time/{phase}"] >= 0
    assert raw["completion_tokens_per_s"] > 0
    assert [r["step"] for r in _metrics(run) if r["type"] == "val"] == [0, 2, 4]
    assert (run / "samples" / "step_000002.jsonl").is_file()
    ckpts = run / "checkpoints"
    assert (ckpts / "latest").read_text().strip() == "step_000004"
    assert not (ckpts / "step_000002").exists()  # keep_last=1 pruned it
    for f in ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "trainer_state.json", "tokenizer.json"]:
        assert (ckpts / "step_000004" / f).is_file(), f
    # What was sampled depends on the CPU's float kernels (AMX, AVX-512, AVX2 sample differently), so a
    # step may or may not carry signal; what the code guarantees is how a step treats the signal it has.
    for r in train_rows:
        if r["frac_zero_std_groups"] < 1:  # some group's rewards differ: the update must be applied
            assert r["update_skipped"] == 0 and r["grad_norm"] > 0, r
        if r["update_skipped"]:  # only a step with no advantage and the policy at the reference is skipped
            assert r["frac_zero_std_groups"] == 1 and r["grad_norm"] == 0, r


def test_resume_continues_exactly_like_the_straight_run(tmp_path, one_digit_warm_start):
    straight = train(_cfg(tmp_path / "a", one_digit_warm_start, steps=4), console=QUIET)
    half = _cfg(tmp_path / "b", one_digit_warm_start, steps=4)
    first = train(half.model_copy(update={"grpo": half.grpo.model_copy(update={"steps": 2})}), console=QUIET)
    # The config on disk says steps=2; resume the same directory with the full step budget.
    (first.run_dir / "config.yaml").write_text(half.to_yaml())
    resumed = train(half, resume=first.run_dir, console=QUIET)
    assert resumed.steps == 4
    assert _metrics(straight.run_dir) == _metrics(resumed.run_dir)
    a = load_file(straight.run_dir / "checkpoints" / "step_000004" / "model.safetensors")
    b = load_file(resumed.run_dir / "checkpoints" / "step_000004" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    w0 = load_file(one_digit_warm_start / "model.safetensors")
    # Whether any step carried signal depends on what this CPU's kernels sampled; that an applied update
    # moves the weights, and a run of skipped ones does not, holds on every CPU.
    updated = any(not r["update_skipped"] for r in _metrics(straight.run_dir) if r["type"] == "train")
    assert any(not torch.equal(a[k], w0[k]) for k in a) == updated


def test_existing_run_directory_is_not_overwritten_silently(tmp_path, one_digit_warm_start):
    cfg = _cfg(tmp_path, one_digit_warm_start, steps=1)
    train(cfg, console=QUIET)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, console=QUIET)


def test_until_ends_the_run_after_the_step_it_says_validated_and_checkpointed(tmp_path, one_digit_warm_start):
    seen = []

    def until(step_s):
        seen.append(step_s)
        return len(seen) == 3

    result = train(_cfg(tmp_path, one_digit_warm_start, steps=10), console=QUIET, until=until)
    assert result.steps == 3 and len(seen) == 3 and all(t > 0 for t in seen)
    assert [r["step"] for r in _metrics(result.run_dir) if r["type"] == "val"] == [0, 2, 3]
    assert (result.run_dir / "checkpoints" / "latest").read_text().strip() == "step_000003"


def test_a_time_limit_stops_before_a_step_and_the_final_validation_would_overrun(monkeypatch):
    import rft.grpo.train as tr

    monkeypatch.setattr(tr.time, "monotonic", lambda: 100.0)
    assert not tr.out_of_time(None, 1e9, 1e9)
    assert not tr.out_of_time(110.0, 6.0, 3.0)  # 100 + 6 + 3 = 109 fits in the 110 deadline
    assert tr.out_of_time(110.0, 6.0, 5.0)  # 111 would not: this step is the last, validated now


def test_phase_timers_wait_for_queued_cuda_work(monkeypatch):
    """CUDA kernels finish after the launching call returns: a phase's timer synchronises before it
    starts and before it stops, so that its kernels are charged to it and not to a later phase."""
    import rft.console as train_mod

    events = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: events.append("sync"))
    times = {}
    with train_mod.timed(times, "update"):
        events.append("work")
    assert events == ["sync", "work", "sync"]
    assert times["time/update"] >= 0


def test_phase_timers_do_not_touch_cuda_when_it_was_never_initialised(monkeypatch):
    import rft.console as train_mod

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: pytest.fail("synchronised without CUDA"))
    with train_mod.timed({}, "rollout"):
        pass


def test_the_step_record_counts_everything_sampled_and_the_training_groups_apart():
    """Policy statistics over every sampled group (a group dynamic sampling dropped included); the
    dynamic counts from the training groups. Hand-computed values."""
    from rft.data import Example
    from rft.graders.base import Grade
    from rft.grpo.groups import Group
    from rft.grpo.train import step_record
    from rft.rollout.base import Completion

    def group(i, scores, lengths, finish=("stop", "stop")):
        return Group(Example(id=str(i), prompt="p"), [Completion([7] * n, "x", f) for n, f in zip(lengths, finish)],
                     [Grade(s, s == 1.0) for s in scores])

    kept = group(0, [1.0, 0.0], [2, 4], ("stop", "length"))
    dropped = group(1, [0.0, 0.0], [1, 1])
    record = step_record(3, [kept], [kept, dropped], 2, step_s=2.0, repetition_ngram=4, dynamic_sampling=True,
                         update={"loss": 0.5}, times={"time/rollout": 1.0}, grader_stats={"grader/math/count": 4})
    assert record["type"] == "train" and record["step"] == 3
    assert record["reward_mean"] == 0.25 and record["reward_std"] == pytest.approx(0.5)  # sample std of 1,0,0,0
    assert record["frac_zero_std_groups"] == 0.5
    assert record["completion_len_mean"] == 2.0 and record["completion_len_max"] == 4.0
    assert record["truncated_frac"] == 0.25 and record["completion_tokens_per_s"] == 4.0
    assert record["dynamic/groups_sampled"] == 2 and record["dynamic/groups_with_signal"] == 1
    assert record["loss"] == 0.5 and record["time/rollout"] == 1.0 and record["grader/math/count"] == 4
    no_dynamic = step_record(3, [kept], [kept], 2, 2.0, 4, False, {}, {}, {})
    assert not any(k.startswith("dynamic/") for k in no_dynamic)


def test_sft_with_a_time_limit_stops_validated_and_saved(tmp_path, tiny_model_dir):
    """An equal-wall-time arm (bench/sql_arms.py): the clock, not sft.steps, ends the warm start."""
    cfg = config_from_dict({
        "name": "timed", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"task": {"digits": 1, "val_size": 4}}, "sampling": {"max_new_tokens": 3},
        "sft": {"steps": 10_000, "batch_size": 4, "eval_every": 10_000},
    })
    result = sft(cfg, console=QUIET, time_limit_s=0.0)
    assert result.steps == 1 and "val/pass@1" in result.val and (result.model_dir / "config.json").is_file()
