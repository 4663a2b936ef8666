"""update_policy on the tiny model: a step without signal leaves model, optimizer and schedule as they
were; a step with advantages, or with the policy away from the reference under beta > 0, moves it."""

import pytest
import torch

from rft.config import GRPOConfig
from rft.grpo.logprobs import build_token_batch
from rft.grpo.loss import k3_kl
from rft.grpo.update import Batch, batch_logprobs, global_loss_norm, update_policy
from rft.models.load import load_model, load_tokenizer
from rft.training.distributed import Dist
from rft.training.optim import make_optimizer, make_scheduler

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

G = 4
ROUNDING = 4.8e-7  # the largest |ref - logp| measured at step 1 of a real run (policy == reference, float32)


@pytest.fixture()
def batch(tiny_model_dir):
    return _tiny_batch(tiny_model_dir)


def _tiny_batch(model_dir):
    """The tiny model and 4 groups of 4 completions (1 to 5 tokens) of 4 prompts."""
    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    gen = torch.Generator().manual_seed(0)
    prompts, completions = [], []
    for p in ["1+2=", "3+4=", "5+6=", "7+8="]:
        for j in range(G):
            prompts.append(tok(p)["input_ids"])
            completions.append(torch.randint(3, 15, (1 + (j + len(prompts)) % 5,), generator=gen).tolist())
    return model, build_token_batch(prompts, completions, tok.pad_token_id)


def _own_logprobs(model, tokens):
    return batch_logprobs(model, tokens, tokens.input_ids_BL.shape[0], 1.0)


def _reference_at_the_policy(model, tokens):
    """The reference's log-probs while it still equals the policy, as a second forward pass computes
    them: the policy's own, off by float rounding (alternating +-ROUNDING on completion tokens)."""
    own = _own_logprobs(model, tokens)
    sign = torch.ones_like(own)
    sign[:, 1::2] = -1.0
    return own + ROUNDING * sign * tokens.completion_mask_BC


def _step(model, tokens, adv_B, ref_BC, dist=None, **grpo):
    cfg = GRPOConfig(**{"lr": 1e-3, **grpo})
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = make_scheduler(optimizer, "linear", 2, 10)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    norm = global_loss_norm(Dist(), tokens, cfg.gradient_accumulation_steps, 5)
    out = update_policy(model, optimizer, scheduler, Batch(tokens, adv_B, ref_BC, norm), cfg, 1.0, dist)
    with torch.no_grad():
        moved = max(float((p - before[n]).abs().max()) for n, p in model.named_parameters())
    return out, moved, optimizer, scheduler


@pytest.mark.parametrize("grpo", [
    {"beta": 0.04},  # the case found: KL gradient of pure rounding, scaled by Adam to about +-lr
    {"beta": 0.04, "num_iterations": 2},
    {"beta": 0.0, "weight_decay": 0.1},  # no gradient at all; AdamW's decay alone would shrink every weight
], ids=["kl_at_the_reference", "two_iterations", "weight_decay_only"])
def test_a_step_without_advantage_at_the_reference_leaves_every_weight_unchanged(batch, grpo):
    model, tokens = batch
    ref = _reference_at_the_policy(model, tokens) if grpo["beta"] > 0 else None
    out, moved, optimizer, scheduler = _step(model, tokens, torch.zeros(16), ref, **grpo)
    assert moved == 0.0
    assert out["update_skipped"] == 1.0
    assert not optimizer.state, "Adam's moments and step count stay as they were"
    assert scheduler.last_epoch == 0 and out["lr"] == pytest.approx(5e-4)  # warm-up not advanced


def test_a_step_with_advantages_moves_the_weights(batch):
    model, tokens = batch
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5] * 4)
    out, moved, optimizer, scheduler = _step(model, tokens, adv, _reference_at_the_policy(model, tokens), beta=0.04)
    assert moved > 1e-4 and out["update_skipped"] == 0.0
    assert optimizer.state and scheduler.last_epoch == 1


def test_a_step_without_advantage_away_from_the_reference_pulls_the_policy_back(batch):
    """Once the policy has left the reference, the KL term's gradient is real: the step is taken and
    lowers the KL (a small lr: Adam's steps are about lr whatever the gradient's size, and at 1e-3
    they overshoot a 0.05-nat gap)."""
    model, tokens = batch
    mask = tokens.completion_mask_BC
    ref = (_own_logprobs(model, tokens) - 0.05) * mask  # a reference 0.05 nats below on every token
    kl_before = float((k3_kl(_own_logprobs(model, tokens), ref) * mask).sum() / mask.sum())
    out, moved, _, _ = _step(model, tokens, torch.zeros(16), ref, beta=0.04, lr=1e-5)
    kl_after = float((k3_kl(_own_logprobs(model, tokens), ref) * mask).sum() / mask.sum())
    assert moved > 0 and out["update_skipped"] == 0.0
    assert kl_after < kl_before


