"""Data-parallel GRPO under torchrun (gloo, CPU): 2 ranks end where 1 process ends, only rank 0
writes, resume works, FSDP shards and steps. Runs the real CLI in subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from rft.config import ConfigError, config_from_dict
from rft.training.distributed import Dist, group_seeds, init_distributed

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "rft.cli", "train"]
SINGLE = [sys.executable, "-m", "rft.cli", "train"]


def _config(tmp_path: Path, model_dir: Path, name: str, **grpo) -> Path:
    """Random tiny model, fuzzy-match reward on 1-digit sums: continuous rewards, so every group
    carries signal and every step moves the weights."""
    raw = {
        "name": name, "output_dir": str(tmp_path), "seed": 3, "threads": 1, "report_to": ["tensorboard"],
        "model": {"path": str(model_dir)},
        "data": {"task": {"digits": 1, "val_size": 8}},
        "grader": {"type": "text_similarity", "input": "{{ sample.output_text }}", "reference": "{{ item.answer }}",
                   "evaluation_metric": "fuzzy_match"},
        "sampling": {"num_generations": 4, "max_new_tokens": 4, "temperature": 1.0},
        "grpo": {"steps": 3, "prompts_per_step": 4, "lr": 3e-3, "beta": 0.04, "scale_rewards": "batch", **grpo},
        "eval": {"every": 100}, "checkpoint": {"every": 2, "keep_last": 2},
        "monitors": {"enabled": False},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(cmd: list[str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd + list(args) + ["--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _train_records(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["type"] == "train"]


LR = 3e-3  # _config's grpo.lr


def _adam_first_moments(run_dir: Path, ckpt: str) -> list[torch.Tensor]:
    """AdamW's exp_avg of every trained parameter, in the model's parameter order (a replicated run's
    optimizer.pt is keyed by index, an FSDP run's gathered one by name)."""
    opt = torch.load(run_dir / "checkpoints" / ckpt / "optimizer.pt", weights_only=False)
    return [opt["state"][key]["exp_avg"] for key in opt["param_groups"][0]["params"]]


def _assert_same_update(run: Path, ref: Path, ckpt: str, moved_from: dict[str, torch.Tensor] | None = None) -> None:
    """``run`` took the optimizer steps ``ref`` took, up to float32 summation order.

    Why not to a fixed count of elements: two ranks each multiply their half of the batch into a
    partial gradient and gloo adds the two; one process sums all rows in one GEMM. Both are float32
    sums in a different order (the gradients agree to 3e-7 of their norm; the last bits of 92% of the
    elements differ), and how MKL/oneDNN block the sum depends on the CPU (AMX/avx512 here). That
    alone would be invisible in the weights, but AdamW's step is lr * m / (sqrt(v) + eps): where an
    element's gradient is near eps (1e-8; 89 of the tiny model's 452,640 are under 1e-7 at step 1)
    the step is a fraction of lr proportional to the gradient, and a rounding difference of 1e-10
    moves it visibly. Measured on this machine, three steps at lr 3e-3: Adam applied to the dumped
    gradients of both runs predicts every step-1 difference exactly (38 elements beyond 1e-6, the
    largest 1.7e-5, all with |gradient| of 5e-9 .. 7e-8); later steps add a few (60 beyond 1e-6
    after 3 steps; under FSDP's reduce-scatter one element 1.9e-4, 6% of lr). How many elements
    happen to sit near eps depends on the data and the CPU, so a count of them is no criterion.

    What is checked instead, each scaled by what it measures:

    * the gradients, through Adam's first moment (a decaying sum of the summed gradients, with no
      division): per parameter ``|m_run - m_ref| <= 1e-3 |m_ref|``. Measured up to 3e-5; a gradient
      that is wrong (a rank's share missing, a sum not divided as the single process divides, a
      missing all-reduce) is off by a factor of order 1. This is the check that sees a wrong scale:
      Adam normalises each gradient by its own RMS, so a gradient twice as large moves the weights
      almost exactly as the right one does.
    * the weights, against Adam's own scale: no element further apart than 2 * lr * steps (Adam
      moves an element by at most about lr per step, so two runs cannot be further apart than two
      opposite moves per step), and the root-mean-square difference under 1e-2 * lr * steps
      (measured up to 1e-4 of it; a rank that trains on its share alone, its replica drifting, is
      apart by about lr per step on most elements).
    """
    fname = "model.safetensors" if (run / "checkpoints" / ckpt / "model.safetensors").exists() \
        else "adapter_model.safetensors"
    a, b = (load_file(r / "checkpoints" / ckpt / fname) for r in (run, ref))
    steps = int(ckpt.split("_")[1])
    assert a.keys() == b.keys()
    diff = torch.cat([(a[k] - b[k]).double().flatten() for k in a])
    assert float(diff.abs().max()) <= 2 * LR * steps, f"an element {float(diff.abs().max()):.2e} apart"
    rms = float(diff.pow(2).mean().sqrt())
    assert rms <= 1e-2 * LR * steps, f"weights {rms:.2e} apart (RMS), {rms / (LR * steps):.1e} of lr * steps"
    m_run, m_ref = _adam_first_moments(run, ckpt), _adam_first_moments(ref, ckpt)
    assert len(m_run) == len(m_ref)
    for i, (x, y) in enumerate(zip(m_run, m_ref)):
        assert x.shape == y.shape, f"parameter {i}: Adam's state {tuple(x.shape)}, expected {tuple(y.shape)}"
        gap = float((x - y).double().norm() / y.double().norm().clamp_min(1e-30))
        assert gap <= 1e-3, f"parameter {i}: Adam's first moment {gap:.1e} of its norm apart"
    if moved_from is not None:  # the comparison is not vacuous: training changed the weights
        assert max(float((a[k] - moved_from[k]).abs().max()) for k in a) > 1e-3


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory, tiny_model_dir):
    """The same 3-step config, run by one process and by 2 gloo ranks under torchrun."""
    tmp = tmp_path_factory.mktemp("dist")
    _run(SINGLE, str(_config(tmp, tiny_model_dir, "one")))
    two = _run(TORCHRUN, str(_config(tmp, tiny_model_dir, "two")))
    return tmp / "one", tmp / "two", two


