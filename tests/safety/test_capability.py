"""The capability guard: general-text NLL and KL to the start-of-run model, and its monitor."""

import json

import pytest
import torch

from rft.config import MonitorsConfig
from rft.models.load import load_model, load_tokenizer
from rft.safety.capability import TOP_K, CapabilityGuard, coarse_kl, read_general_text
from rft.safety.monitors import Monitors


def test_the_shipped_general_text_is_varied_and_non_trivial():
    texts = read_general_text()
    assert len(texts) >= 40
    assert sum(map(len, texts)) > 10_000
    assert any("def " in t for t in texts) and any("SELECT" in t for t in texts)  # code and SQL, not only prose


def test_coarse_kl_is_the_exact_kl_for_small_vocabularies_and_a_lower_bound_otherwise():
    g = torch.Generator().manual_seed(0)
    for V in (10, TOP_K, 500):
        ref = torch.randn(32, V, generator=g).log_softmax(-1)
        pol = (torch.randn(32, V, generator=g) * 2).log_softmax(-1)
        exact = (ref.exp() * (ref - pol)).sum(-1)
        top = ref.topk(min(TOP_K, V), dim=-1)
        approx = coarse_kl(top.values, pol.gather(-1, top.indices))
        if V <= TOP_K:
            assert torch.allclose(approx, exact, atol=1e-5)
        else:
            assert bool((approx <= exact + 1e-5).all()) and float(approx.mean()) > 0.2 * float(exact.mean())
    same = torch.randn(4, 300, generator=g).log_softmax(-1)
    top = same.topk(TOP_K, dim=-1)
    assert torch.allclose(coarse_kl(top.values, same.gather(-1, top.indices)), torch.zeros(4), atol=1e-6)


@pytest.fixture()
def model_and_guard(varied_model_dir):
    torch.manual_seed(0)
    model, tok = load_model(varied_model_dir), load_tokenizer(varied_model_dir)
    return model, tok, CapabilityGuard.from_config(tok, None, 128, model.config.vocab_size)


def test_guard_reads_zero_change_for_the_reference_and_a_rise_for_a_damaged_policy(model_and_guard, tmp_path):
    model, tok, guard = model_and_guard
    first = guard.measure(model)  # the snapshot: policy == reference
    assert first["cap/kl"] == 0.0 and first["cap/nll_rise"] == 0.0 and first["cap/nll"] > 0
    again = guard.measure(model)
    assert again["cap/kl"] == pytest.approx(0.0, abs=1e-6) and again["cap/nll"] == pytest.approx(first["cap/nll"])
    with torch.no_grad():  # damage the policy: noise on every weight
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5 * p.std().clamp(min=1e-3))
    damaged = guard.measure(model)
    assert damaged["cap/nll_rise"] > 0.05 and damaged["cap/kl"] > 0.1
    # the monitor turns that into one capability alert
    monitors = Monitors(MonitorsConfig())
    assert monitors.observe_val(0, {"val/pass@1": 0.1, **{f"val/{k}": v for k, v in first.items()}}) == []
    alerts = monitors.observe_val(10, {"val/pass@1": 0.1, **{f"val/{k}": v for k, v in damaged.items()}})
    assert [a.monitor for a in alerts] == ["capability"] and "general-text NLL" in alerts[0].message
    # a resumed run compares against the saved reference, not against itself
    guard.save(tmp_path / "ref.pt")
    fresh = CapabilityGuard.from_config(tok, None, 128)
    fresh.load(tmp_path / "ref.pt")
    assert fresh.measure(model)["cap/kl"] == pytest.approx(damaged["cap/kl"], rel=1e-5)


def test_a_different_text_set_cannot_be_compared_with_a_saved_reference(model_and_guard, tmp_path):
    model, tok, guard = model_and_guard
    guard.measure(model)
    guard.save(tmp_path / "ref.pt")
    other = tmp_path / "other.txt"
    other.write_text("one short paragraph\n\nanother one here\n")
    with pytest.raises(ValueError, match="different general-text set"):
        CapabilityGuard.from_config(tok, str(other), 128).load(tmp_path / "ref.pt")


def test_bad_general_text_files_name_the_line_and_the_fix(tmp_path):
    bad = tmp_path / "g.jsonl"
    bad.write_text(json.dumps({"text": "fine"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"g.jsonl:2: invalid JSON .*; each line must be"):
        read_general_text(bad)
    bad.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"g.jsonl:1: expected an object with a string 'text'"):
        read_general_text(bad)
    with pytest.raises(FileNotFoundError, match="eval.capability_file"):
        read_general_text(tmp_path / "missing.txt")
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="no text found"):
        read_general_text(empty)


def test_the_capability_alert_re_arms_only_after_it_clears():
    monitors = Monitors(MonitorsConfig(capability_nll_rise=0.1, capability_kl=1.0))
    val = lambda rise, kl: {"val/pass@1": 0.5, "val/cap/nll_rise": rise, "val/cap/kl": kl}  # noqa: E731
    assert monitors.observe_val(0, val(0.0, 0.0)) == []
    assert [a.monitor for a in monitors.observe_val(1, val(0.2, 0.0))] == ["capability"]
    assert monitors.observe_val(2, val(0.3, 0.0)) == []  # still degraded: one alert, not one per validation
    assert monitors.observe_val(3, val(0.0, 0.5)) == []  # cleared
    assert [a.monitor for a in monitors.observe_val(4, val(0.0, 2.0))] == ["capability"]  # KL alone fires


def test_a_policy_pushed_hard_toward_one_token_trips_the_capability_alert_in_training(tmp_path, varied_model_dir):
    """GRPO with a large learning rate and a grader that pays for the letter 'z': the policy drifts
    from the start model on general text, the guard measures it at each validation and the
    capability monitor fires; the reference snapshot lives in the run directory."""
    from rft.config import config_from_dict
    from rft.console import Console
    from rft.grpo.train import train

    cfg = config_from_dict({
        "name": "cap", "output_dir": str(tmp_path), "seed": 0, "threads": 2, "model": {"path": str(varied_model_dir)},
        "data": {"task": {"digits": 1, "val_size": 8}}, "report_to": [],
        "grader": {"type": "python", "source": "def grade(sample, item):\n    return sample['output_text'].count('z') / 4\n"},
        "sampling": {"num_generations": 8, "max_new_tokens": 4, "temperature": 1.5},
        "grpo": {"steps": 6, "prompts_per_step": 4, "lr": 3e-2},
        "eval": {"every": 3, "samples": 0}, "checkpoint": {"every": 10},
    })
    run = train(cfg, console=Console(quiet=True)).run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in rows if r["type"] == "val"]
    assert [v["step"] for v in vals] == [0, 3, 6]
    assert vals[0]["val/cap/kl"] == 0.0 and vals[0]["val/cap/nll_rise"] == 0.0
    assert vals[-1]["val/cap/kl"] > 0.1
    assert "capability" in [r["monitor"] for r in rows if r["type"] == "alert"]
    assert (run / "capability_ref.pt").is_file()
