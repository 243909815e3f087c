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
import contextlib
import dataclasses
import importlib
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from r1repro.check_inputs import INPUT_CHECKS
from r1repro.config import ConfigError

HARDWARE_RE = re.compile(r"^#\s*hardware:\s*(\d+)\s*nodes?\s*x\s*(\d+)\s*GPUs?\b", re.IGNORECASE | re.MULTILINE)
# TrainingArguments checks that need the hardware to exist; a GPU shape is checked on this CPU without them.
HARDWARE_FLAGS = ("bf16", "fp16", "tf32", "bf16_full_eval", "fp16_full_eval")
GRPO_BATCH_MESSAGES = ("generation_batch_size", "must be divisible by num_generations")


@dataclass
class Report:
    path: str
    stage: str | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        message = message.removeprefix(f"{self.path}: ")
        if message not in self.errors:
            self.errors.append(message)

    def lines(self) -> list[str]:
        head = f"{self.path}: {'ok' if not self.errors else 'FAILED'}" + (f" (stage {self.stage})" if self.stage else "")
        return ([head] + [f"{self.path}: error: {e}" for e in self.errors] + [f"  {s}" for s in self.summary]
                + [f"  note: {n}" for n in self.notes])


# ------------------------------------------------------------------------------------------ entry points

def check_file(path: str, stage: str | None = None, shape: tuple[int, int] | None = None,
               overrides: list[str] | None = None, num_samples: int | None = None) -> list[Report]:
    """One report per recipe checked (a pipeline gives one per stage plus its own)."""
    from r1repro.config import load_recipe

    overrides = list(overrides or [])
    try:
        raw = load_recipe(path)
    except ConfigError as err:
        return [Report(path, stage, errors=[str(err)])]
    if stage is None and "stages" in raw:
        return check_pipeline(path, shape, overrides, num_samples)
    if stage is None and "distributed_type" in raw:
        return [check_accelerate(path)]
    stage = stage or stage_from_name(path) or stage_from_pipeline(path)
    if stage is None:
        from r1repro.stages import STAGES

        return [Report(path, errors=[f"cannot tell the stage: name the file <stage>.yaml, list it in a pipeline recipe next to it, "
                                     f"or pass --stage (one of {', '.join(STAGES)})"])]
    return [check_stage(path, stage, shape, overrides, num_samples)]


def stage_from_name(path: str) -> str | None:
    from r1repro.stages import STAGES

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
    from r1repro.pipeline import load_pipeline

    report = Report(path, "pipeline")
    try:
        run_dir, stages = load_pipeline(path, None)
    except ConfigError as err:
        report.error(str(err))
        return [report]
    reports = []
    for entry in stages:
        args = ["--run_dir", run_dir, *map(str, entry.get("args", [])), *overrides]
        sub = check_stage(entry["recipe"], entry.get("stage", entry["name"]), shape, args, num_samples)
        reports.append(sub)
        if sub.errors:
            report.error(f"stages: {entry['name']} ({entry['recipe']}) has {len(sub.errors)} problem(s)")
    report.summary.append(f"{len(stages)} stage(s): " + " -> ".join(e["name"] for e in stages) + f"; run_dir {run_dir}")
    return [report, *reports]


def check_accelerate(path: str) -> Report:
    """An accelerate config: known keys, a known distributed_type and mixed precision, a ZeRO stage."""
    import difflib

    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.utils import DistributedType

    report = Report(path, "accelerate config")
    config = yaml.safe_load(Path(path).read_text()) or {}
    known = [f.name for f in dataclasses.fields(ClusterConfig)]
    for key in config:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            report.error(f"unknown field '{key}'" + (f"; did you mean '{close[0]}'?" if close else ""))
    kinds = [d.value for d in DistributedType]
    kind = config.get("distributed_type")
    if kind not in kinds:
        report.error(f"field 'distributed_type' must be one of {kinds}, got {kind!r}")
    if config.get("mixed_precision", "no") not in ("no", "fp16", "bf16", "fp8"):
        report.error(f"field 'mixed_precision' must be no, fp16, bf16 or fp8, got {config['mixed_precision']!r}")
    for key in ("num_processes", "num_machines"):
        if not isinstance(config.get(key, 1), int) or config.get(key, 1) < 1:
            report.error(f"field '{key}' must be a positive integer, got {config[key]!r}")
    if kind == "DEEPSPEED" and (config.get("deepspeed_config") or {}).get("zero_stage") not in (0, 1, 2, 3):
        report.error("field 'deepspeed_config.zero_stage' must be 0, 1, 2 or 3")
    if kind == "FSDP" and not isinstance(config.get("fsdp_config"), dict):
        report.error("field 'fsdp_config' must be a mapping for distributed_type FSDP")
    if not report.errors:
        zero = (config.get("deepspeed_config") or {}).get("zero_stage")
        report.summary.append(f"{kind}{f' ZeRO-{zero}' if zero is not None else ''}, mixed precision {config.get('mixed_precision', 'no')}; "
                              "the Slurm scripts set the machine and process counts per job")
    return report


