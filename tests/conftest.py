import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A freshly initialised embedded model, saved with save_pretrained (random weights)."""
    from rft.models.tiny import init_tiny_model

    return init_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="session")
def varied_model_dir(tmp_path_factory):
    """A random tiny model with large initial weights, so that greedy outputs vary across prompts
    and some rows stop early (EOS) while others run to the limit."""
    from rft.models.load import load_model, load_tokenizer
    from rft.models.tiny import init_tiny_model

    path = init_tiny_model(tmp_path_factory.mktemp("varied"), seed=1)
    model = load_model(path)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.35)
        model.get_output_embeddings().weight[load_tokenizer(path).eos_token_id] += 0.6
    model.save_pretrained(path)
    return path
