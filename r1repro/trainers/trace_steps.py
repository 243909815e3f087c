"""Trace sampling for the trace-SFT stages (cold_start, rejection_sft, distill) as steps of their own, never
inside a trainer.

Sampling (vLLM on a cluster) must not run in the `accelerate launch` processes: every rank would
build its own engine on the same GPU and write the same file, and the trainer's memory would still
be held. So a trace-SFT stage whose traces come from `source_model` (trace_source, trainers/traces.py) runs
in three steps:

1. prompts: the recipe's training prompts, written to <output_dir>/samples/prompts.jsonl;
2. sample: `r1repro sample` on them in its own process: one shard, or one per node / job-array
   task (`--num-shards N`, shard from `--shard-index` or SLURM_ARRAY_TASK_ID), each writing
   <output_dir>/samples/samples[.shard-i-of-N].jsonl (resumable);
3. select: score and filter every shard's samples (R1's filters, trainers/traces.py) into
   samples/selected.jsonl, dpo_pairs.jsonl and traces_summary.json in output_dir.

Then the stage trains on the selected traces (plus general rows), written to traces.jsonl.
`r1repro traces STAGE --config R` runs the steps (what `r1repro pipeline` and the Slurm scripts do
before the training step); a stage started on its own
in one process runs them itself, each sampling in a child process; a multi-process training launch
without finished traces stops with one line saying which command to run. `r1repro traces` itself under
`torchrun` / `accelerate launch` (N processes) shards the sampling over them: rank 0 writes the prompts,
rank r samples shard r of N (its child pinned to the rank's GPU), and rank 0 selects once every shard is in.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import torch

from r1repro.config import ConfigError
from r1repro.data import dataset_rows
from r1repro.files import write_json_atomic
from r1repro.jsonl import read_jsonl, write_jsonl
from r1repro.prompts import builder_for
from r1repro.rundir import env_without_launch
from r1repro.trainers.traces import preference_pairs, score_samples, select_traces
from r1repro.trainers.training import sync_ranks


def samples_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "samples"


def summary_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / "traces_summary.json"


SAMPLING_FIELDS = ("source_model", "num_prompts", "samples_per_prompt", "sample_temperature", "sample_top_p",
                   "sample_max_new_tokens", "sample_backend")


def trace_inputs(trace_args, data_args, seed: int, sampling_only: bool = False) -> dict:
    """What the samples (sampling_only) or the selected traces depend on: never reused for others."""
    traces = dataclasses.asdict(trace_args)
    if sampling_only:
        traces = {k: traces[k] for k in SAMPLING_FIELDS}
    return json.loads(json.dumps({**traces, **dataclasses.asdict(data_args), "seed": seed}, default=str))


def traces_ready(trace_args, data_args, output_dir: str, seed: int) -> bool:
    path = summary_path(output_dir)
    return path.is_file() and json.loads(path.read_text()).get("inputs") == trace_inputs(trace_args, data_args, seed)


def write_prompts(trace_args, data_args, output_dir: str, seed: int) -> Path:
    """Step 1: the training prompts the traces are sampled for (every shard and the select step read
    this one file, so they agree). Samples of different inputs are removed first."""
    folder = samples_dir(output_dir)
    inputs = trace_inputs(trace_args, data_args, seed, sampling_only=True)
    if folder.is_dir() and _read_json(folder / "inputs.json") != inputs:
        shutil.rmtree(folder)
    summary_path(output_dir).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    rows = dataset_rows(data_args, trace_args.num_prompts, seed, required=("problem", "solution"))
    write_jsonl(folder / "prompts.jsonl", rows)
    write_json_atomic(folder / "inputs.json", inputs)
    return folder / "prompts.jsonl"


def _read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def sample_command(trace_args, data_args, output_dir: str, seed: int, num_shards: int | None = None,
                   shard_index: int | None = None) -> list[str]:
    """The `r1repro sample` command line for the recipe's trace settings."""
    cmd = [sys.executable, "-m", "r1repro.cli", "sample", "--model", trace_args.source_model,
           "--dataset", str(samples_dir(output_dir) / "prompts.jsonl"), "--template", data_args.prompt_template,
           "--n", str(trace_args.samples_per_prompt), "--temperature", str(trace_args.sample_temperature),
           "--top-p", str(trace_args.sample_top_p), "--max-tokens", str(trace_args.sample_max_new_tokens),
           "--seed", str(seed), "--backend", trace_args.sample_backend, "--no-progress",
           "--output", str(samples_dir(output_dir) / "samples.jsonl")]
    if data_args.system_prompt:
        cmd += ["--system-prompt", data_args.system_prompt]
    if num_shards is not None:
        cmd += ["--num-shards", str(num_shards)]
    if shard_index is not None:
        cmd += ["--shard-index", str(shard_index)]
    return cmd


def run_sampling(trace_args, data_args, output_dir: str, seed: int, num_shards: int | None = None,
                 shard_index: int | None = None, env: dict | None = None) -> None:
    """Step 2 in a child process: whatever engine it builds is gone when it exits."""
    cmd = sample_command(trace_args, data_args, output_dir, seed, num_shards, shard_index)
    print(f"[traces] r1repro {' '.join(cmd[3:])}", flush=True)
    die_with_parent = functools.partial(_die_with_parent, os.getpid()) if sys.platform == "linux" else None
    if subprocess.call(cmd, env=env, preexec_fn=die_with_parent) != 0:
        raise ConfigError(f"source_model: sampling {trace_args.source_model} failed (command above); rerun to resume")


