"""More stages on two CPU ranks for real (`torchrun --nproc_per_node 2`, gloo; see tests/test_dist.py for cpt,
GRPO, SFT, all_scenario_rl and the killed / hung rank): DPO, on-policy distillation, trace sampling sharded
over the ranks (and resumed after a killed rank), and cpt, SFT, DPO, all_scenario_rl and on-policy distillation
runs resumed on two ranks after a killed rank.
Each (but cpt's, which builds its own) starts from the session's 2-rank cpt base (`dist_base`,
tests/conftest.py) and runs a few steps of the micro model.

Marked dist and slow."""

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from dist_helpers import (
    CPT,
    assert_finished_once,
    distill_on_policy_args,
    dpo_pairs,
    kill_rank_after_checkpoint,
    kill_workers,
    launch,
    wait_for,
    worker_pids,
)

from r1repro.jsonl import read_jsonl
from r1repro.report import read_metrics
from r1repro.rundir import last_checkpoint
from r1repro.tiny.tasks import addition_rows

pytestmark = [pytest.mark.dist, pytest.mark.slow]

FEW_STEPS = ["--logging_steps", "1", "--save_steps", "1000", "--eval_num_problems", "0", "--disable_tqdm", "true"]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_dpo_on_two_ranks(dist_base, tmp_path, lora):
    """DPOTrainer (full: a frozen reference model on every rank; LoRA: the adapter switched off is the
    reference, and the merged model is saved by the main process alone): finishes once, writes one DONE.json
    and one metrics stream, and saves a plain model that loads."""
    pairs = dpo_pairs(tmp_path)
    out = tmp_path / "dpo"
    result = launch("dpo", "--config", "recipes/tiny/dpo.yaml", "--run_dir", str(dist_base.run_dir),
                    "--output_dir", str(out), "--model_name_or_path", str(dist_base.run_dir / "cpt"),
                    "--pairs", str(pairs), "--max_steps", "3", "--per_device_train_batch_size", "4",
                    "--max_length", "128", *FEW_STEPS, *(["--use_peft", "true", "--lora_r", "4"] if lora else []))
    metrics = assert_finished_once(result, "dpo", out)
    assert len([m for m in metrics if "loss" in m]) == 3
    assert json.loads((out / "DONE.json").read_text())["pairs"] == 32
    assert not (out / "adapter_config.json").exists()


def test_distill_on_policy_on_two_ranks(dist_base, tmp_path):
    """DistillationTrainer: each rank samples its own prompts with the student and scores them with its
    replica of the teacher (the cpt base with noise on its weights: a teacher equal to the student gives
    loss 0 and no gradient, which would prove nothing)."""
    out = tmp_path / "distill_on_policy"
    result = launch("distill_on_policy", *distill_on_policy_args(dist_base, tmp_path, out), "--num_train_samples",
                    "32", "--max_steps", "3", *FEW_STEPS)
    logged = [m for m in assert_finished_once(result, "distill_on_policy", out) if "loss" in m]
    assert len(logged) == 3 and all(m["loss"] > 0 and m["grad_norm"] > 0 for m in logged), logged


def test_trace_sampling_sharded_over_two_ranks(dist_base, tmp_path):
    """`r1repro traces` under torchrun: rank r samples shard r of 2 (disjoint prompts, together all of them),
    and the main process alone selects and writes the traces files. The micro base writes no correct traces,
    so what is checked is the sampling and the one writer, not what is kept."""
    args = ["--config", "recipes/tiny/cold_start.yaml", "--run_dir", str(tmp_path / "run"), "--source_model",
            str(dist_base.run_dir / "cpt"), "--model_name_or_path", str(dist_base.run_dir / "cpt"),
            "--num_prompts", "6", "--samples_per_prompt", "2", "--sample_max_new_tokens", "12"]
    result = launch("traces", "cold_start", *args)
    assert result.returncode == 0, result.log[-3000:]
    samples = tmp_path / "run" / "cold_start" / "samples"
    prompts = {str(p["id"]) for p in read_jsonl(samples / "prompts.jsonl")}
    shards = sorted(samples.glob("samples*.jsonl"))
    assert [p.name for p in shards] == ["samples.shard-00000-of-00002.jsonl", "samples.shard-00001-of-00002.jsonl"]
    ids = [[str(line["prompt_id"]) for line in read_jsonl(p)] for p in shards]
    assert all(len(shard) == 2 * len(set(shard)) for shard in ids)  # 2 samples per prompt
    assert not set(ids[0]) & set(ids[1]) and set(ids[0]) | set(ids[1]) == prompts and len(prompts) == 6
    assert len(re.findall(r"^\[traces\] \{", result.stdout, re.M)) == 1, result.log[-3000:]  # one select
    summary = json.loads((tmp_path / "run" / "cold_start" / "traces_summary.json").read_text())
    assert summary["samples"] == 12 and sum(summary["verdicts"].values()) == 12
    again = launch("traces", "cold_start", *args)
    assert again.returncode == 0 and again.stdout.count("up to date") == 1 and "r1repro sample" not in again.log


