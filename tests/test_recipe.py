"""The real-model recipe's config is a valid rft config (its model directory need not exist to parse)."""

from pathlib import Path

import pytest

from rft.config import load_config

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "recipes"


@pytest.mark.parametrize("name", ["qwen2.5-0.5b-gsm8k"])
def test_recipe_config_parses_and_matches_its_page(name):
    pytest.importorskip("peft")  # the recipe uses LoRA
    cfg = load_config(RECIPES / f"{name}.yaml")
    assert cfg.model.lora is not None and cfg.grpo.beta > 0 and cfg.grader["type"] == "math"
    page = (RECIPES / f"{name}.md").read_text()
    assert "ESTIMATE" in page and f"{name}.yaml" in page
    for value in (f"num_generations: {cfg.sampling.num_generations}", f"max_new_tokens: {cfg.sampling.max_new_tokens}",
                  f"prompts_per_step: {cfg.grpo.prompts_per_step}", f"r: {cfg.model.lora.r}"):
        assert value in page, f"the page and the YAML disagree on {value}"