def _die_with_parent(parent: int) -> None:
    """In the sampling child: SIGTERM when its parent dies. Measured on 2 ranks: a killed rank (and the peer
    that torchrun then stops) left its `r1repro sample` child running on as an orphan, holding the shard's
    lock and its GPU; the samples are fsynced per chunk, so the rerun resumes where it stopped."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def select_from_samples(trace_args, data_args, output_dir: str, seed: int) -> dict:
    """Step 3: every shard's samples -> samples/selected.jsonl, dpo_pairs.jsonl, traces_summary.json."""
    folder = samples_dir(output_dir)
    if not (folder / "prompts.jsonl").is_file():
        raise ConfigError(f"source_model: no {folder / 'prompts.jsonl'}: run the prompts and sampling steps first")
    if _read_json(folder / "inputs.json") != trace_inputs(trace_args, data_args, seed, sampling_only=True):
        raise ConfigError(f"source_model: the samples in {folder} were drawn with other settings; run the prompts "
                          "step again")
    prompts = read_jsonl(folder / "prompts.jsonl")
    texts: dict[str, dict[int, str]] = {str(p["id"]): {} for p in prompts}
    for path in sorted(folder.glob("samples*.jsonl")):
        for line in read_jsonl(path):
            if str(line.get("prompt_id")) in texts:
                texts[str(line["prompt_id"])][int(line["sample_index"])] = line["text"]
    k = trace_args.samples_per_prompt
    missing = [key for key, got in texts.items() if len(got) < k]
    if missing:
        raise ConfigError(f"source_model: {len(missing)} of {len(prompts)} prompts have fewer than {k} samples in "
                          f"{folder} (a shard did not finish); rerun the sampling step")
    # A chat template that pre-fills `<think>` leaves it out of every sample (r1repro.prompts).
    builder = builder_for(data_args.prompt_template, data_args.system_prompt, trace_args.source_model)
    think_opened = builder.think_opened
    records = score_samples(prompts, [[texts[str(p["id"])][i] for i in range(k)] for p in prompts], trace_args,
                            think_opened=think_opened)
    rows, counts = select_traces(records, trace_args)
    pairs = preference_pairs(records)
    write_jsonl(Path(output_dir) / "dpo_pairs.jsonl", pairs)
    write_jsonl(folder / "selected.jsonl", rows)  # the stage adds general rows and writes traces.jsonl
    summary = {"source": trace_args.source_model, "samples": len(records), "kept": len(rows), "verdicts": counts,
               "dpo_pairs": len(pairs)}
    write_json_atomic(summary_path(output_dir), {**summary, "inputs": trace_inputs(trace_args, data_args, seed)})
    print(f"[traces] {summary}", flush=True)
    return summary


def ensure_traces(trace_args, data_args, output_dir: str, seed: int) -> tuple[list[dict], dict]:
    """The sampled traces for a training stage: read when the steps ran before; else, in a single
    process, run them (sampling in a child); in a multi-process launch, one line saying what to run."""
    if not traces_ready(trace_args, data_args, output_dir, seed):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(f"source_model: no sampled traces in {output_dir}: sampling is a step of its own, run "
                              "`r1repro traces <stage> --config <recipe>` before the training launch (the Slurm "
                              "scripts and `r1repro pipeline` do)")
        write_prompts(trace_args, data_args, output_dir, seed)
        run_sampling(trace_args, data_args, output_dir, seed)
        select_from_samples(trace_args, data_args, output_dir, seed)
    summary = json.loads(summary_path(output_dir).read_text())
    summary.pop("inputs", None)
    return read_jsonl(samples_dir(output_dir) / "selected.jsonl"), summary


def rank_child_env() -> dict:
    """The sampling child's environment on one rank of a launch: no launch variables, and the rank's own GPU
    (the LOCAL_RANK-th visible one), else every rank's engine would start on GPU 0."""
    env = env_without_launch()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if not visible and "CUDA_VISIBLE_DEVICES" not in os.environ:
        visible = [str(i) for i in range(torch.cuda.device_count())]
    if visible:
        env["CUDA_VISIBLE_DEVICES"] = visible[local % len(visible)]
    return env


def sample_over_ranks(trace_args, data_args, sft_args) -> None:
    """All three steps in an N-process launch: rank 0 writes the prompts, every rank samples its shard
    (rank r: shard r of N; `take_shard` makes them disjoint and together whole), rank 0 scores and filters.
    Without this every rank would run every step: N processes rewriting prompts.jsonl and appending to one
    samples.jsonl. The ranks meet in the launch's process group (set up by the config parse, as for
    training), whose waits last at most the recipe's `ddp_timeout`: it must outlast the gap between the
    fastest and the slowest shard; a rank that dies ends the others' wait at once. Measured on CPU (gloo,
    tests/test_dist_more.py); on GPU nodes the group is NCCL and each rank holds a CUDA context beside its
    child's engine (not measured yet; the Slurm scripts shard with srun tasks instead, no group)."""
    output_dir, seed = sft_args.output_dir, sft_args.seed
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    sync_ranks(sft_args)  # the group's timeout set to ddp_timeout (transformers drops it on CPU)
    if rank == 0:
        write_prompts(trace_args, data_args, output_dir, seed)
    sft_args.distributed_state.wait_for_everyone()
    run_sampling(trace_args, data_args, output_dir, seed, world, rank, env=rank_child_env())
    sft_args.distributed_state.wait_for_everyone()
    if rank == 0:
        select_from_samples(trace_args, data_args, output_dir, seed)