def children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def test_trace_sampling_killed_rank_leaves_no_sampler_and_resumes(dist_base, tmp_path):
    """Rank 1 SIGKILLed while its `r1repro sample` child runs: the child goes too (before the fix it ran on
    as an orphan, holding its shard's lock and GPU), and the same launch again finishes the sampling."""
    args = ["--config", "recipes/tiny/cold_start.yaml", "--run_dir", str(tmp_path / "run"), "--source_model",
            str(dist_base.run_dir / "cpt"), "--model_name_or_path", str(dist_base.run_dir / "cpt"),
            "--num_prompts", "100", "--samples_per_prompt", "4", "--sample_max_new_tokens", "64"]
    log_path = tmp_path / "killed.log"
    with open(log_path, "w") as log:
        proc = launch("traces", "cold_start", *args, popen=True, log=log)
        pids, sampler = {}, []
        try:
            wait_for(lambda: "--shard-index 1" in log_path.read_text(), proc, "rank 1's sampler")
            pids = worker_pids(proc)
            wait_for(lambda: children(pids[1]), proc, "rank 1's sampler process", timeout=30)
            sampler = children(pids[1]) + children(pids[0])
            os.kill(pids[1], signal.SIGKILL)
            # Without the fix the sampler (loading the model, then generating) ran on for seconds.
            deadline = time.time() + 5
            while any(Path(f"/proc/{p}").exists() for p in sampler) and time.time() < deadline:
                time.sleep(0.1)
            orphans = [p for p in sampler if Path(f"/proc/{p}").exists()]
            proc.wait(timeout=120)
        finally:
            proc.kill()
            kill_workers([*pids.values(), *sampler])
    assert proc.returncode != 0
    assert not orphans, f"rank 1's sampler {orphans} outlived it"
    again = launch("traces", "cold_start", *args)
    assert again.returncode == 0, again.log[-3000:]
    summary = json.loads((tmp_path / "run" / "cold_start" / "traces_summary.json").read_text())
    assert summary["samples"] == 400 and sum(summary["verdicts"].values()) == 400


def test_sft_killed_rank_then_two_ranks_resume(dist_base, tmp_path):
    """distill (SFTTrainer) on 2 ranks, rank 1 SIGKILLed once a checkpoint is complete: the run ends, and the
    same command on 2 ranks resumes from the last complete checkpoint (a half-written newer one, which a
    kill during a save leaves, is skipped) and logs the steps after it once."""
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"problem": r["problem"], "response": r["response"]}) + "\n"
                              for r in addition_rows("train", 64)))
    out = tmp_path / "distill"
    args = ["--config", "recipes/tiny/distill.yaml", "--run_dir", str(dist_base.run_dir), "--output_dir", str(out),
            "--model_name_or_path", str(dist_base.run_dir / "cpt"), "--source_dataset", str(traces),
            "--per_device_train_batch_size", "4", "--max_steps", "400", "--save_steps", "3", "--logging_steps", "1",
            "--eval_num_problems", "0", "--disable_tqdm", "true"]
    ended = kill_rank_after_checkpoint("distill", args, out, tmp_path / "killed.log")
    assert ended < 60, f"the run took {ended:.0f} s to end after a rank was killed"
    checkpoint = last_checkpoint(out)
    step = int(checkpoint.split("-")[-1])
    print(f"run ended {ended:.1f} s after the kill; resuming from step {step}")
    before = len(read_metrics(out))
    resumed = launch("distill", *args, "--max_steps", str(step + 2))
    assert f"resuming from {checkpoint}" in resumed.log, resumed.log[-3000:]
    assert [m["step"] for m in read_metrics(out)[before:] if "loss" in m] == [step + 1, step + 2]
    assert_finished_once(resumed, "distill", out, metrics_from=before)


