import torch

from rft.grpo.logprobs import build_token_batch, completion_logprobs, length_buckets
from rft.models.load import load_model, load_tokenizer


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
