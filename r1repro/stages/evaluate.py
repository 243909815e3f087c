"""Evaluate a stage's final model on the recipe's eval tasks and store <output_dir>/eval.json."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

from r1repro.config import ConfigError
from r1repro.data import load_rows
from r1repro.evaluation import EvalSettings, EvalTask, evaluate_model
from r1repro.files import write_json_atomic
from r1repro.rundir import env_without_launch, is_main_process
from r1repro.stages import STAGES
from r1repro.stages.args import load_stage_args


def evaluate_stage(model_dir: str, eval_args, data_args, seed: int = 0) -> dict:
    if eval_args.eval_num_problems <= 0 or not eval_args.eval_tasks or not is_main_process():
        return {}
    tasks = []
    for spec in eval_args.eval_tasks:
        rows = load_rows(spec["dataset"], data_args.test_split, eval_args.eval_num_problems, seed,
                         problem_column=data_args.problem_column, solution_column=data_args.solution_column)
        tasks.append(EvalTask(name=spec["name"], rows=rows, answer_reward=spec.get("answer_reward", "accuracy")))
    settings = EvalSettings.from_recipe(eval_args, data_args, seed)
    results = evaluate_model(model_dir, tasks, settings, samples_path=str(Path(model_dir) / "eval_samples.jsonl"))
    write_json_atomic(Path(model_dir) / "eval.json", results)
    for task, metrics in results.items():
        shown = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()
                          if isinstance(v, float) and "@" not in k or k == "pass@1")
        print(f"[eval] {Path(model_dir).name} {task}: {shown}")
    return results


# --------------------------------------------------------------------------------------------------
# The end-of-stage eval runs after the trainer has exited, in a process of its own: a vLLM engine
# must not start while the trainer (DeepSpeed) still holds the GPU, and a failed eval must not cost a
# finished stage its DONE.json (the afterok chain and reruns depend on it).

STAGE_EVAL_ENV = "R1REPRO_STAGE_EVAL"  # "0": the caller (pipeline, Slurm script) runs the eval itself


def eval_wanted(eval_args) -> bool:
    return eval_args.eval_num_problems > 0 and bool(eval_args.eval_tasks)


def eval_here(eval_args, output_dir: str) -> bool:
    """Whether a stage started on its own should run its eval (in a child) once it is done: one
    process (a multi-process launch leaves it to the Slurm script), not switched off by the caller,
    and no eval.json newer than DONE.json."""
    done, result = Path(output_dir) / "DONE.json", Path(output_dir) / "eval.json"
    fresh = result.is_file() and done.is_file() and result.stat().st_mtime >= done.stat().st_mtime
    return (eval_wanted(eval_args) and not fresh and os.environ.get(STAGE_EVAL_ENV, "1") != "0"
            and int(os.environ.get("WORLD_SIZE", "1")) <= 1)


def run_eval_child(stage: str, argv: list[str]) -> int:
    """`r1repro stage-eval STAGE ...` in a child process; its exit code (failures are reported, not raised)."""
    gc.collect()  # the trainer is gone; hand its memory back before another model loads
    torch = sys.modules.get("torch")  # only a process that imported torch holds a CUDA cache
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    # One process of its own (eval_here), even after a one-process trainer in TRL's vLLM colocate mode, which
    # sets the launch variables: without env_without_launch the child's accelerate met the trainer's MASTER_PORT.
    code = subprocess.call([sys.executable, "-m", "r1repro.cli", "stage-eval", stage, *argv],
                           env={**env_without_launch(), STAGE_EVAL_ENV: "0"})
    if code != 0:
        print(f"[{stage}] eval failed (exit {code}); the stage itself is done. Rerun the eval alone with: "
              f"r1repro stage-eval {stage} {' '.join(argv)}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """`r1repro stage-eval STAGE --config R [--field value ...]`: evaluate a finished stage's model on
    the recipe's eval tasks into <output_dir>/eval.json."""
    argv = list(argv or [])
    if not argv or argv[0] not in STAGES:
        print("usage: r1repro stage-eval STAGE --config recipe.yaml [--field value ...] "
              f"(STAGE one of {', '.join(STAGES)})", file=sys.stderr)
        return 2
    stage, rest = argv[0], argv[1:]
    try:
        args = load_stage_args(stage, rest)
    except ConfigError as err:
        print(f"r1repro stage-eval: error: {err}", file=sys.stderr)
        return 2
    trained = args.train
    if not (Path(trained.output_dir) / "DONE.json").is_file():
        print(f"r1repro stage-eval: error: {trained.output_dir} has no DONE.json: the {stage} stage has not finished",
              file=sys.stderr)
        return 2
    if not eval_wanted(args.eval):
        print(f"r1repro stage-eval: {stage}: eval disabled (eval_num_problems 0 or no eval_tasks)")
        return 0
    evaluate_stage(trained.output_dir, args.eval, args.data, trained.seed)
    return 0
