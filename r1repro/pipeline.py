"""`r1repro pipeline --config recipes/tiny/pipeline.yaml`: run the R1 chain locally, resumable.

A pipeline recipe names the stage recipes in order; every stage runs in its own process (as it
would under Slurm) with `--run_dir` passed through, so stages hand artifacts to each other via
`${run_dir}/<stage>`. A stage whose DONE.json matches its resolved config (and its inputs) is
skipped without starting a process; an interrupted stage resumes from its last checkpoint.

    run_dir: runs/tiny
    stages:
      - {name: cpt, recipe: recipes/tiny/cpt.yaml}
      - {name: r1zero, recipe: recipes/tiny/r1zero.yaml, args: [--max_steps, "40"]}
      - {name: student_base, stage: cpt, recipe: recipes/tiny/student_base.yaml}

`name` names the entry (and its checkpoint in the report); `stage` says which stage module runs it
(default: the name), so one stage can appear twice, e.g. a student's own pre-training.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from r1repro.config import (
    ConfigError,
    OldSpelling,
    expand_run_dir,
    load_recipe,
    read_recipe_file,
    with_default_output_dir,
)
from r1repro.report import write_report
from r1repro.rundir import DEFAULT_RUN_DIR, PREEMPTED_EXIT_CODE, is_done, read_done, resolved_config
from r1repro.stages import STAGES, checkpoint_name
from r1repro.stages.args import load_stage_args, parts
from r1repro.stages.evaluate import STAGE_EVAL_ENV, eval_wanted
from r1repro.studies import parse_study, run_pass_at_k_study
from r1repro.trainers.traces import samples_traces

PIPELINE_KEYS = {"run_dir", "stages", "description", "pass_at_k"}


def load_pipeline(path: str, run_dir: str | None) -> tuple[str, list[dict]]:
    return load_pipeline_recipe(path, run_dir)[:2]


def load_pipeline_recipe(path: str, run_dir: str | None) -> tuple[str, list[dict], dict]:
    """(run_dir, stages, the whole recipe)."""
    recipe = load_recipe(path, run_dir=run_dir)
    unknown = set(recipe) - PIPELINE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field '{sorted(unknown)[0]}'; a pipeline has {sorted(PIPELINE_KEYS)}")
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{path}: field 'stages' must be a non-empty list of {{name, recipe}}")
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict) or "name" not in stage or "recipe" not in stage:
            raise ConfigError(f"{path}: stages[{i}] must be a mapping with 'name' and 'recipe'")
        stage.setdefault("stage", stage["name"])
        if stage["stage"] not in STAGES:
            raise ConfigError(f"{path}: stages[{i}].stage '{stage['stage']}' is not a stage; expected one of "
                              f"{list(STAGES)}")
        if not Path(stage["recipe"]).is_file():
            raise ConfigError(f"{path}: stages[{i}].recipe {stage['recipe']} not found")
        if not isinstance(stage.get("args", []), list):
            raise ConfigError(f"{path}: stages[{i}].args must be a list of command-line arguments")
    return str(run_dir or recipe.get("run_dir") or DEFAULT_RUN_DIR), stages, recipe


def stage_args(stage: dict, run_dir: str, extra: list[str]) -> list[str]:
    """What a pipeline entry adds to its recipe, the same for `r1repro pipeline`, `r1repro check` and
    `r1repro slurm submit-pipeline`: the run_dir, the entry's own folder when its recipe names none (an
    entry that is not its stage's name, e.g. student_base running cpt, would otherwise share the stage's
    folder), the entry's args, then the caller's."""
    own = []
    if stage["name"] != stage["stage"] and read_recipe_file(stage["recipe"]).get("output_dir") is None:
        folder = expand_run_dir(with_default_output_dir({"run_dir": run_dir}, stage["name"]))["output_dir"]
        own = ["--output_dir", folder]
    return ["--run_dir", run_dir, *own, *map(str, stage.get("args", [])), *extra]


def stage_argv(stage: dict, run_dir: str, extra: list[str]) -> list[str]:
    return ["--config", stage["recipe"], *stage_args(stage, run_dir, extra)]


def stage_state(stage: dict, argv: list[str]) -> tuple[str, dict]:
    """(output_dir, resolved config) of a stage, parsed exactly as the stage process will."""
    return state_of(load_stage_args(stage["stage"], argv))


def state_of(args) -> tuple[str, dict]:
    """(output_dir, resolved config: what DONE.json fingerprints) of a stage's loaded args."""
    return args.train.output_dir, resolved_config(*parts(args))


