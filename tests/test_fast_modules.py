import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import GELUTanh, NewGELUActivation

from rft.models.fast import fuse_activations
from rft.models.load import load_model

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels


def test_fused_gelu_swaps_gpt2_activations_and_keeps_outputs_and_gradients(tmp_path):
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=32, vocab_size=50)).save_pretrained(tmp_path)
    plain = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    fused = load_model(tmp_path)  # load_model applies fuse_activations
    assert sum(isinstance(m, NewGELUActivation) for m in plain.modules()) == 2
    assert not any(isinstance(m, NewGELUActivation) for m in fused.modules())
    assert sum(isinstance(m, GELUTanh) for m in fused.modules()) == 2
    ids = torch.randint(0, 50, (3, 10))
    out_p, out_f = plain(ids).logits, fused(ids).logits
    assert torch.allclose(out_p, out_f, atol=1e-5)
    out_p.square().sum().backward()
    out_f.square().sum().backward()
    for a, b in zip(plain.parameters(), fused.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4, rtol=1e-4)
    assert fuse_activations(fused) == 0  # nothing left to swap
