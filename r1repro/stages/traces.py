"""`r1repro traces STAGE`: sample, score and filter the traces a trace-SFT stage trains on.

The stages are cold_start, rejection_sft and distill; one whose traces come from its source_model samples
them here (trace_source, r1repro/trainers/traces.py), one on a source_dataset has nothing to sample.

The steps themselves (prompts, sampling in a child process, selection; sharded over the ranks of a launch) are
r1repro/trainers/trace_steps.py; this command loads the stage's recipe and runs them, once or step by step.
"""

from __future__ import annotations

import argparse
import os
import sys

from r1repro.config import ConfigError
from r1repro.stages import TRACE_SFT_STAGES
from r1repro.stages.args import load_stage_args
from r1repro.trainers.trace_steps import (
    run_sampling,
    sample_over_ranks,
    select_from_samples,
    summary_path,
    traces_ready,
    write_prompts,
)
from r1repro.trainers.traces import samples_traces
from r1repro.trainers.training import collective_failure


def main(argv: list[str] | None = None) -> int:
    """`r1repro traces STAGE --config R [--prepare | --num-shards N [--shard-index I] | --select] [--field value ...]`

    Without a step flag: all three steps in this process (sampling in a child), or, in an N-process launch,
    over its ranks (`sample_over_ranks`). A Slurm job runs --prepare once, then --num-shards N on every node
    (or as a job array), then --select."""
    parser = argparse.ArgumentParser(prog="r1repro traces", description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("stage", choices=TRACE_SFT_STAGES)
    step = parser.add_mutually_exclusive_group()
    step.add_argument("--prepare", action="store_true", help="only write the prompts (step 1)")
    step.add_argument("--num-shards", type=int, help="only sample this process's shard of N (step 2)")
    step.add_argument("--select", action="store_true", help="only score and filter the sampled shards (step 3)")
    parser.add_argument("--shard-index", type=int, help="the shard (default: SLURM_ARRAY_TASK_ID, else SLURM_PROCID)")
    args, rest = parser.parse_known_args(argv)
    try:
        stage_args = load_stage_args(args.stage, rest)
        output_dir, seed = stage_args.train.output_dir, stage_args.train.seed
        main_process = int(os.environ.get("RANK", "0")) == 0  # one line for a launch of N processes, not N
        if not samples_traces(stage_args):
            if main_process:
                print(f"r1repro traces: {args.stage} trains on its source_dataset: nothing to sample")
            return 0
        if traces_ready(stage_args.traces, stage_args.data, output_dir, seed):
            if main_process:
                print(f"r1repro traces: {summary_path(output_dir)} is up to date")
            return 0
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if args.num_shards is not None:
            shard = args.shard_index
            if shard is None and "SLURM_ARRAY_TASK_ID" not in os.environ:
                # one shard per task of an srun step, or per rank of a torchrun / accelerate launch
                shard = int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0")))
            run_sampling(stage_args.traces, stage_args.data, output_dir, seed, args.num_shards, shard)
            return 0
        if world > 1 and not (args.prepare or args.select):
            sample_over_ranks(stage_args.traces, stage_args.data, stage_args.train)
            return 0
        if not main_process:
            return 0  # one writer: the main process runs a single step (--prepare / --select) for the launch
        if not args.select:
            write_prompts(stage_args.traces, stage_args.data, output_dir, seed)
        if args.prepare:
            return 0
        if not args.select:
            run_sampling(stage_args.traces, stage_args.data, output_dir, seed)
        select_from_samples(stage_args.traces, stage_args.data, output_dir, seed)
    except ConfigError as err:
        print(f"r1repro traces: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a peer of sample_over_ranks died or hung: one line, not gloo's traceback
        lost = collective_failure(err)
        if lost is None:
            raise
        print(f"r1repro traces: error: {lost}", file=sys.stderr, flush=True)
        return 1
    return 0