def stage_steps(stage: str, args) -> list[list[str]]:
    """The `r1repro` commands that run a stage (before its eval), in order: `traces STAGE` first when it
    samples its traces from source_model (trace_source, r1repro/trainers/traces.py), then the stage itself."""
    return [["traces", stage], [stage]] if samples_traces(args) else [[stage]]


def _call(name: str, step: str, args: list[str]) -> int:
    """One step of a stage (trace sampling, training, eval) in a process of its own."""
    print(f"[pipeline] {name}: r1repro {step} {' '.join(args)}", flush=True)
    return subprocess.call([sys.executable, "-m", "r1repro.cli", step, *args],
                           env={**os.environ, STAGE_EVAL_ENV: "0"})


def _eval_needed(output_dir: str, eval_args) -> bool:
    done, result = Path(output_dir) / "DONE.json", Path(output_dir) / "eval.json"
    return eval_wanted(eval_args) and not (result.is_file() and result.stat().st_mtime >= done.stat().st_mtime)


def run_pipeline(path: str, run_dir: str | None = None, extra: list[str] | None = None,
                 only: list[str] | None = None) -> int:
    """Each stage as separate processes: trace sampling (a trace-SFT stage whose traces come from its
    source_model), training, then its eval, so no engine ever shares a process with a trainer and a
    failed eval leaves the stage done (the chain goes on; the exit code is then 3)."""
    run_dir, stages, recipe = load_pipeline_recipe(path, run_dir)
    study = parse_study(recipe["pass_at_k"]) if "pass_at_k" in recipe else None
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    statuses: dict[str, dict] = {}
    exit_code = 0
    for stage in stages:
        name = stage["name"]
        if only and name not in only:
            continue
        argv = stage_argv(stage, run_dir, extra or [])
        args = load_stage_args(stage["stage"], argv)
        output_dir, config = state_of(args)
        if is_done(output_dir, config):
            print(f"[pipeline] {name}: done already, skipping")
            statuses[name] = {"status": "done", "wall_s": read_done(output_dir).get("wall_s"),
                              "output_dir": output_dir, "skipped": True}
        else:
            started = time.time()
            for command, *words in stage_steps(stage["stage"], args):
                code = _call(name, command, [*words, *argv])
                if code != 0:
                    break
            wall = round(time.time() - started, 1)
            if code != 0:
                status = "preempted" if code == PREEMPTED_EXIT_CODE else "failed"
                statuses[name] = {"status": status, "wall_s": wall, "output_dir": output_dir, "exit_code": code}
                print(f"[pipeline] {name}: {status} (exit {code}); rerun the same command to resume",
                      file=sys.stderr)
                exit_code = code
                break
            statuses[name] = {"status": "done", "wall_s": wall, "output_dir": output_dir}
        if _eval_needed(output_dir, args.eval):
            code = _call(name, "stage-eval", [stage["stage"], *argv])
            statuses[name]["eval"] = "done" if code == 0 else "failed"
            if code != 0:
                print(f"[pipeline] {name}: eval failed (exit {code}); the stage stays done, the chain goes on",
                      file=sys.stderr)
                exit_code = exit_code or 3
    if study and exit_code in (0, 3) and not only:  # studies.yaml: a many-sample pass@k eval after the stages
        done = {checkpoint_name(n): s["output_dir"] for n, s in statuses.items() if s["status"] == "done"}
        statuses["pass_at_k"] = run_pass_at_k_study(run_dir, study, done)
    report_json = write_report(run_dir, stages, statuses)
    print(report_json)
    return exit_code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="r1repro pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="pipeline recipe, e.g. recipes/tiny/pipeline.yaml")
    parser.add_argument("--run-dir", help="override the pipeline's run_dir")
    parser.add_argument("--run_dir", dest="run_dir", action=OldSpelling, help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", help="run only these stages (their inputs must exist)")
    args, extra = parser.parse_known_args(argv)
    try:
        return run_pipeline(args.config, args.run_dir, extra, args.only)
    except ConfigError as err:
        print(f"r1repro pipeline: error: {err}", file=sys.stderr)
        return 2
