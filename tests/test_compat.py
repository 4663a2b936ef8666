"""rft calls transformers and peft by the names the installed release uses: no deprecated argument
from our side, and nothing of the kind printed to a user of the command line.

In-process, the suite turns every FutureWarning into an error (pyproject's ``filterwarnings``); the
command line runs in a subprocess under Python's default filters, as ``make demo`` does, where a
FutureWarning is printed once per call site: the CLI tests read what a user would read."""

import os
import subprocess
import sys
import warnings

import pytest
import torch
import yaml

from rft.models.compat import cache_kwargs, peft_wrapping
from rft.models.load import load_model
from rft.rollout.kv_cache import decode_cache

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels


def _forward_warnings(model, ids, cache) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            model(input_ids=ids, **cache_kwargs(model, cache), use_cache=True)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def test_the_cache_goes_by_the_name_the_forward_takes_and_is_filled(tiny_model_dir):
    model = load_model(tiny_model_dir)
    ids = torch.tensor([[5, 6, 7]])
    cache = decode_cache(model, 8)
    assert _forward_warnings(model, ids, cache) == []
    assert cache.get_seq_length() == 3  # the forward used the cache it was given


def test_a_peft_model_takes_the_cache_by_its_base_models_name(tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with peft_wrapping():
            model = get_peft_model(load_model(tiny_model_dir), LoraConfig(r=2, target_modules=["q_proj"]))
    assert [str(w.message) for w in caught] == []
    cache = decode_cache(model, 8)
    assert _forward_warnings(model, torch.tensor([[5, 6, 7]]), cache) == []
    assert cache.get_seq_length() == 3


def _cli(*args: str, env: dict[str, str] | None = None) -> str:
    """stdout + stderr of ``python -m rft.cli ARGS`` with the environment a user has: no warning
    filters or verbosity of the test run's."""
    user_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "TRANSFORMERS_VERBOSITY")}
    user_env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "rft.cli", *args], capture_output=True, text=True, env=user_env,
                          timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def test_rft_train_with_lora_prints_no_warning(tmp_path, tiny_model_dir):
    """Sampling, log-probs (policy and the adapter-off reference), validation, an adapter checkpoint
    and its reload on resume: the paths where transformers and peft are called."""
    raw = {
        "name": "quiet", "output_dir": str(tmp_path), "seed": 0, "threads": 1, "report_to": [],
        "model": {"path": str(tiny_model_dir), "lora": {"r": 4, "alpha": 8}},
        "data": {"task": {"digits": 1, "val_size": 4}},
        "grader": {"type": "regex", "pattern": "[0-9]", "mode": "search"},
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": 1, "prompts_per_step": 2, "lr": 5e-3, "beta": 0.1},
        "eval": {"every": 1}, "checkpoint": {"every": 1, "keep_last": 1},
    }
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = _cli("train", str(path))
    out += _cli("train", "--resume", str(tmp_path / "quiet"), "--set", "grpo.steps=2")
    assert (tmp_path / "quiet" / "checkpoints" / "step_000002" / "adapter_model.safetensors").is_file()
    assert "Warning" not in out, out


def test_rft_demo_prints_no_warning(tmp_path):
    """The tiny-model demo (`make demo`: the embedded model made on first use, SFT, GRPO, the report),
    cut to a few steps and a small held-out split."""
    out = _cli("demo", "--steps", "2", "--output-dir", str(tmp_path), "--set", "sft.steps=20",
               "--set", "sft.eval_every=20", "--set", "data.task.val_size=16", "--set", "eval.every=2",
               env={"RFT_CACHE": str(tmp_path / "cache")})
    assert "GRPO steps" in out  # it ran to the end-of-run table
    assert "Warning" not in out, out