def test_the_skip_is_decided_with_the_other_ranks(batch):
    """``Dist.any`` combines this rank's 'has signal' with the other ranks': when another rank holds
    the advantages, this one steps too, or the replicas would drift apart."""
    model, tokens = batch
    seen = []

    class AnotherRankHasSignal(Dist):
        def any(self, flag: bool) -> bool:  # the first question is the signal's; then the update gate's
            seen.append(flag)
            return True if len(seen) == 1 else flag

    out, moved, _, _ = _step(model, tokens, torch.zeros(16), _reference_at_the_policy(model, tokens),
                             dist=AnotherRankHasSignal(), beta=0.04)
    assert seen == [False, False]  # this rank's own decisions: no signal, a finite loss and gradient
    assert moved > 0 and out["update_skipped"] == 0.0


def test_a_non_finite_loss_on_another_rank_skips_this_ranks_update_too(batch):
    """The update gate's decision is taken together (``Dist.any``): when another rank's loss is NaN,
    this rank does not step either, or the replicas would drift apart."""
    model, tokens = batch

    class AnotherRankIsNonFinite(Dist):
        def any(self, flag: bool) -> bool:
            return True

    out, moved, optimizer, _ = _step(model, tokens, torch.tensor([1.0, -1.0, 0.5, -0.5] * 4), None,
                                     dist=AnotherRankIsNonFinite())
    assert moved == 0.0 and not optimizer.state and out["update_skipped_nonfinite"] == 1.0


# -- in the loop ------------------------------------------------------------------------------------
import json  # noqa: E402

from safetensors.torch import load_file  # noqa: E402

from rft.config import config_from_dict  # noqa: E402
from rft.console import Console  # noqa: E402
from rft.grpo.train import train  # noqa: E402


def test_a_run_without_signal_ends_with_the_weights_it_started_with(tmp_path, tiny_model_dir):
    """The case found: beta > 0, a grader that pays the same for everything; 7 samples per prompt
    (the float32 mean of 7 equal rewards is not exact) and a KL gradient of rounding at step 1."""
    cfg = config_from_dict({
        "name": "flat", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"task": {"digits": 1, "val_size": 4}},
        "grader": {"type": "python", "source": "def grade(sample, item):\n    return 0.99"},
        "sampling": {"num_generations": 7, "max_new_tokens": 4},
        "grpo": {"steps": 2, "prompts_per_step": 2, "lr": 1e-3, "beta": 0.04, "warmup_steps": 2},
        "eval": {"every": 100}, "checkpoint": {"every": 2}, "monitors": {"enabled": False},
    })
    run = train(cfg, console=Console(quiet=True)).run_dir
    start = load_file(tiny_model_dir / "model.safetensors")
    end = load_file(run / "checkpoints" / "step_000002" / "model.safetensors")
    assert all(torch.equal(start[k], end[k]) for k in start)
    steps = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["type"] == "train"]
    assert [r["update_skipped"] for r in steps] == [1.0, 1.0]
    assert [r["lr"] for r in steps] == [5e-4, 5e-4]  # warm-up waits for the first real update


# -- two gloo ranks ---------------------------------------------------------------------------------
import os  # noqa: E402
import socket  # noqa: E402
from datetime import timedelta  # noqa: E402

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def _rank_update(rank, port, model_dir, out_dir):
    """One rank of two: rank 0's share of the batch has no signal, rank 1's has."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=60))  # fail, not hang
    ctx = Dist(rank=rank, world_size=2)
    model, tokens = _tiny_batch(model_dir)
    share = tokens.select(slice(8 * rank, 8 * rank + 8))
    adv = torch.zeros(8) if rank == 0 else torch.tensor([1.0, -1.0, 0.5, -0.5] * 2)
    cfg = GRPOConfig(lr=1e-3)
    optimizer = make_optimizer(model, cfg.lr, 0.0)
    scheduler = make_scheduler(optimizer, "constant", 0, 10)
    out = update_policy(model, optimizer, scheduler, Batch(share, adv, None, global_loss_norm(ctx, share, 1, 5)), cfg,
                        1.0, ctx)
    torch.save({"out": out, "weights": {n: p.detach() for n, p in model.named_parameters()}}, f"{out_dir}/{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_step_together_when_only_one_holds_the_signal(tmp_path, tiny_model_dir):
    """Rank 0 alone would skip; it must step with rank 1 (a skip on one rank only would leave it
    waiting in the gradient sum, and the replicas would differ)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_update, args=(port, str(tiny_model_dir), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=False) for r in (0, 1))
    start = load_model(tiny_model_dir).state_dict()
    assert r0["out"]["update_skipped"] == r1["out"]["update_skipped"] == 0.0
    assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in r0["weights"])
    assert max(float((r0["weights"][k] - start[k]).abs().max()) for k in r0["weights"]) > 1e-4
