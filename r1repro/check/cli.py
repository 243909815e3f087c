"""`r1repro check --config RECIPE [--stage S] [--nodes N --gpus-per-node G] [--num-samples N] [--field value ...]`

Validates a recipe without downloading anything or touching a GPU, and prints what it will do: every
field known and well typed (TRL's own __post_init__ checks included), the batch arithmetic for a
cluster shape (the generation batch holds whole groups once a vLLM node is set aside), files present,
rewards resolvable, the prompt template renders, dataset columns present where they can be read
locally, and, for each training stage, the effective batch, epochs and learning-rate schedule.

What the file is, decided in this order:
  1. `--stage S`: a stage recipe for stage S;
  2. a mapping with `stages:` is a pipeline recipe: each stage recipe in it is checked, with the
     pipeline's run_dir and per-stage args, as `r1repro pipeline` and `r1repro slurm submit-pipeline` run it;
  3. a mapping with `distributed_type:` is an accelerate config (recipes/accelerate/*.yaml);
  4. otherwise the file name names the stage: `<stage>.yaml` or `<stage>_<variant>.yaml`
     (r1zero.yaml, r1zero_lora.yaml, reasoning_rl.yaml); anything else asks for --stage.

The cluster shape: `--nodes/--gpus-per-node` if given, else the recipe's own hardware line, a comment
`# hardware: N node(s) x G GPU(s) ...` (every cluster recipe has one), else one CPU process. The node
and vLLM-server arithmetic is r1repro.slurm.plan's, the same code the sbatch scripts run.

Every problem is one line naming the file and the field; exit 1 if there is any, 2 for bad usage.
Nothing is downloaded: hub ids are checked for syntax only and their columns are not verified (said so
in a note); paths under the run directory are outputs of earlier stages and only reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from r1repro.check.inputs import ERROR, INPUT_CHECKS, NOTE, SUMMARY, Finding, check_dynamic_sampling, note, summary
from r1repro.check.lengths import check_lengths
from r1repro.check.summary import describe_schedule, summarise  # noqa: F401  (re-exported)
from r1repro.config import (
    ConfigError,
    expand_run_dir,
    load_recipe,
    read_recipe_file,
    validate_recipe,
    with_default_output_dir,
)
from r1repro.pipeline import load_pipeline, stage_args
from r1repro.rundir import resolved_config
from r1repro.slurm.plan import PlanError, Shape, parse_overrides, plan_and_args, stage_args_at
from r1repro.stages import STAGES, part_types
from r1repro.stages.args import parts

HARDWARE_RE = re.compile(r"^#\s*hardware:\s*(\d+)\s*nodes?\s*x\s*(\d+)\s*GPUs?\b", re.IGNORECASE | re.MULTILINE)
CHECKS = (*INPUT_CHECKS, check_lengths, check_dynamic_sampling)


@dataclass
class Report:
    """What `r1repro check` found in one file: Findings (errors, notes, summary lines), rendered by lines()."""
    path: str
    stage: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def add(self, *found: Finding) -> None:
        for finding in found:
            if finding.kind != ERROR or finding not in self.findings:
                self.findings.append(finding)

    def error(self, message: str, name: str | None = None) -> None:
        self.add(Finding(name, message.removeprefix(f"{self.path}: ")))

    def _of(self, kind: str) -> list[str]:
        return [f.message for f in self.findings if f.kind == kind]

    @property
    def errors(self) -> list[str]:
        return self._of(ERROR)

    @property
    def notes(self) -> list[str]:
        return self._of(NOTE)

    @property
    def summary(self) -> list[str]:
        return self._of(SUMMARY)

    def bad_fields(self) -> set[str]:
        """Fields with a problem reported already: the later checks skip them (one line per problem)."""
        return {f.field for f in self.findings if f.kind == ERROR and f.field}

    def lines(self) -> list[str]:
        head = f"{self.path}: {'ok' if not self.errors else 'FAILED'}" + (
            f" (stage {self.stage})" if self.stage else "")
        return ([head] + [f"{self.path}: error: {e}" for e in self.errors] + [f"  {s}" for s in self.summary]
                + [f"  note: {n}" for n in self.notes])


def _config_error(report: Report, err: ConfigError | PlanError, prefix: str = "") -> None:
    report.error(prefix + str(err).removeprefix(f"{report.path}: "), err.field)


# ------------------------------------------------------------------------------------------ entry points

def check_file(path: str, stage: str | None = None, shape: tuple[int, int] | None = None,
               overrides: list[str] | None = None, num_samples: int | None = None) -> list[Report]:
    """One report per recipe checked (a pipeline gives one per stage plus its own)."""
    overrides = list(overrides or [])
    try:
        raw = load_recipe(path)
    except ConfigError as err:
        report = Report(path, stage)
        _config_error(report, err)
        return [report]
    if stage is None and "stages" in raw:
        return check_pipeline(path, shape, overrides, num_samples)
    if stage is None and "distributed_type" in raw:
        return [check_accelerate(path)]
    stage = stage or stage_from_name(path) or stage_from_pipeline(path)
    if stage is None:
        report = Report(path)
        report.error(f"cannot tell the stage: name the file <stage>.yaml, list it in a pipeline recipe next to it, "
                     f"or pass --stage (one of {', '.join(STAGES)})")
        return [report]
    return [check_stage(path, stage, shape, overrides, num_samples)]


def stage_from_name(path: str) -> str | None:
    stem = Path(path).stem
    for stage in sorted(STAGES, key=len, reverse=True):  # reasoning_rl before a shorter prefix could match
        if stem == stage or stem.startswith((f"{stage}_", f"{stage}-")):
            return stage
    return None


def stage_from_pipeline(path: str) -> str | None:
    """The stage a pipeline recipe in the same folder runs this file as (`stage:`, default its `name:`)."""
    target = Path(path).resolve()
    for candidate in sorted(Path(path).parent.glob("*.y*ml")):
        try:
            data = yaml.safe_load(candidate.read_text())
        except (OSError, yaml.YAMLError):
            continue
        for entry in (data.get("stages") or []) if isinstance(data, dict) else []:
            if isinstance(entry, dict) and entry.get("recipe") and Path(str(entry["recipe"])).resolve() == target:
                return entry.get("stage") or entry.get("name")
    return None


def hardware(path: str) -> tuple[int, int] | None:
    """(nodes, GPUs per node) from the recipe's `# hardware:` comment, or None."""
    try:
        m = HARDWARE_RE.search(Path(path).read_text())
    except OSError:
        return None
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_pipeline(path: str, shape, overrides: list[str], num_samples) -> list[Report]:
    report = Report(path, "pipeline")
    try:
        run_dir, stages = load_pipeline(path, None)
    except ConfigError as err:
        _config_error(report, err)
        return [report]
    reports = []
    for entry in stages:
        args = stage_args(entry, run_dir, overrides)
        sub = check_stage(entry["recipe"], entry.get("stage", entry["name"]), shape, args, num_samples)
        reports.append(sub)
        if sub.errors:
            report.error(f"stages: {entry['name']} ({entry['recipe']}) has {len(sub.errors)} problem(s)", "stages")
    report.add(summary(f"{len(stages)} stage(s): " + " -> ".join(e["name"] for e in stages) + f"; run_dir {run_dir}"))
    return [report, *reports]