# ------------------------------------------------------------------------------------------ a stage recipe

def check_stage(path: str, stage: str, shape, overrides: list[str], num_samples=None) -> Report:
    from r1repro.config import validate_recipe
    from r1repro.slurm.plan import PlanError, Shape, make_plan, parse_overrides, read_recipe

    report = Report(path, stage)
    try:
        from r1repro.stages import STAGES

        module_name = STAGES[stage].module if stage in STAGES else f"r1repro.stages.{stage}"
        types = importlib.import_module(module_name).dataclass_types()
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        report.error(f"stage '{stage}' is not implemented in this checkout "
                     f"({module_name.replace('.', '/')}.py is missing)")
        return report
    try:
        raw = read_recipe(path, parse_overrides(overrides))
    except PlanError as err:
        report.error(str(err))
        return report
    try:  # unknown fields and wrong types first: the plan and the parse would trip over them less clearly
        validate_recipe(raw, types, path)
    except ConfigError as err:
        report.error(str(err))
        return report
    nodes, gpus = shape or hardware(path) or (1, 0)
    plan = None
    try:
        plan = make_plan(stage, path, overrides, Shape([f"node{i + 1}" for i in range(nodes)], gpus))
    except PlanError as err:  # names a field when the problem is one (not for the batch: it involves several)
        named = _name_field(str(err), {k: raw[k] for k in ("accelerate_config", "vllm_mode", "model_name_or_path") if k in raw})
        report.error(f"cluster {nodes} node(s) x {gpus} GPU(s): {named}")
    instances = _parse(report, types, path, raw, overrides, plan, gpus)
    config = _defaults(types) | raw
    bad = {m.group(1) for e in report.errors for m in [re.search(r"field '(\w+)'", e)] if m}
    for check in INPUT_CHECKS:
        check(report, stage, config, bad)
    if gpus and raw.get("use_cpu"):
        report.notes.append(f"use_cpu is true but the shape has {gpus} GPU(s) per node: training would ignore them")
    if instances is not None and plan is not None:
        from r1repro.rundir import resolved_config

        _summarise(report, stage, resolved_config(*instances), plan, num_samples, config)
    return report


def _parse(report: Report, types, path: str, raw: dict, overrides: list[str], plan, gpus: int):
    """Parse as the stage will, but at the plan's process count and without this machine's lack of GPUs."""
    from r1repro.config import parse_config

    argv = ["--config", path, *overrides]
    if gpus:
        argv += [a for flag in HARDWARE_FLAGS if raw.get(flag) for a in (f"--{flag}", "false")]
    try:
        with _world_size(plan.num_processes if plan else 1):
            instances, _ = parse_config(types, argv)
        return instances
    except ConfigError as err:
        message = str(err)
        if plan is None and any(m in message for m in GRPO_BATCH_MESSAGES):
            return None  # the cluster line above already explains the batch; TRL's check ran at the wrong size
        report.error(_name_field(message, raw, path))
        return None


@contextlib.contextmanager
def _world_size(n: int):
    """TRL derives the generation batch from TrainingArguments.world_size (1 here): pretend the cluster's."""
    from transformers import TrainingArguments

    original = TrainingArguments.__dict__["world_size"]
    TrainingArguments.world_size = property(lambda self: n)
    try:
        yield
    finally:
        TrainingArguments.world_size = original


def _name_field(message: str, raw: dict, path: str = "") -> str:
    """TRL's __post_init__ errors do not say which field is wrong: name the recipe field they mention."""
    if re.search(r"field '\w+'", message) or message.startswith("command line"):
        return message
    body = message.removeprefix(f"{path}: ")
    for key, value in raw.items():
        if re.search(rf"\b{re.escape(key)}\b", body) or (isinstance(value, str) and value and re.search(rf"\b{re.escape(value)}\b", body)):
            return f"field '{key}': {body}"
    return message


