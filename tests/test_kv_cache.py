import pytest
import torch
from transformers import DynamicCache

from rft.models.compat import cache_kwargs
from rft.models.load import load_model, load_tokenizer
from rft.rollout.kv_cache import SlabLayer, decode_cache

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels


def _decode(model, cache, ids, steps, keep=None):
    """Prefill ``ids``, repeat each row twice, then feed fixed tokens; optionally drop rows midway."""
    out = [model(input_ids=ids, **cache_kwargs(model, cache), use_cache=True).logits[:, -1]]
    cache.batch_repeat_interleave(2)
    rows = ids.repeat_interleave(2, 0)
    pos = torch.full((rows.shape[0], 1), ids.shape[1])
    for t in range(steps):
        if keep is not None and t == steps // 2:
            cache.batch_select_indices(keep)
            rows, pos = rows[keep], pos[keep]
        tok = (rows[:, :1] + t) % 50 + 4
        out.append(model(input_ids=tok, position_ids=pos, **cache_kwargs(model, cache), use_cache=True).logits[:, -1])
        pos = pos + 1
    return out


def test_slab_cache_decodes_like_dynamic_cache_through_repeat_and_row_drops(tiny_model_dir):
    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    ids = torch.tensor([tok("12+34=")["input_ids"], tok("56+78=")["input_ids"]])
    keep = torch.tensor([0, 2, 3])
    with torch.no_grad():
        slab = decode_cache(model, ids.shape[1] + 6)
        assert all(isinstance(layer, SlabLayer) for layer in slab.layers)
        ours = _decode(model, slab, ids, 6, keep)
        ref = _decode(model, DynamicCache(config=model.config), ids, 6, keep)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    assert slab.get_seq_length() == ids.shape[1] + 6


def test_slab_cache_refuses_to_overflow(tiny_model_dir):
    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    ids = torch.tensor([tok("12+34=")["input_ids"]])
    cache = decode_cache(model, ids.shape[1])
    with torch.no_grad():
        model(input_ids=ids, **cache_kwargs(model, cache), use_cache=True)
        with pytest.raises(RuntimeError, match="exceed"):
            model(input_ids=ids[:, :1], **cache_kwargs(model, cache), use_cache=True)