def check_accelerate(path: str) -> Report:
    """An accelerate config: known keys, a known distributed_type and mixed precision, a ZeRO stage."""
    # accelerate imports torch: loaded for an accelerate config only, so that `r1repro check` of anything else
    # (and the CLI that dispatches to this module) stays light.
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType

    report = Report(path, "accelerate config")
    config = yaml.safe_load(Path(path).read_text()) or {}
    known = [f.name for f in dataclasses.fields(ClusterConfig)]
    for key in config:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            report.error(f"unknown field '{key}'" + (f"; did you mean '{close[0]}'?" if close else ""), key)
    kinds = [d.value for d in DistributedType]
    kind = config.get("distributed_type")
    if kind not in kinds:
        report.error(f"field 'distributed_type' must be one of {kinds}, got {kind!r}", "distributed_type")
    if config.get("mixed_precision", "no") not in ("no", "fp16", "bf16", "fp8"):
        report.error(f"field 'mixed_precision' must be no, fp16, bf16 or fp8, got {config['mixed_precision']!r}",
                     "mixed_precision")
    for key in ("num_processes", "num_machines"):
        if not isinstance(config.get(key, 1), int) or config.get(key, 1) < 1:
            report.error(f"field '{key}' must be a positive integer, got {config[key]!r}", key)
    if kind == "DEEPSPEED" and (config.get("deepspeed_config") or {}).get("zero_stage") not in (0, 1, 2, 3):
        report.error("field 'deepspeed_config.zero_stage' must be 0, 1, 2 or 3", "deepspeed_config")
    if kind == "FSDP" and not isinstance(config.get("fsdp_config"), dict):
        report.error("field 'fsdp_config' must be a mapping for distributed_type FSDP", "fsdp_config")
    if not report.errors:
        zero = (config.get("deepspeed_config") or {}).get("zero_stage")
        report.add(summary(f"{kind}{f' ZeRO-{zero}' if zero is not None else ''}, mixed precision "
                           f"{config.get('mixed_precision', 'no')}; the Slurm scripts set the machine and process "
                           "counts per job"))
    return report


# ------------------------------------------------------------------------------------------ a stage recipe

