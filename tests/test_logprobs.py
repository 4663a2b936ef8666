import pytest
import torch

from rft.grpo.logprobs import build_token_batch, completion_logprobs, length_buckets
from rft.models.load import load_model, load_tokenizer

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels


def _plain_logprobs(model, batch):
    """The textbook computation: one forward over the whole padded batch, full log-softmax."""
    pos = (batch.attention_mask_BL.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=batch.input_ids_BL, attention_mask=batch.attention_mask_BL, position_ids=pos).logits
    P = batch.prompt_width
    logp = torch.log_softmax(logits[:, P - 1 : -1].float(), -1)
    return logp.gather(-1, batch.completion_ids_BC[..., None]).squeeze(-1) * batch.completion_mask_BC


def _batch(tok, G=3):
    prompts = [tok(p)["input_ids"] for p in ["1+2=", "47+38=", "9="]]
    gen = torch.Generator().manual_seed(0)
    rows, comps = [], []
    for p in prompts:  # G rows per prompt (shared prefix), completions of varied lengths (1..14)
        for _ in range(G):
            n = int(torch.randint(1, 15, (1,), generator=gen))
            rows.append(p)
            comps.append(torch.randint(4, 60, (n,), generator=gen).tolist())
    comps[0] = comps[0][:1]
    return build_token_batch(rows, comps, tok.pad_token_id)


def test_shared_prefix_bucketed_logprobs_and_gradients_equal_one_plain_forward(varied_model_dir):
    model, tok = load_model(varied_model_dir), load_tokenizer(varied_model_dir)
    model.eval()
    batch = _batch(tok)
    ours, _ = completion_logprobs(model, batch)
    ours.sum().backward()
    g_ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    ref = _plain_logprobs(model, batch)
    ref.sum().backward()
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()
    for a, b in zip(g_ours, [p.grad for p in model.parameters()]):
        assert (a - b).norm() <= 1e-4 * b.norm() + 1e-6, ((a - b).norm(), b.norm())  # equal up to fp32 rounding


def test_temperature_and_entropy_match_the_plain_computation(tiny_model_dir):
    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    model.eval()
    batch = _batch(tok, G=2)
    with torch.no_grad():
        logp, ent = completion_logprobs(model, batch, temperature=0.7, with_entropy=True)
        pos = (batch.attention_mask_BL.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=batch.input_ids_BL, attention_mask=batch.attention_mask_BL, position_ids=pos).logits
        lp = torch.log_softmax(logits[:, batch.prompt_width - 1 : -1] / 0.7, -1)
        m = batch.completion_mask_BC
        want = lp.gather(-1, batch.completion_ids_BC[..., None]).squeeze(-1) * m
        want_ent = -(lp.exp() * lp).sum(-1) * m
    assert torch.allclose(logp, want, atol=1e-5)
    assert torch.allclose(ent, want_ent, atol=1e-5)


def test_length_buckets_cover_every_row_once_and_bound_padding():
    lengths = [16] * 50 + [3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12, 13, 14, 15]
    buckets = length_buckets(lengths, min_rows=4)
    assert sorted(i for b in buckets for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in buckets for i in b]
    assert flat == sorted(flat) and len(buckets) > 1
    for b in buckets:  # past its first min_rows rows a bucket holds at most 1.25x its shortest length
        assert all(lengths[i] <= 1.25 * lengths[b[0]] for i in b[4:])
    assert sum(all(lengths[i] == 16 for i in range(50)) and set(range(50)) <= set(b) for b in buckets) == 1
    assert length_buckets([16] * 64) == [list(range(64))]


class _Wrapper(torch.nn.Module):
    """A module around the model without a ``config`` (like a DDP wrapper): the plain one-forward path."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, **kwargs):
        return self.module(**kwargs)


def test_plain_path_for_wrapped_models_gives_the_same_logprobs(tiny_model_dir):
    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    batch = _batch(tok)
    with torch.no_grad():
        shared, _ = completion_logprobs(model, batch)
        plain, _ = completion_logprobs(_Wrapper(model), batch)
    m = batch.completion_mask_BC
    assert torch.allclose(shared, plain * m, atol=1e-5)


def test_chunked_head_matches_full_logits_in_value_entropy_and_gradients(monkeypatch):
    """HeadLogprobs over several chunks equals log_softmax of the full logits, gradients included
    (h, W and b), at a temperature; float64 so that only a wrong formula can differ."""
    import rft.grpo.logprobs as lp

    monkeypatch.setattr(lp, "HEAD_CHUNK_ELEMENTS", 3 * 11)  # 3 tokens of an 11-token vocabulary per chunk
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(10, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(11, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(11, dtype=torch.float64, generator=gen, requires_grad=True)
    t = torch.randint(0, 11, (10,), generator=gen)
    g = torch.randn(10, dtype=torch.float64, generator=gen)
    logp, ent = lp.HeadLogprobs.apply(h, w, b, t, 0.7, True)
    (logp * g).sum().backward()
    ours = [x.grad.clone() for x in (h, w, b)]
    for x in (h, w, b):
        x.grad = None
    full = torch.log_softmax((h @ w.T + b) / 0.7, -1)
    want = full.gather(-1, t[:, None]).squeeze(-1)
    (want * g).sum().backward()
    assert torch.allclose(logp.double(), want, atol=1e-6)
    assert torch.allclose(ent.double(), -(full.exp() * full).sum(-1), atol=1e-6)
    for a, x in zip(ours, (h, w, b)):
        assert torch.allclose(a, x.grad, atol=1e-10), (a - x.grad).abs().max()


def test_chunked_head_passes_gradcheck():
    from rft.grpo.logprobs import HeadLogprobs

    gen = torch.Generator().manual_seed(1)
    h = torch.randn(4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(6, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    t = torch.randint(0, 6, (4,), generator=gen)
    assert torch.autograd.gradcheck(lambda h, w: HeadLogprobs.apply(h, w, None, t, 1.3, False)[0], (h, w))


def test_split_model_only_for_architectures_whose_head_is_plain(tiny_model_dir):
    from rft.models.split import split_model

    model = load_model(tiny_model_dir)
    split = split_model(model)
    assert split is not None and split.head is model.lm_head and split.body is model.model
    assert split_model(_Wrapper(model)) is None