def test_two_gloo_ranks_end_with_the_single_process_weights_and_only_rank_0_writes(straight_runs, tiny_model_dir):
    run1, run2, _ = straight_runs
    start = load_file(Path(tiny_model_dir) / "model.safetensors")
    _assert_same_update(run2, run1, "step_000003", moved_from=start)

    # the records are those of the whole batch: the same rewards, and the same loss up to rounding
    r1, r2 = _train_records(run1), _train_records(run2)
    assert [r["step"] for r in r2] == [1, 2, 3]  # one line per step: rank 1 appended nothing
    for a, b in zip(r1, r2):
        for key in ["reward_mean", "reward_std", "frac_zero_std_groups", "completion_len_mean", "truncated_frac",
                    "grader/text_similarity/count", "grader/text_similarity/mean"]:
            assert a[key] == pytest.approx(b[key], abs=1e-9), key
        for key in ["loss", "kl", "entropy", "grad_norm", "clip_frac"]:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    # rank 0 alone wrote: one TensorBoard file, and the same files as the single process
    assert len(list(run2.rglob("events.out.tfevents.*"))) == 1
    files = lambda run: sorted(str(p.relative_to(run)) for p in run.rglob("*") if "tfevents" not in p.name)  # noqa: E731
    assert files(run2) == files(run1)


def test_resume_under_torchrun_ends_where_the_straight_run_ends(straight_runs, tiny_model_dir):
    _, run2, _ = straight_runs
    tmp = run2.parent
    _run(TORCHRUN, str(_config(tmp, tiny_model_dir, "halted", steps=2)))
    run = tmp / "halted"
    _run(TORCHRUN, "--resume", str(run), "--set", "grpo.steps=3")
    _assert_same_update(run, run2, "step_000003")
    assert [r["step"] for r in _train_records(run)] == [1, 2, 3]


def test_fsdp_on_two_gloo_ranks_shards_steps_and_matches_one_process(straight_runs, tiny_model_dir):
    run1, _, _ = straight_runs
    tmp = run1.parent
    _run(TORCHRUN, str(_config(tmp, tiny_model_dir, "fsdp", steps=2)), "--set", "distributed.fsdp=true")
    # the weights and the optimizer state, gathered whole from the shards, are the single process's
    _assert_same_update(tmp / "fsdp", run1, "step_000002")


# -- no processes needed ----------------------------------------------------------------------