def check_stage(path: str, stage: str, shape, overrides: list[str], num_samples=None) -> Report:
    report = Report(path, stage)
    try:
        module_name = STAGES[stage].module if stage in STAGES else f"r1repro.stages.{stage}"
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        report.error(f"stage '{stage}' is not implemented in this checkout "
                     f"({module_name.replace('.', '/')}.py is missing)")
        return report
    try:
        raw = read_recipe(path, parse_overrides(overrides), stage)
    except (ConfigError, PlanError) as err:
        _config_error(report, err)
        return report
    try:  # unknown fields and wrong types first: the plan and the parse would trip over them less clearly
        validate_recipe(raw, part_types(module.ARGS), path)
    except ConfigError as err:
        _config_error(report, err)
        return report
    nodes, gpus = shape or hardware(path) or (1, 0)
    plan = args = None
    # The stage's args as the plan loads them: TRL's own checks at the plan's process count (GRPOConfig's
    # generation batch among them); on a GPU shape the hardware flags off (r1repro.slurm.plan.stage_args_at).
    try:
        plan, args = plan_and_args(stage, path, overrides, Shape([f"node{i + 1}" for i in range(nodes)], gpus))
    except PlanError as err:
        cluster = f"cluster {nodes} node(s) x {gpus} GPU(s): "
        if isinstance(err.__cause__, ConfigError):  # the stage's own load, inside the plan: its field named
            found = _field_finding(err, raw, path)
            report.add(Finding(found.field, cluster + found.message))
        else:
            _config_error(report, err, cluster + (f"field '{err.field}': " if err.field else ""))
        # The cluster line says what is wrong; a load at the shape's process count still gives the input
        # checks the stage's values, its own errors left unsaid (they repeat the plan's).
        args = _values_without_plan(stage, path, overrides, nodes * max(gpus, 1), gpus)
    # The stage's values, defaults included; a recipe that does not load is checked on what it says.
    config = resolved_config(*parts(args)) if args is not None else raw
    stage_inputs = module.inputs(args) if args is not None else None
    bad = report.bad_fields()
    for check in CHECKS:
        report.add(*check(stage, config, bad, stage_inputs))
    if gpus and raw.get("use_cpu"):
        report.add(note("use_cpu", f"use_cpu is true but the shape has {gpus} GPU(s) per node: training would "
                                   "ignore them"))
    if args is not None and plan is not None:
        report.add(*summarise(stage, args, stage_inputs, plan, num_samples))
    return report


def read_recipe(path: str, overrides: dict[str, object], stage: str) -> dict:
    """The stage recipe as written, CLI overrides on top, output_dir defaulting to `${run_dir}/<stage>` and
    `${run_dir}` expanded, by r1repro.config's functions: the values a problem is matched to its field by,
    and what the checks read when the recipe does not load."""
    return expand_run_dir(with_default_output_dir({**read_recipe_file(path), **overrides}, stage))


def _values_without_plan(stage: str, path: str, overrides: list[str], num_processes: int, gpus: int):
    """The stage's args as a plan loads them (stage_args_at) at `num_processes`; None when they do not load."""
    try:
        return stage_args_at(stage, path, overrides, num_processes, gpus)
    except PlanError:
        return None


def _field_finding(err: ConfigError, raw: dict, path: str) -> Finding:
    """TRL's __post_init__ errors do not say which field is wrong: the recipe field whose name or value the
    message mentions is the one reported (and skipped by the later checks)."""
    message = str(err).removeprefix(f"{path}: ")
    if err.field or message.startswith("command line"):
        return Finding(err.field, message)
    for key, value in raw.items():
        if re.search(rf"\b{re.escape(key)}\b", message) or (
                isinstance(value, str) and value and re.search(rf"\b{re.escape(value)}\b", message)):
            return Finding(key, f"field '{key}': {message}")
    return Finding(None, message)


# ------------------------------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="r1repro check", description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--config", required=True, help="a stage recipe, a pipeline recipe or an accelerate config")
    parser.add_argument("--stage", help="the stage the recipe is for (default: from the file name)")
    parser.add_argument("--nodes", type=int, help="cluster shape to check (default: the recipe's `# hardware:` line)")
    parser.add_argument("--gpus-per-node", type=int)
    parser.add_argument("--num-samples", type=int,
                        help="training rows, for step counts (e.g. 800000 for R1's distillation set)")
    args, overrides = parser.parse_known_args(argv)
    if args.stage and args.stage not in STAGES:
        parser.error(f"--stage {args.stage}: not a stage (one of {', '.join(STAGES)})")
    if (args.nodes is None) != (args.gpus_per_node is None) or (args.nodes or 1) < 1 or (args.gpus_per_node or 0) < 0:
        parser.error("give --nodes N (>= 1) and --gpus-per-node G (>= 0) together")
    shape = (args.nodes, args.gpus_per_node) if args.nodes is not None else None
    reports = check_file(args.config, args.stage, shape, overrides, args.num_samples)
    for report in reports:
        print("\n".join(report.lines()))
    failed = [r for r in reports if r.errors]
    if failed:
        print(f"r1repro check: {sum(len(r.errors) for r in failed)} problem(s) in {len(failed)} file(s)",
              file=sys.stderr)
    return 1 if failed else 0
