"""What every training stage shares beyond the run-directory contract (r1repro.rundir): metrics
logging, preemption and resume, tracking, and the `main` wrapper every stage module uses."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

from r1repro.config import ConfigError
from r1repro.files import write_json_atomic  # noqa: F401  (re-exported for stage modules)
from r1repro.rundir import (  # noqa: F401  (re-exported for stage modules)
    DONE_FILE,
    PREEMPTED_EXIT_CODE,
    RESOLVED_CONFIG_FILE,
    finish_stage,
    fingerprint,
    is_done,
    is_main_process,
    last_checkpoint,
    read_done,
    require_stage_output,
    resolved_config,
    start_stage,
)


class MetricsJsonlCallback(TrainerCallback):
    """Every log line also goes to <output_dir>/metrics.jsonl, whatever `report_to` says."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, "time": round(time.time(), 2), **logs}, default=str) + "\n")


class PreemptionCallback(TrainerCallback):
    """On SIGUSR1/SIGTERM (Slurm's warning before a time limit or preemption): save a checkpoint at
    the end of the current step and stop. The stage then exits with PREEMPTED_EXIT_CODE."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        print(f"[preemption] got signal {signum}: checkpointing at the end of this step", file=sys.stderr, flush=True)
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control


def setup_tracking(training_args, run_args, stage: str) -> None:
    """wandb when the recipe asks for it; offline (no network needed) when no API key is set."""
    report_to = training_args.report_to or []
    if "wandb" in report_to:
        os.environ.setdefault("WANDB_PROJECT", run_args.wandb_project or "r1repro")
        os.environ.setdefault("WANDB_DIR", str(Path(run_args.run_dir)))
        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        training_args.run_name = training_args.run_name or f"{Path(run_args.run_dir).name}-{stage}"


def train_with_resume(trainer, output_dir: str | Path, preemption: PreemptionCallback) -> None:
    """Train, resuming from the last complete checkpoint; exit PREEMPTED_EXIT_CODE if preempted."""
    resume = last_checkpoint(output_dir)
    if resume:
        print(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    if preemption.requested:
        print(f"preempted: checkpoint saved in {output_dir}; rerun the same command to resume", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)


def run_stage_main(stage: str, dataclass_types, run, argv) -> int:
    """The shared `main` of a stage module: parse, skip if done, run, mark done.

    `run(instances, config)` trains and saves the model into output_dir and returns extra fields
    for DONE.json."""
    from r1repro.config import parse_config

    try:
        instances, _ = parse_config(dataclass_types, argv)
    except ConfigError as err:
        print(f"r1repro {stage}: error: {err}", file=sys.stderr)
        return 2
    from r1repro.config import EvalArgs
    from r1repro.stages.evaluate import eval_here, run_eval_child

    config = resolved_config(*instances)
    output_dir = config["output_dir"]
    eval_args = next((i for i in instances if isinstance(i, EvalArgs)), None)
    if start_stage(stage, output_dir, config):
        started = time.time()
        try:
            extra = run(instances, config) or {}
        except ConfigError as err:
            print(f"r1repro {stage}: error: {err}", file=sys.stderr)
            return 2
        finish_stage(output_dir, config, started, extra)
        print(f"[{stage}] done in {time.time() - started:.0f}s -> {output_dir}", flush=True)
    # The eval runs after training, in its own process (r1repro/stages/evaluate.py); a failure there is
    # reported but leaves the finished stage (DONE.json, exit 0) alone.
    if eval_args is not None and is_main_process() and eval_here(eval_args, output_dir):
        run_eval_child(stage, list(argv or []))
    return 0
