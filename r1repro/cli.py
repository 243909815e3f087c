"""`r1repro <command> ...`: one entry point that dispatches to a stage or a tool.

Each command lives in its own module with a `main(argv)` function, imported lazily so that
`r1repro rewards list` does not pay for importing torch and TRL.
"""

from __future__ import annotations

import importlib
import sys

# The R1 chain, in pipeline order. Each module is r1repro/stages/<name>.py.
STAGES = [
    "cpt",
    "r1zero",
    "cold_start",
    "reasoning_rl",
    "rejection_sft",
    "dpo",
    "all_scenario_rl",
    "distill",
    "distill_on_policy",
]

TOOLS = {
    "pipeline": ("r1repro.pipeline", "run the stages of a pipeline recipe in order, resumable"),
    "eval": ("r1repro.evaluation.cli", "evaluate checkpoints on benchmarks (pass@1, cons@k, pass@k)"),
    "sample": ("r1repro.generation.cli", "sample completions to JSONL with hf / vllm / server"),
    "traces": ("r1repro.stages.trace_steps", "sample, score and filter the traces a cold_start / rejection_sft stage trains on"),
    "stage-eval": ("r1repro.stages.evaluate", "evaluate a finished stage's model on its recipe's eval tasks"),
    "rewards": ("r1repro.rewards.cli", "list rewards, or score a JSONL file with one"),
    "check": ("r1repro.check", "validate a recipe without downloading anything"),
    "slurm": ("r1repro.slurm", "plan or print the Slurm/accelerate command lines for a recipe"),
}


def usage() -> str:
    lines = ["usage: r1repro <command> [--config recipe.yaml] [--field value ...]", "", "stages:"]
    lines += [f"  {name}" for name in STAGES]
    lines += ["", "tools:"]
    lines += [f"  {name:<10} {help}" for name, (_, help) in TOOLS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command in STAGES:
        module_name = f"r1repro.stages.{command}"
    elif command in TOOLS:
        module_name = TOOLS[command][0]
    else:
        print(f"r1repro: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(module_name)
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