def _defaults(types) -> dict:
    """Field defaults of our own dataclasses (TRL's are not needed by the checks below)."""
    out = {}
    for dc in types:
        if dc.__module__.startswith("r1repro"):
            for f in dataclasses.fields(dc):
                if f.default is not dataclasses.MISSING:
                    out[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    out[f.name] = f.default_factory()
    return out


# ------------------------------------------------------------------------------------------ the summary

def _summarise(report: Report, stage: str, cfg: dict, plan, num_samples, config: dict) -> None:
    from r1repro.slurm.plan import GRPO_STAGES

    b = plan.batch
    where = f"{len(plan.nodes)} node(s) x {plan.gpus_per_node} GPU(s)" if plan.gpus_per_node else "CPU, 1 process"
    server = f"; vLLM server on {plan.vllm_node} (tensor parallel {plan.vllm_tensor_parallel_size})" if plan.vllm_node else ""
    accel = f", {plan.accelerate_config}" if plan.accelerate_config else ""
    report.summary.append(f"cluster: {where}: {plan.num_processes} training process(es) on {len(plan.train_nodes)} node(s){accel}{server}")
    unit = "completions" if stage in GRPO_STAGES else "pairs" if stage == "dpo" else "sequences"
    line = (f"batch: {b['per_device_train_batch_size']} per device x {b['num_processes']} processes x "
            f"{b['gradient_accumulation_steps']} accumulation = {b['global_batch']} {unit} per optimizer step")
    per_item = 1
    if stage in GRPO_STAGES:
        per_item = b["num_generations"]
        line += f" ({b['global_batch'] / per_item:g} prompts x {per_item} generations)"
        report.summary.append(line)
        report.summary.append(f"generation: {b['generation_batch_size']} completions ({b['prompts_per_generation']} prompts) per "
                              f"round, {cfg.get('num_iterations', 1)} update(s) each; max {cfg.get('max_completion_length')} tokens")
    else:
        report.summary.append(line)
    n = num_samples or cfg.get("num_train_samples") or _count_rows(config)
    epochs, max_steps = cfg.get("num_train_epochs"), cfg.get("max_steps") or -1
    total = None
    if max_steps > 0:
        total = max_steps
        report.summary.append(f"length: max_steps {max_steps} (num_train_epochs ignored)")
    elif n:
        per_epoch = math.ceil(n * per_item / b["global_batch"])
        if n * per_item < b["global_batch"]:
            report.notes.append(f"only {n} training rows: less than one optimizer step ({b['global_batch'] // per_item} rows per step)")
        total = math.ceil(per_epoch * epochs)
        report.summary.append(f"length: {epochs:g} epoch(s) x {per_epoch} steps ({n} training rows) = {total} optimizer steps")
    else:
        report.summary.append(f"length: {epochs:g} epoch(s) of ceil(rows x {per_item} / {b['global_batch']}) steps "
                              "(pass --num-samples N for step counts)")
    report.summary.append("learning rate: " + describe_schedule(cfg, total))


def _count_rows(config: dict) -> int | None:
    for name in ("source_dataset", "dataset", "pairs"):
        value = config.get(name)
        if isinstance(value, str) and value.endswith(".jsonl") and Path(value).is_file():
            with open(value) as f:
                return sum(1 for line in f if line.strip())
    return None


def describe_schedule(cfg: dict, total: int | None) -> str:
    """The learning-rate schedule in words, with step counts when the run length is known."""
    lr = cfg.get("learning_rate")
    kind = str(cfg.get("lr_scheduler_type") or "linear").split(".")[-1].lower()
    kwargs = cfg.get("lr_scheduler_kwargs") or {}
    warmup = cfg.get("warmup_steps") or 0
    if 0 < warmup < 1:
        steps = f" = {math.ceil(warmup * total)} steps" if total else ""
        warm = f"linear warmup over the first {warmup:.0%} of steps{steps}, then "
    elif warmup >= 1:
        warm = f"linear warmup over {int(warmup)} steps, then "
    else:
        warm = ""
    if kind == "constant":
        return f"{lr:g} constant" + (" (warmup_steps ignored: use constant_with_warmup)" if warmup else "")
    if kind == "constant_with_warmup":
        return f"{lr:g}, " + (warm + "constant" if warm else "constant (no warmup)")
    if kind == "cosine_with_min_lr":
        floor = kwargs.get("min_lr", lr * kwargs["min_lr_rate"] if "min_lr_rate" in kwargs else None)
        return f"{lr:g} peak, {warm}cosine decay to {floor:g}" if floor is not None else f"{lr:g} peak, {warm}cosine decay"
    if kind == "cosine":
        return f"{lr:g} peak, {warm}cosine decay to 0"
    if kind == "linear":
        return f"{lr:g} peak, {warm}linear decay to 0"
    return f"{lr:g} peak, {warm}{kind} schedule {kwargs or ''}".rstrip()


# ------------------------------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="r1repro check", description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("--config", required=True, help="a stage recipe, a pipeline recipe or an accelerate config")
    parser.add_argument("--stage", help="the stage the recipe is for (default: from the file name)")
    parser.add_argument("--nodes", type=int, help="cluster shape to check (default: the recipe's `# hardware:` line)")
    parser.add_argument("--gpus-per-node", type=int)
    parser.add_argument("--num-samples", type=int, help="training rows, for step counts (e.g. 800000 for R1's distillation set)")
    args, overrides = parser.parse_known_args(argv)
    from r1repro.stages import STAGES

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
        print(f"r1repro check: {sum(len(r.errors) for r in failed)} problem(s) in {len(failed)} file(s)", file=sys.stderr)
    return 1 if failed else 0
