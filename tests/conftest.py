import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
torch.set_num_threads(2)

# Fixtures that build a model: a test that uses one (directly or through another fixture) samples or
# trains, and what it samples depends on the CPU's float kernels. Such tests are marked ``model``, and
# CI runs them a second time under ATEN_CPU_CAPABILITY=default (``make test-kernels``), so a test that
# asserts what one CPU happened to sample fails there instead of on a user's machine. Modules that
# build models another way say so with ``pytestmark = pytest.mark.model``.
MODEL_FIXTURES = {"tiny_model_dir", "varied_model_dir"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(autouse=True)
def _a_test_that_builds_a_model_is_marked_model(request, monkeypatch):
    """Keeps the ``model`` marker true: a test that builds a transformers model in this process (a
    fresh one, a load, a checkpoint; every PreTrainedModel ends its __init__ in ``post_init``) and is
    not marked fails, naming the marker to add. Models built by session fixtures are built before
    this patch, and their users are marked by MODEL_FIXTURES. Not covered: a model built only in a
    subprocess the test starts."""
    from transformers import PreTrainedModel

    built = []
    post_init = PreTrainedModel.post_init

    def recording(self, *args, **kwargs):
        built.append(type(self).__name__)
        return post_init(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "post_init", recording)
    yield
    if built and request.node.get_closest_marker("model") is None:
        pytest.fail(f"this test builds a model ({built[0]}) and so depends on the CPU's float kernels: mark it "
                    "@pytest.mark.model (or its module: pytestmark = pytest.mark.model)", pytrace=False)


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


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty hub cache as HF_HUB_CACHE, with the hub offline (HF_HUB_OFFLINE=1)."""
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
