"""Submit a pipeline recipe as a chain of dependent Slurm jobs.

Each stage is one `sbatch slurm/<stage script>` with `--dependency=afterok:<previous job>` and
`--kill-on-invalid-dep=yes` (without it, dependents of a failed stage stay pending forever). Every
stage gets `--run_dir`, so `${run_dir}/<earlier stage>` inputs resolve to the same run. A last
job (slurm/report.sh) writes the run report, as `r1repro pipeline` does locally.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from r1repro.config import ConfigError
from r1repro.pipeline import load_pipeline, stage_argv
from r1repro.slurm.plan import PlanError, parse_overrides, quote
from r1repro.stages import GENERIC_SLURM_SCRIPT, STAGES

SLURM_DIR = Path(__file__).resolve().parents[2] / "slurm"


def script_for(stage: str) -> list[str]:
    if stage not in STAGES:
        raise PlanError(f"unknown stage {stage!r} in pipeline (known: {', '.join(STAGES)})")
    script = STAGES[stage].slurm_script
    # Stages without a numbered script (optional in the R1 chain) run through the generic one.
    return [str(SLURM_DIR / script)] + ([stage] if script == GENERIC_SLURM_SCRIPT else [])


def split_sbatch_args(args: list[str], stages: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """`--sbatch-arg=--time=4:00:00` goes to every job; `--sbatch-arg=r1zero:--nodes=2` to one stage."""
    common: list[str] = []
    per_stage: dict[str, list[str]] = {}
    for arg in args:
        stage, sep, option = arg.partition(":")
        if sep and not stage.startswith("-"):
            if stage not in stages:
                raise PlanError(f"--sbatch-arg {arg}: {stage} is not a stage of this pipeline ({', '.join(stages)})")
            per_stage.setdefault(stage, []).append(option)
        else:
            common.append(arg)
    return common, per_stage


def sbatch_commands(pipeline: str, run_dir: str | None, sbatch_args: list[str], stage_args: list[str],
                    only: list[str] | None = None, log_dir: str | None = None) -> list[tuple[str, list[str]]]:
    """(stage, sbatch argv) per stage; the dependency is appended at submit time."""
    try:
        run_dir, stages = load_pipeline(pipeline, run_dir)
    except ConfigError as e:
        raise PlanError(str(e)) from None
    parse_overrides(stage_args)  # fail now, not in the third job
    log_dir = log_dir or str(SLURM_DIR / "logs")
    names = [e["name"] for e in stages]
    for name in only or []:
        if name not in names:
            raise PlanError(f"--only {name}: not a stage of {pipeline} ({', '.join(names)})")
    common, per_stage = split_sbatch_args(sbatch_args, names)
    cmds = []
    for entry in stages:
        if only and entry["name"] not in only:
            continue
        # Per-stage job options (e.g. `sbatch: [--nodes=2]` for a GRPO stage with a vLLM node);
        # later options win, so the command line's overrides the recipe's.
        own = entry.get("sbatch", [])
        if not isinstance(own, list):
            raise PlanError(f"{pipeline}: stage {entry['name']}: `sbatch` must be a list of sbatch options")
        cmd = ["sbatch", "--parsable", f"--job-name=r1-{entry['name']}", f"--output={log_dir}/%x-%j.out",
               *map(str, own), *common, *per_stage.get(entry["name"], []), *script_for(entry["stage"]),
               *stage_argv(entry, str(run_dir), stage_args)]
        cmds.append((entry["name"], cmd))
    if not only:
        # Same pipeline, run_dir and extra args as the stages, so every stage is recognised as done.
        cmds.append(("report", ["sbatch", "--parsable", "--job-name=r1-report", f"--output={log_dir}/%x-%j.out",
                                *common, str(SLURM_DIR / "report.sh"), "--config", pipeline, "--run-dir",
                                str(run_dir), *stage_args]))
    return cmds


def submit(cmds: list[tuple[str, list[str]]], dry_run: bool = False) -> int:
    prev = None
    for i, (stage, cmd) in enumerate(cmds):
        if prev is not None:
            # Options must precede the script path: insert right after `sbatch --parsable`.
            cmd = cmd[:2] + [f"--dependency=afterok:{prev}", "--kill-on-invalid-dep=yes"] + cmd[2:]
        if dry_run:
            prev = f"<job {i}>"
            print(quote(cmd))
            continue
        env = dict(os.environ, R1REPRO_ROOT=str(SLURM_DIR.parent))
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"r1repro slurm: sbatch for stage {stage} failed: {r.stderr.strip() or r.stdout.strip()}",
                  file=sys.stderr)
            return 1
        prev = r.stdout.strip().split(";")[0]
        print(f"{stage}\t{prev}", flush=True)
    return 0
