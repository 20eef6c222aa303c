# Every target sets itself up: a virtual env in .venv, torch==2.13.0 first (a bare `torch` requirement would
# pull a multi-GB CUDA build on CPU machines), then the project with its test and plot extras.
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= $(abspath ../shared/data)
BASE ?= models/base-seed0

.PHONY: setup test demo demo-quick

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,plots]'
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq bubblewrap; } \
		|| echo "warning: bubblewrap missing and not root; code tasks will refuse to run untrusted programs"
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "warning: chromium missing and not root; the viewer's browser test will be skipped"
	touch $@

test: setup
	SCORE_BENCH_DATA_DIR=$${SCORE_BENCH_DATA_DIR:-$(DATA)} $(PY) -m pytest -q

demo: setup
	$(VENV)/bin/score-bench demo --base-model $(BASE)

demo-quick: setup
	$(VENV)/bin/score-bench demo --quick
