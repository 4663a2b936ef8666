import pytest
import yaml

from rft.cli import main


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, tiny_model_dir):
    """A real 3-step `rft train --json` of the tiny model (random weights, KL on, validation every
    step), run through the CLI so the end-of-run report and the JSON lines are the real ones.
    Returns (run directory, stdout lines)."""
    root = tmp_path_factory.mktemp("short")
    cfg = {
        "name": "short", "output_dir": str(root), "seed": 0, "threads": 2, "model": {"path": str(tiny_model_dir)},
        "data": {"task": {"digits": 1, "val_size": 16}},
        "sampling": {"num_generations": 4, "max_new_tokens": 3, "temperature": 1.3},
        "grpo": {"steps": 3, "prompts_per_step": 4, "lr": 1e-3, "beta": 0.04},
        "eval": {"every": 1}, "checkpoint": {"every": 3, "keep_last": 1},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return root / "short", path


@pytest.fixture(scope="module")
def trained_run(short_run):
    import contextlib
    import io

    run_dir, cfg_path = short_run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", str(cfg_path), "--json"]) == 0
    return run_dir, out.getvalue().splitlines()
