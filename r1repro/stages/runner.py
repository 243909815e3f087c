"""How a stage runs: `r1repro <stage> --config recipe.yaml [--field value ...]`.

Load the recipe into the stage's typed args (r1repro/stages/args.py), skip the stage when its DONE.json
matches the resolved config, else train (the stage module's `run`) and write DONE.json (r1repro.rundir).
The end-of-stage eval then runs in a child process (r1repro/stages/evaluate.py).
"""

from __future__ import annotations

import sys
import time

from r1repro.config import ConfigError
from r1repro.rundir import finish_stage, is_main_process, resolved_config, start_stage
from r1repro.stages import STAGES
from r1repro.stages.args import load_stage_args, parts
from r1repro.stages.evaluate import eval_here, run_eval_child
from r1repro.trainers.training import collective_failure, release_ranks, sync_ranks


def run_stage(stage: str, argv: list[str] | None = None) -> int:
    """Parse, skip if done, run, mark done, evaluate; the process's exit code."""
    module = STAGES[stage].load()
    try:
        args = load_stage_args(stage, argv)
    except ConfigError as err:
        print(f"r1repro {stage}: error: {err}", file=sys.stderr)
        return 2
    config = resolved_config(*parts(args))
    output_dir = args.train.output_dir
    if start_stage(stage, output_dir, config):
        started = time.time()
        sync_ranks(args.train)
        try:
            extra = module.run(stage, args) or {}
        except ConfigError as err:
            print(f"r1repro {stage}: error: {err}", file=sys.stderr)
            return 2
        except Exception as err:
            lost = collective_failure(err)
            if lost is None:
                raise
            print(f"r1repro {stage}: error: {lost}", file=sys.stderr, flush=True)
            return 1
        if finish_stage(output_dir, config, started, extra):  # the main process only: one line, one DONE.json
            print(f"[{stage}] done in {time.time() - started:.0f}s -> {output_dir}", flush=True)
    release_ranks()  # trained or skipped as done: every rank leaves the process group before it exits
    # The eval runs after training, in its own process; a failure there is reported but leaves the
    # finished stage (DONE.json, exit 0) alone.
    if is_main_process() and eval_here(args.eval, output_dir):
        run_eval_child(stage, list(argv or []))
    return 0
