"""Mixed-precision AdamW: float32 masters for bfloat16 parameters."""

import torch

from rft.training.optim import MasterWeightAdamW, make_optimizer


def _steps(opt, p, n, grad=1.0):
    for _ in range(n):
        opt.zero_grad()
        p.grad = torch.full_like(p, grad)
        opt.step()


def test_small_updates_accumulate_in_the_masters_where_plain_bfloat16_adamw_loses_them():
    """lr 1e-4 on weights of 1.0: bfloat16's spacing there is 2^-7 (0.0078), so each AdamW step of
    ~1e-4 rounds back to 1.0 -- plain AdamW never moves; with float32 masters 200 steps move ~0.02."""
    plain = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    mixed = torch.nn.Parameter(torch.ones(4, dtype=torch.bfloat16))
    _steps(torch.optim.AdamW([plain], lr=1e-4, weight_decay=0.0), plain, 200)
    opt = make_optimizer(torch.nn.ParameterList([mixed]), 1e-4, 0.0)
    assert isinstance(opt, MasterWeightAdamW)
    _steps(opt, mixed, 200)
    assert torch.equal(plain, torch.ones_like(plain))
    assert mixed.dtype == torch.bfloat16 and torch.allclose(mixed.float(), torch.full((4,), 1 - 0.02), atol=4e-3)
    assert torch.allclose(opt.masters[0], torch.full((4,), 1 - 0.02), atol=1e-4)


def test_float32_parameters_get_plain_adamw_and_masters_follow_plain_adamw_exactly():
    ref = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    assert type(make_optimizer(torch.nn.ParameterList([ref]), 1e-2, 0.1)) is torch.optim.AdamW
    low = torch.nn.Parameter(torch.linspace(-1, 1, 6).to(torch.bfloat16))
    ref32 = torch.nn.Parameter(low.detach().float().clone())
    a = MasterWeightAdamW([low], lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
    b = torch.optim.AdamW([ref32], lr=1e-2, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8)
    for g in (0.5, -0.25, 1.0):  # gradients exactly representable in bfloat16: both see the same ones
        _steps(a, low, 1, g)
        _steps(b, ref32, 1, g)
    assert torch.equal(a.masters[0], ref32.detach())
    assert torch.equal(low, ref32.detach().to(torch.bfloat16))


def test_state_dict_carries_the_masters_so_a_resume_continues_from_float32():
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.bfloat16))
    opt = MasterWeightAdamW([p], lr=1e-4)
    _steps(opt, p, 50)
    state = opt.state_dict()
    q = torch.nn.Parameter(p.detach().clone())  # what a checkpoint's weights hold: the rounded values
    resumed = MasterWeightAdamW([q], lr=1e-4)
    resumed.load_state_dict(state)
    _steps(opt, p, 50)
    _steps(resumed, q, 50)
    assert torch.equal(opt.masters[0], resumed.masters[0]) and torch.equal(p, q)
    assert not torch.equal(resumed.masters[0], torch.ones(3))  # the masters moved; the bf16 copy may not have
