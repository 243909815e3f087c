"""`r1repro <command> ...`: one entry point that dispatches to a stage or a tool.

Stages come from the stage table (r1repro/stages/__init__.py) and run through
r1repro/stages/runner.py; each tool lives in its own module with a `main(argv)` function.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys

from r1repro.stages import STAGES

TOOLS = {
    "pipeline": ("r1repro.pipeline", "run the stages of a pipeline recipe in order, resumable"),
    "eval": ("r1repro.evaluation.cli", "evaluate checkpoints on benchmarks (pass@1, cons@k, pass@k)"),
    "sample": ("r1repro.generation.cli", "sample completions to JSONL with hf / vllm / server"),
    "traces": ("r1repro.stages.traces",
               "sample a trace-SFT stage's traces from its source_model, score and filter them"),
    "stage-eval": ("r1repro.stages.evaluate", "evaluate a finished stage's model on its recipe's eval tasks"),
    "rewards": ("r1repro.rewards.cli", "list rewards, or score a JSONL file with one"),
    "check": ("r1repro.check.cli", "validate a recipe without downloading anything"),
    "slurm": ("r1repro.slurm", "plan or print the Slurm/accelerate command lines for a recipe"),
}


def usage() -> str:
    width = max(map(len, [*STAGES, *TOOLS]))
    lines = ["usage: r1repro <command> [--config recipe.yaml] [--field value ...]", "", "stages (in pipeline order):"]
    lines += [f"  {name:<{width}}  {stage.help}" for name, stage in STAGES.items()]
    lines += ["", "tools:"]
    lines += [f"  {name:<{width}}  {help}" for name, (_, help) in TOOLS.items()]
    return "\n".join(lines)


def die_with_launcher() -> None:
    """In a stage process started by torchrun (TORCHELASTIC_RUN_ID; accelerate's multi-GPU launch is torchrun
    too): SIGKILL when the launcher dies. torchrun starts each worker in a session of its own, so a Slurm that
    tracks a step by its process group (proctrack/pgid) kills the launcher but not a hung worker, which then
    outlives its step, keeps the step's output open and holds the job (docs/architecture.md, measured facts)."""
    if sys.platform != "linux" or "TORCHELASTIC_RUN_ID" not in os.environ:
        return
    launcher = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != launcher:  # the launcher died before the line above
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    # Commands are imported on dispatch only, so that `r1repro rewards list` or `r1repro check` does not
    # pay for importing torch and TRL.
    if command in STAGES:
        die_with_launcher()
        runner = importlib.import_module("r1repro.stages.runner")
        return runner.run_stage(command, rest)
    if command in TOOLS:
        module = importlib.import_module(TOOLS[command][0])
        return int(module.main(rest) or 0)
    print(f"r1repro: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