def test_prompts_per_step_must_divide_by_the_world_size(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    cfg = config_from_dict({"grpo": {"prompts_per_step": 6}})
    with pytest.raises(ConfigError, match=r"grpo.prompts_per_step=6 does not divide by the 4 torchrun processes"):
        init_distributed(cfg)
    cfg = config_from_dict({"grpo": {"prompts_per_step": 8, "gradient_accumulation_steps": 4}})
    with pytest.raises(ConfigError, match=r"gradient_accumulation_steps=4 does not divide the 2 prompts"):
        init_distributed(cfg)


def test_one_process_without_torchrun_is_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed(config_from_dict({}))
    assert not ctx.enabled and ctx.is_main
    assert ctx.shard(6) == slice(0, 6) and ctx.gather([1, 2]) == [1, 2] and ctx.any(False) is False


def test_each_rank_takes_a_contiguous_share_of_whole_groups():
    shares = [list(range(12))[Dist(rank=r, world_size=3).shard(12)] for r in range(3)]
    assert shares == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError, match="do not split evenly"):
        Dist(rank=0, world_size=3).shard(4)
    assert Dist(world_size=4).round_up(5) == 8 and Dist(world_size=4).round_up(8) == 8


def test_group_seeds_depend_on_seed_step_and_index_only():
    a = group_seeds(0, 5, 0, 8)
    assert group_seeds(0, 5, 4, 4) == a[4:]  # rank 1's share is seeded as in the whole batch
    assert len(set(a)) == 8 and all(0 <= x < 2**63 for x in a)
    assert group_seeds(1, 5, 0, 8) != a and group_seeds(0, 6, 0, 8) != a


def test_dynamic_sampling_refills_the_same_way_on_two_ranks_as_in_one_process(tmp_path, tiny_model_dir):
    """Refill rounds are rounded up to whole shares of the world size: with a reward only some groups
    vary on, 2 ranks sample, keep and train on exactly the groups one process does."""
    grader = {"type": "python", "source": "def grade(sample, item):\n    return float(sample['output_text'][:1] in '13579')\n"}
    for name, cmd in [("dyn1", SINGLE), ("dyn2", TORCHRUN)]:
        path = _config(tmp_path, tiny_model_dir, name, steps=2, dynamic_sampling=True, max_refill_rounds=2)
        raw = yaml.safe_load(path.read_text())
        raw["grader"] = grader
        path.write_text(yaml.safe_dump(raw))
        _run(cmd, str(path))
    r1, r2 = _train_records(tmp_path / "dyn1"), _train_records(tmp_path / "dyn2")
    assert [r["step"] for r in r2] == [1, 2]
    for a, b in zip(r1, r2):
        for key in ["reward_mean", "frac_zero_std_groups", "dynamic/groups_sampled", "dynamic/groups_with_signal"]:
            assert a[key] == pytest.approx(b[key], abs=1e-9), key
    assert any(r["dynamic/groups_sampled"] > 4 for r in r1)  # a refill round ran: the test is not vacuous
    _assert_same_update(tmp_path / "dyn2", tmp_path / "dyn1", "step_000002")


def test_lora_on_two_gloo_ranks_ends_with_the_single_process_adapter(tmp_path, tiny_model_dir):
    """Only the adapter trains and is summed across ranks; the checkpoint is the adapter alone."""
    for name, cmd in [("lora1", SINGLE), ("lora2", TORCHRUN)]:
        path = _config(tmp_path, tiny_model_dir, name, steps=2)
        raw = yaml.safe_load(path.read_text())
        raw["model"]["lora"] = {"r": 4, "alpha": 8}
        path.write_text(yaml.safe_dump(raw))
        _run(cmd, str(path))
    ckpt = lambda run: tmp_path / run / "checkpoints" / "step_000002"  # noqa: E731
    assert (ckpt("lora2") / "adapter_model.safetensors").is_file()
    assert not (ckpt("lora2") / "model.safetensors").exists()
    _assert_same_update(tmp_path / "lora2", tmp_path / "lora1", "step_000002")
    a1 = load_file(ckpt("lora1") / "adapter_model.safetensors")
    assert max(float(t.abs().max()) for k, t in a1.items() if "lora_B" in k) > 1e-4  # B moved off its zero init
    for a, b in zip(_train_records(tmp_path / "lora1"), _train_records(tmp_path / "lora2")):
        assert a["kl"] == pytest.approx(b["kl"], rel=1e-4, abs=1e-8)
