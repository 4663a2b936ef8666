import subprocess
import sys
from pathlib import Path

import pytest

from rft.config import config_from_dict
from rft.console import Console
from rft.grpo.train import train
from rft.models.load import embedded_model_dir, load_model, load_tokenizer

pytestmark = pytest.mark.model  # samples or trains: CI reruns it under other CPU kernels

BENCH_MODEL_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "bench" / "trl" / "make_tiny_model.py"


def test_embedded_model_is_created_once_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RFT_CACHE", str(tmp_path))
    path = embedded_model_dir()
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert embedded_model_dir() == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    tok = load_tokenizer(path)
    ids = tok("47+38=")["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == 7
    assert tok.decode(ids, skip_special_tokens=True) == "47+38="
    n = sum(p.numel() for p in load_model(path).parameters())
    assert 2e5 < n < 5e6


@pytest.mark.skipif(not BENCH_MODEL_SCRIPT.exists(), reason="../shared/bench/trl is not beside the checkout")
def test_the_benchmarks_gpt2_directory_loads_and_trains(tmp_path):
    model_dir = tmp_path / "tiny-gpt2-char"
    subprocess.run([sys.executable, str(BENCH_MODEL_SCRIPT), str(model_dir)], check=True, capture_output=True)
    cfg = config_from_dict({
        "name": "gpt2", "output_dir": str(tmp_path), "threads": 2, "model": {"path": str(model_dir)},
        "data": {"task": {"digits": 2, "val_size": 16}},
        "sampling": {"num_generations": 4, "max_new_tokens": 4},
        "grpo": {"steps": 2, "prompts_per_step": 2, "beta": 0.04}, "eval": {"every": 2},
    })
    result = train(cfg, console=Console(quiet=True))
    assert result.steps == 2 and (result.run_dir / "checkpoints" / "step_000002" / "model.safetensors").is_file()
    assert type(load_model(result.run_dir / "checkpoints" / "step_000002")).__name__ == "GPT2LMHeadModel"
