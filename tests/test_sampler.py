import pytest
import torch

from rft.models.load import load_model, load_tokenizer
from rft.rollout import SamplingParams, TorchSampler
from rft.rollout.sampler import filter_logits

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

PROMPTS = ["1+2=", "47+38=", "123+4=", "9=", "ab+cd=", "7*8=", "99+99=", "5-3="]


def _setup(path):
    model, tok = load_model(path), load_tokenizer(path)
    return model, tok, TorchSampler(model, tok), [tok(p)["input_ids"] for p in PROMPTS]


def test_greedy_matches_transformers_generate_with_left_padding_and_early_stops(varied_model_dir):
    model, tok, sampler, ids = _setup(varied_model_dir)
    ours = [g[0].token_ids for g in sampler.generate(ids, 1, SamplingParams(12, temperature=0.0))]
    reference = []
    for p in ids:  # one prompt at a time: no padding at all on the reference side
        out = model.generate(torch.tensor([p]), max_new_tokens=12, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        gen = out[0, len(p):].tolist()
        reference.append(gen[: gen.index(tok.eos_token_id) + 1] if tok.eos_token_id in gen else gen)
    assert ours == reference
    lengths = {len(t) for t in ours}
    assert len(lengths) > 1, "the fixture should give rows that stop at different steps"


def test_eos_ends_a_completion_and_sets_finish_reason(varied_model_dir):
    _, tok, sampler, ids = _setup(varied_model_dir)
    groups = sampler.generate(ids, 4, SamplingParams(12), torch.Generator().manual_seed(0))
    flat = [c for g in groups for c in g]
    assert any(c.finish_reason == "stop" for c in flat) and any(c.finish_reason == "length" for c in flat)
    for c in flat:
        if c.finish_reason == "stop":
            assert c.token_ids[-1] == tok.eos_token_id and tok.eos_token_id not in c.token_ids[:-1]
            assert "<eos>" not in c.text
        else:
            assert len(c.token_ids) == 12 and tok.eos_token_id not in c.token_ids


def test_fixed_seed_sampling_is_deterministic_and_seed_dependent(varied_model_dir):
    _, _, sampler, ids = _setup(varied_model_dir)
    params = SamplingParams(8, temperature=1.0)

    def run(seed):
        return [[c.token_ids for c in g] for g in sampler.generate(ids, 4, params, torch.Generator().manual_seed(seed))]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_groups_have_n_completions_per_prompt_in_order(tiny_model_dir):
    _, _, sampler, ids = _setup(tiny_model_dir)
    groups = sampler.generate(ids[:3], 5, SamplingParams(3), torch.Generator().manual_seed(0))
    assert [len(g) for g in groups] == [5, 5, 5]


def test_top_k_and_top_p_keep_the_most_likely_tokens():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, 2, 1.0)).tolist() == [[False, False, True, True]]
    # softmax ~ [0.64, 0.24, 0.09, 0.03]: top_p 0.7 keeps the first two (the second crosses 0.7)
    assert torch.isinf(filter_logits(logits, 0, 0.7)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, 0, 0.5)).tolist() == [[False, True, True, True]]


def test_sampling_leaves_the_model_mode_unchanged(tiny_model_dir):
    model, _, sampler, ids = _setup(tiny_model_dir)
    model.train()
    sampler.generate(ids[:2], 2, SamplingParams(2), torch.Generator().manual_seed(0))
    assert model.training


def test_sampling_an_eval_mode_policy_does_not_switch_its_modules(tiny_model_dir, monkeypatch):
    """A GRPO policy is in eval mode already: each mode switch walks every module, twice a rollout."""
    model, _, sampler, ids = _setup(tiny_model_dir)
    model.eval()

    def switched(mode=True):
        raise AssertionError(f"sampling switched an eval-mode model to train({mode})")

    monkeypatch.setattr(model, "train", switched)
    out = sampler.generate(ids[:2], 2, SamplingParams(2), torch.Generator().manual_seed(0))
    assert [len(g) for g in out] == [2, 2] and not model.training


def _seeded(sampler, ids, seeds, params):
    return [[c.token_ids for c in g] for g in sampler.generate(ids, 4, params, seeds=seeds)]


def test_per_group_seeds_make_a_group_independent_of_the_rest_of_the_batch(varied_model_dir):
    _, _, sampler, ids = _setup(varied_model_dir)
    params = SamplingParams(10, temperature=1.0)
    a, b, c = ids[1], ids[3], ids[4]  # different lengths: a is left-padded differently in each batch
    for seed in (0, 1, 7, 12345):
        alone = _seeded(sampler, [a], [seed], params)[0]
        assert _seeded(sampler, [a, b], [seed, 99], params)[0] == alone
        assert _seeded(sampler, [c, b, a], [5, 6, seed], params)[2] == alone
    # and the groups really are sampled: different seeds give different groups, rows within a group differ
    groups = [_seeded(sampler, [a], [s], params)[0] for s in (0, 1, 7, 12345)]
    assert len({str(g) for g in groups}) == 4
    assert len({tuple(r) for r in groups[0]}) > 1


def test_per_group_seeds_are_deterministic_and_checked(varied_model_dir):
    _, _, sampler, ids = _setup(varied_model_dir)
    params = SamplingParams(8, temperature=0.8, top_k=20, top_p=0.9)
    seeds = list(range(len(ids)))
    assert _seeded(sampler, ids, seeds, params) == _seeded(sampler, ids, seeds, params)
    with pytest.raises(ValueError, match="seeds"):
        sampler.generate(ids, 2, params, seeds=[1])


def test_per_group_seeds_sample_the_model_distribution(tiny_model_dir):
    """Inverse-CDF draws with the per-group streams match the softmax of the next-token logits."""
    model, _, sampler, ids = _setup(tiny_model_dir)
    p = ids[0]
    with torch.no_grad():
        probs = model(torch.tensor([p])).logits[0, -1].softmax(-1)
    groups = sampler.generate([p] * 50, 40, SamplingParams(1, temperature=1.0), seeds=list(range(50)))
    counts = torch.bincount(torch.tensor([c.token_ids[0] for g in groups for c in g]), minlength=probs.numel())
    expected = probs * counts.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())  # Pearson's test, df = V - 1
    df = probs.numel() - 1
    assert chi2 < df + 5 * (2 * df) ** 0.5, f"chi2 {chi2:.1f} with df {df}"
