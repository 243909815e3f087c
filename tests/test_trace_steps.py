"""Trace sampling as steps of their own and the eval after training (issue 12): no engine ever runs
inside a training process, and a failed eval leaves a finished stage done.

The sampling here uses the HF backend on a random tiny model (what vLLM does on a cluster); such a
model writes no correct traces, so the SFT half is driven by samples written as files in the shape
`r1repro sample` writes them (the tiny task's own correct traces and wrong answers)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1repro.tiny.model import build_tiny_model
from r1repro.tiny.tasks import task_rows

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
SMALL = ["--num_prompts", "6", "--samples_per_prompt", "2", "--sample_max_new_tokens", "12", "--max_steps", "2",
         "--per_device_train_batch_size", "4", "--eval_num_problems", "0", "--logging_steps", "1"]


def r1repro(*args, env=None):
    return subprocess.run([sys.executable, "-m", "r1repro.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def models(tmp_path_factory, micro_model):
    """The source model traces are sampled from and the base the SFT trains."""
    return str(build_tiny_model(tmp_path_factory.mktemp("source") / "model", size="micro", seed=1)), micro_model


def _stage_args(tmp_path, models, *extra):
    source, base = models
    return ["--config", "recipes/tiny/cold_start.yaml", "--run_dir", str(tmp_path / "run"), "--source_model", source,
            "--model_name_or_path", base, *SMALL, *extra]


def test_sharded_sampling_then_select(tmp_path, models):
    args = _stage_args(tmp_path, models)
    out = tmp_path / "run" / "cold_start"
    assert r1repro("traces", "cold_start", "--prepare", *args).returncode == 0
    for shard in ("0", "1"):  # as two nodes (or two array tasks) would
        result = r1repro("traces", "cold_start", "--num-shards", "2", "--shard-index", shard, *args)
        assert result.returncode == 0, result.stderr[-2000:]
    shards = sorted(p.name for p in (out / "samples").glob("samples*.jsonl"))
    assert shards == ["samples.shard-00000-of-00002.jsonl", "samples.shard-00001-of-00002.jsonl"]
    result = r1repro("traces", "cold_start", "--select", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "traces_summary.json").read_text())
    assert summary["samples"] == 6 * 2 and sum(summary["verdicts"].values()) == 12
    # Up to date: nothing is sampled again; other sampling settings start over.
    assert "up to date" in r1repro("traces", "cold_start", *args).stdout
    changed = r1repro("traces", "cold_start", "--prepare", *args, "--sample_temperature", "0.5")
    assert changed.returncode == 0 and not list((out / "samples").glob("samples*.jsonl"))
    # A select before every shard is there is one clear line.
    bad = r1repro("traces", "cold_start", "--select", *args, "--sample_temperature", "0.5")
    assert bad.returncode == 2 and "prompts have fewer than 2 samples" in bad.stderr


def test_a_multi_process_launch_never_samples(tmp_path, models, monkeypatch):
    """Each rank of an `accelerate launch` finds no traces: one line, no engine built on any rank."""
    from r1repro.config import ConfigError, DataArgs
    from r1repro.trainers.trace_steps import ensure_traces
    from r1repro.trainers.traces import TraceArgs

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="sampling is a step of its own, run `r1repro traces <stage>"):
        ensure_traces(TraceArgs(source_model=models[0], num_prompts=4), DataArgs(), str(tmp_path / "out"), 0)
    assert not (tmp_path / "out").exists()


def test_a_ranks_sampling_child_gets_its_own_gpu_and_no_launch_variables(monkeypatch):
    """`r1repro traces` over N ranks (sample_over_ranks, run for real in tests/test_dist_more.py on CPU): the
    sampling child of the rank with LOCAL_RANK 1 sees only the second visible GPU, and none of torchrun's
    variables (an engine that reads them would take itself for a rank of the launch)."""
    from r1repro.trainers.trace_steps import rank_child_env

    for key, value in {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_PORT": "29500",
                       "TORCHELASTIC_RUN_ID": "x", "CUDA_VISIBLE_DEVICES": "4,5"}.items():
        monkeypatch.setenv(key, value)
    env = rank_child_env()
    assert env["CUDA_VISIBLE_DEVICES"] == "5"
    assert not {"RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "TORCHELASTIC_RUN_ID"} & set(env)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU visible: left as it is
    assert rank_child_env()["CUDA_VISIBLE_DEVICES"] == ""


def test_a_stage_on_its_own_samples_in_a_child_process(tmp_path, models):
    result = r1repro("cold_start", *_stage_args(tmp_path, models))
    # The random source model writes no correct trace: the stage stops after the steps, with one line.
    assert result.returncode == 2 and "no training traces survived the filters" in result.stderr
    assert "[traces] r1repro sample --model" in result.stdout  # the sampling ran as a command of its own
    assert (tmp_path / "run" / "cold_start" / "traces_summary.json").is_file()


def _write_samples(out: Path, prompts: list[dict]) -> None:
    """What `r1repro sample` writes, with the tiny task's own correct trace and a wrong answer."""
    (out / "samples").mkdir(parents=True, exist_ok=True)
    with open(out / "samples" / "samples.jsonl", "w") as f:
        for p in prompts:
            for j, text in enumerate([p["response"], " <think> no </think> <answer> 0 </answer>"]):
                f.write(json.dumps({**p, "prompt_id": p["id"], "sample_index": j, "text": text}) + "\n")


def test_sft_trains_on_selected_traces_and_the_eval_runs_after_it(tmp_path, models):
    args = _stage_args(tmp_path, models)
    out = tmp_path / "run" / "cold_start"
    assert r1repro("traces", "cold_start", "--prepare", *args).returncode == 0
    prompts = [json.loads(line) for line in open(out / "samples" / "prompts.jsonl")]
    assert [p["problem"] for p in prompts] == [r["problem"] for r in task_rows("addition", "train", 6, 0)]
    _write_samples(out, prompts)
    assert r1repro("traces", "cold_start", "--select", *args).returncode == 0
    assert json.loads((out / "traces_summary.json").read_text())["kept"] == 6
    evals = ["--eval_num_problems", "2", "--eval_num_samples", "1", "--eval_max_new_tokens", "8"]
    result = r1repro("cold_start", *args, *evals)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[traces] r1repro sample" not in result.stdout  # the traces were there: nothing sampled
    done, evaluated = out / "DONE.json", out / "eval.json"
    assert done.is_file() and evaluated.is_file() and evaluated.stat().st_mtime >= done.stat().st_mtime
    assert json.loads(done.read_text())["traces"]["kept"] == 6
    # A failing eval costs the finished stage nothing: DONE.json stays, the exit code is 0, and the
    # eval can be rerun on its own.
    evaluated.unlink()
    broken = ["--eval_tasks", "[{name: reasoning, dataset: " + str(tmp_path / "missing.jsonl") + "}]"]
    result = r1repro("cold_start", *args, *evals, *broken)
    assert result.returncode == 0 and done.is_file() and not evaluated.exists()
    assert "eval failed" in result.stderr and "r1repro stage-eval cold_start" in result.stderr
    assert r1repro("stage-eval", "cold_start", *args, *evals).returncode == 0 and evaluated.is_file()
