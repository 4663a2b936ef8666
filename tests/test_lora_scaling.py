"""LoRA's scaling folded into B's weight (rft.models.lora.fold_scaling): at a power-of-two alpha / r every
adapted linear computes base(x) + linear(A(x), s B), bit for bit what peft's base(x) + B(A(x)) * s gives,
forward and backward, without a multiply over the full output; other scalings keep peft's forward."""

import copy

import pytest
import torch

from rft.config import LoRAConfig
from rft.models.load import load_model
from rft.models.lora import _power_of_two, _scaled_forward, add_adapter, fold_scaling, reference_scoring

pytestmark = pytest.mark.model

VOCAB = 20  # token ids drawn below this: inside any tiny model's vocabulary


@pytest.fixture
def base(tiny_model_dir):
    """The embedded tiny model (a Llama-style decoder) in ``dtype``: a fresh copy per call."""
    return lambda dtype=torch.float32: load_model(tiny_model_dir).to(dtype)


def _adapted(base, dtype, r=4, alpha=8):
    model = add_adapter(base(dtype), LoRAConfig(r=r, alpha=alpha, target_modules="all-linear"))
    torch.manual_seed(1)
    with torch.no_grad():  # B off zero, so the adapters change the output
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    return model


def _folded(model):
    return [m for m in model.modules() if m.__dict__.get("forward") is not None]


def _peft_forward(model):
    """The same model with peft's own forward on every layer."""
    plain = copy.deepcopy(model)
    for m in _folded(plain):
        del m.forward
    return plain


def _loss_and_grads(model, ids):
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids).logits
    logits.float().square().mean().backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_folded_forward_equals_peft_bit_for_bit_forward_and_backward(base, dtype):
    model = _adapted(base, dtype)
    adapted = [m for m in model.modules() if hasattr(m, "lora_A")]
    assert len(adapted) >= 7 and len(_folded(model)) == len(adapted)  # every adapted linear
    peft_model = _peft_forward(model)
    assert not _folded(peft_model)
    ids = torch.randint(3, VOCAB, (3, 11))
    logits, grads = _loss_and_grads(model, ids)
    ref_logits, ref_grads = _loss_and_grads(peft_model, ids)
    assert torch.equal(logits, ref_logits)
    assert grads.keys() == ref_grads.keys() and all(torch.equal(grads[k], ref_grads[k]) for k in grads)


def test_the_folded_forward_multiplies_no_full_size_output(base):
    model = _adapted(base, torch.float32)
    layer = _folded(model)[0]
    x = torch.randn(5, layer.in_features)
    sizes = []

    class Muls(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if getattr(func, "__name__", "") in ("mul", "__mul__") and isinstance(out, torch.Tensor):
                sizes.append(out.numel())
            return out

    with Muls():
        out = layer(x)
    assert sizes and max(sizes) == layer.lora_B["default"].weight.numel() < out.numel()


def test_other_scalings_and_the_reference_keep_peft_forward(base):
    odd = _adapted(base, torch.float32, r=4, alpha=6)  # scaling 1.5: folding would round differently
    assert not _folded(odd)
    model = _adapted(base, torch.float32)
    ids = torch.randint(3, VOCAB, (2, 9))
    with torch.no_grad(), reference_scoring(model):
        ref = model(input_ids=ids).logits
        assert torch.equal(ref, base()(input_ids=ids).logits)  # adapters off: the base
    with torch.no_grad():
        on = model(input_ids=ids).logits
    assert not torch.equal(on, ref)


def test_a_deep_copy_runs_its_own_adapters(base):
    model = _adapted(base, torch.float32)
    twin = copy.deepcopy(model)
    layer = _folded(twin)[0]
    assert layer.forward.__func__ is _scaled_forward and layer.forward.__self__ is layer
    with torch.no_grad():
        for name, p in twin.named_parameters():
            if "lora_B" in name:
                p.zero_()
    ids = torch.randint(3, VOCAB, (2, 9))
    with torch.no_grad():
        assert not torch.equal(model(input_ids=ids).logits, twin(input_ids=ids).logits)
    assert fold_scaling(twin) is twin


@pytest.mark.parametrize("scaling", [float("nan"), float("inf"), -2.0, 0.0, 1e39, 1.5, 2.0**-1074, 2.0**-30, 2.0**40])
def test_only_a_modest_power_of_two_is_folded(scaling):
    """NaN, inf, negative, huge, subnormal or far-off powers of two keep peft's order of operations."""
    assert not _power_of_two(scaling)
    assert all(_power_of_two(x) for x in (0.5, 1.0, 2.0, 4.0, 2.0**-24, 2.0**24))


def test_a_huge_alpha_keeps_peft_forward(base):
    assert not _folded(_adapted(base, torch.float32, r=1, alpha=2.0**40))