def resume_after_killed_rank(stage: str, args: list[str], out: Path, tmp_path: Path, logged: str):
    """Kill rank 1 after a checkpoint, then the same command on 2 ranks for 2 more steps: it resumes from the
    last complete checkpoint and logs (metric `logged`) the steps after it once. The resumed launch's result."""
    ended = kill_rank_after_checkpoint(stage, args, out, tmp_path / "killed.log")
    assert ended < 60, f"the run took {ended:.0f} s to end after a rank was killed"
    checkpoint = last_checkpoint(out)
    step = int(checkpoint.split("-")[-1])
    before = len(read_metrics(out))
    resumed = launch(stage, *args, "--max_steps", str(step + 2))
    assert f"resuming from {checkpoint}" in resumed.log, resumed.log[-3000:]
    assert [m["step"] for m in read_metrics(out)[before:] if logged in m] == [step + 1, step + 2]
    assert_finished_once(resumed, stage, out, metrics_from=before)
    return resumed


def test_dpo_killed_rank_then_two_ranks_resume(dist_base, tmp_path):
    out = tmp_path / "dpo"
    args = ["--config", "recipes/tiny/dpo.yaml", "--run_dir", str(dist_base.run_dir), "--output_dir", str(out),
            "--model_name_or_path", str(dist_base.run_dir / "cpt"), "--pairs", str(dpo_pairs(tmp_path, 256)),
            "--per_device_train_batch_size", "4", "--max_length", "128", "--max_steps", "400", "--save_steps", "3",
            *FEW_STEPS[:2], *FEW_STEPS[4:]]
    resume_after_killed_rank("dpo", args, out, tmp_path, "loss")


def test_all_scenario_rl_killed_rank_then_two_ranks_resume(dist_base, tmp_path):
    """With the reward model trained in the stage (before the GRPO part): the resumed run reuses it."""
    out = tmp_path / "all_scenario_rl"
    args = ["--config", "recipes/tiny/all_scenario_rl.yaml", "--run_dir", str(dist_base.run_dir), "--output_dir",
            str(out), "--model_name_or_path", str(dist_base.run_dir / "cpt"), "--max_completion_length", "16",
            "--num_train_samples", "800", "--general_fraction", "0.5", "--rm_num_pairs", "32", "--rm_max_steps", "2",
            "--rm_batch_size", "8", "--max_steps", "200", "--save_steps", "2", "--per_device_train_batch_size", "4",
            "--num_generations", "4", *FEW_STEPS[:2], *FEW_STEPS[4:]]
    resumed = resume_after_killed_rank("all_scenario_rl", args, out, tmp_path, "reward")
    assert "reward model:" in (tmp_path / "killed.log").read_text() and "reward model:" not in resumed.log
    assert {"config.json", "model.safetensors"} <= {p.name for p in (out / "reward_model").iterdir()}
    assert not (out / ".reward_model.partial").exists()


def test_cpt_killed_rank_then_two_ranks_resume(tmp_path):
    """cpt building its tiny model (rank 0 writes it, the others wait): the resumed run builds it again, the
    same from the same seed, and continues from the checkpoint."""
    out = tmp_path / "run" / "cpt"
    args = [*CPT, "--run_dir", str(tmp_path / "run"), "--max_steps", "400", "--save_steps", "3"]
    resume_after_killed_rank("cpt", args, out, tmp_path, "loss")


def test_distill_on_policy_killed_rank_then_two_ranks_resume(dist_base, tmp_path):
    out = tmp_path / "distill_on_policy"
    args = [*distill_on_policy_args(dist_base, tmp_path, out), "--num_train_samples", "1600", "--max_steps", "400",
            "--save_steps", "3", *FEW_STEPS[:2], *FEW_STEPS[4:]]
    resume_after_killed_rank("distill_on_policy", args, out, tmp_path, "loss")
