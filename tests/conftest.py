"""Shared fixtures and the per-test time limits.

Fixtures: `micro_model` (a random-init micro model), `micro_chat_model` (the same with a ChatML template),
`micro_base` (a run dir whose `cpt` stage holds a one-step micro base), `dist_base` (the 2-rank cpt base the
dist tests, tests/test_dist*.py, start from, built on two ranks itself). Each is built once per session:
tests read them and write elsewhere.

Time limits (pytest-timeout): the default in pyproject.toml bounds a unit test; a test marked as one that
trains, runs Slurm, vLLM, two ranks or a real model gets MARKED_TIMEOUT_S instead. Both cover fixture
setup, so the test that builds a session fixture (a real model's run, a cluster) has that time too; both are
several times the slowest test in CI (docs/architecture.md, measured facts)."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from dist_helpers import CPT, launch
from transformers import AutoTokenizer

from r1repro.tiny.model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
# vLLM's own switch for its CPU CI: trace with dynamo once, then run eager instead of compiling with inductor.
# Every vLLM process the tests start inherits it. SmolLM2's engine is ready in ~3 s instead of ~130 s (AMD EPYC,
# 2026-12-04), while its steps run about as fast. The inductor path users run stays under test in
# tests/test_vllm_grpo.py's weight-sync check, which sets it to 0.
os.environ.setdefault("VLLM_CPU_CI_ENV", "1")
MARKED_TIMEOUT_S = 1800
LONG_MARKERS = ("slow", "slurm", "vllm", "dist", "real", "lighteval")
CHATML = ("{% for m in messages %}"
          "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def pytest_collection_modifyitems(items):
    """A marked test's own timeout marker, if it has one, wins over MARKED_TIMEOUT_S."""
    for item in items:
        if item.get_closest_marker("timeout") is None and any(item.get_closest_marker(m) for m in LONG_MARKERS):
            item.add_marker(pytest.mark.timeout(MARKED_TIMEOUT_S))


@pytest.fixture(scope="session")
def micro_model(tmp_path_factory) -> str:
    """A random-init micro model with the character tokenizer (seed 0), in save_pretrained layout."""
    return str(build_tiny_model(tmp_path_factory.mktemp("micro") / "model", size="micro"))


@pytest.fixture(scope="session")
def micro_chat_model(tmp_path_factory) -> str:
    """The micro model whose tokenizer carries a ChatML chat template (the `chat` prompt template's input)."""
    path = build_tiny_model(tmp_path_factory.mktemp("micro_chat") / "model", size="micro")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def micro_base(tmp_path_factory) -> Path:
    """A run dir whose `cpt` stage is a micro base, as fast as cpt makes one (one step): what the r1zero runs
    read as their input."""
    run_dir = tmp_path_factory.mktemp("micro_base")
    result = subprocess.run(
        [sys.executable, "-m", "r1repro.cli", "cpt", "--config", "recipes/tiny/cpt.yaml", "--run_dir", str(run_dir),
         "--init_tiny_model", "micro", "--max_steps", "1", "--corpus_num_docs", "16",
         "--per_device_train_batch_size", "8", "--save_steps", "1000", "--eval_num_problems", "0"],
        capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def dist_base(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dist")
    result = launch("cpt", *CPT, "--run_dir", str(run_dir))
    assert result.returncode == 0, result.log[-3000:]
    return SimpleNamespace(run_dir=run_dir, cpt=result)
