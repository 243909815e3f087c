"""One config system for every stage: typed dataclasses, YAML recipes, CLI overrides.

A recipe is a flat YAML mapping whose keys are fields of the stage's dataclasses: TRL's own configs
(GRPOConfig, SFTConfig, ModelConfig, ...) plus ours below. Parsing goes through TRL's TrlParser, so
CLI flags override YAML exactly as in TRL and open-r1. On top of it we add what a user needs when a
recipe is wrong: every problem is reported as one line naming the recipe, the field and what was
expected (unknown keys get the closest valid name), before any model is loaded.

`${run_dir}` inside any string value is replaced by the parsed `run_dir` (the recipe's, or the command
line's in any spelling TRL's parser accepts), once, after parsing, so a chain of stage recipes can hand
artifacts to each other by path and `--run_dir` moves every one of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class OldSpelling(argparse.Action):
    """argparse action for a tool flag's old underscore spelling (`--run_dir` beside `--run-dir`): stores the
    value as the dashed flag does, with a one-line deprecation note on stderr. Stage commands keep TRL's
    underscore field flags; tool commands (pipeline, slurm submit-pipeline, eval, ...) use dashes."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated; use {option_string.replace('_', '-')}", file=sys.stderr)
        setattr(namespace, self.dest, values)


class ConfigError(ValueError):
    """A recipe or command-line problem, reported to the user as one line; `field` names the recipe field
    it is about when one is (`r1repro check` then skips its other checks of that field)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------------------------------
# Our dataclasses. Field names must not clash with TRL's (TrlParser merges them into one namespace).

# The run directory when neither the recipe nor the command line names one (r1repro.rundir re-exports
# it: the run-dir contract is read from there, but rundir imports this module, not the other way).
DEFAULT_RUN_DIR = "runs/tiny"


@dataclass
class RunArgs:
    run_dir: str = field(
        default=DEFAULT_RUN_DIR,
        metadata={"help": "Directory of the whole pipeline run; `${run_dir}` in recipes expands to it."})
    accelerate_config: str | None = field(
        default=None,
        metadata={"help": "accelerate config file the Slurm scripts launch with (recipes/accelerate/*.yaml)."})
    wandb_project: str | None = field(
        default=None, metadata={"help": "wandb project; wandb logs offline when WANDB_API_KEY is unset."})


@dataclass
class DataArgs:
    dataset: str = field(
        default="tiny:addition",
        metadata={"help": "tiny:<task> (built locally), a .jsonl/.json/.parquet file, or a HF dataset id."})
    dataset_config: str | None = field(default=None, metadata={"help": "HF dataset config name."})
    train_split: str = "train"
    test_split: str = "test"
    num_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training rows (tiny: generate this many)."})
    problem_column: str = field(default="problem", metadata={"help": "Column holding the question."})
    solution_column: str = field(default="solution", metadata={"help": "Column holding the gold answer."})
    prompt_template: str = field(
        default="r1zero", metadata={"help": "r1zero | tiny | chat | path to a text file with {problem}."})
    system_prompt: str | None = None


@dataclass
class RewardArgs:
    rewards: list[dict] = field(
        default_factory=lambda: [{"name": "format"}, {"name": "accuracy"}],
        metadata={"help": "Reward specs: {name|path, weight, **params}, "
                          "e.g. {path: rewards/code_tests.py:code_tests}."},
    )


# A stage recipe's eval fields (EvalArgs) live beside the one schema they fill: r1repro/evaluation/settings.py.


# --------------------------------------------------------------------------------------------------
# Loading and validation.

RUN_DIR_PATTERN = re.compile(r"\$\{run_dir\}")


def read_recipe_file(path: str | os.PathLike) -> dict:
    """The recipe file as a dict, `${run_dir}` left as written: it is expanded once, after the command line
    is parsed (expand_run_dir), so that every spelling of a run-dir flag moves every path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found")
    try:
        recipe = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(err, 'problem', err)})") from None
    if recipe is None:
        recipe = {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping of field: value, got {type(recipe).__name__}")
    return recipe


def load_recipe(path: str | os.PathLike, run_dir: str | None = None) -> dict:
    """The recipe as a dict, with `${run_dir}` expanded (run_dir from the caller, else the recipe)."""
    recipe = read_recipe_file(path)
    if run_dir:
        recipe["run_dir"] = run_dir
    return expand_run_dir(recipe)


def with_default_output_dir(values: dict, name: str) -> dict:
    """`values` with output_dir `${run_dir}/<name>` when they name none (TrainingArguments would otherwise
    write to ./trainer_output, outside the run directory)."""
    if values.get("output_dir") is not None:
        return values
    return {**values, "output_dir": "${run_dir}/" + name}


def expand_run_dir(values: dict) -> dict:
    """The one `${run_dir}` expansion, run on parsed values (YAML with the command line on top): every
    `${run_dir}` becomes values['run_dir'] (DEFAULT_RUN_DIR when unset)."""
    run_dir = str(values.get("run_dir") or DEFAULT_RUN_DIR)
    return {key: _expand(value, run_dir) for key, value in values.items()}


def _expand(value, run_dir: str):
    if isinstance(value, str):
        return RUN_DIR_PATTERN.sub(run_dir, value)
    if isinstance(value, list):
        return [_expand(v, run_dir) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, run_dir) for k, v in value.items()}
    return value


def _fields(dataclass_types) -> dict[str, dataclasses.Field]:
    fields = {}
    for dc in dataclass_types:
        for f in dataclasses.fields(dc):
            if f.init:
                fields[f.name] = f
    return fields


def _type_problem(value, annotation) -> str | None:
    """None when `value` fits `annotation`, else a short description of what was expected."""
    if isinstance(annotation, str):  # postponed annotations in some TRL dataclasses
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, a) for a in args]
        return None if any(p is None for p in problems) else " or ".join(p for p in problems if p)
    if annotation is type(None):
        return None if value is None else "null"
    if annotation is typing.Any:
        return None
    if origin is typing.Literal:
        return None if value in args else f"one of {list(args)}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        valid = [m.value for m in annotation]
        return None if value in valid or isinstance(value, annotation) else f"one of {valid}"
    if origin in (list, tuple) or annotation in (list, tuple):
        if isinstance(value, (list, tuple)):
            return None
        # TrlParser accepts a scalar for a list field (argparse nargs); so do we.
        return None if args and _type_problem(value, args[0]) is None else "a list"
    if origin is dict or annotation is dict:
        return None if isinstance(value, (dict, str)) else "a mapping"
    if annotation is bool:
        return None if isinstance(value, bool) else "true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        try:  # YAML 1.1 reads `3e-5` as a string; argparse converts it, so accept it here too
            float(value)
            return None
        except (TypeError, ValueError):
            return "a number"
    if annotation is str:
        return None if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "a string"
    return None


# transformers 5.18 renamed `gradient_checkpointing*` to `activation_checkpointing*` (the old names stay as
# deprecated aliases until v6); the versions a cluster install resolves to (vLLM pins transformers
# <5.18) know only the old names. Recipes and command lines may use either spelling: this is the one
# place that turns it into the name the installed TrainingArguments has.
RENAMED_FIELDS = (
    ("gradient_checkpointing", "activation_checkpointing"),
    ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"),
)


def installed_field_name(name: str, dataclass_types=None) -> str:
    """`name`, or its other spelling in RENAMED_FIELDS when only that one is a field of the installed
    classes (TrainingArguments when none are given). The newer spelling wins when both exist."""
    if dataclass_types is None:
        # Imported on use: this module is imported by `r1repro check`, the Slurm planner and the CLI,
        # which must not pay for torch (tests/test_check.py).
        from transformers import TrainingArguments

        dataclass_types = (TrainingArguments,)
    fields = _fields(dataclass_types)
    for old, new in RENAMED_FIELDS:
        if name in (old, new):
            return new if new in fields else old
    return name


def translate_renamed_fields(recipe: dict, dataclass_types, source: str) -> dict:
    """The recipe with renamed fields under their installed names; both spellings with different
    values is an error (the tiny recipes set both to the same value, which is fine)."""
    out = {}
    for key, value in recipe.items():
        name = installed_field_name(key, dataclass_types)
        if name in out and out[name] != value:
            raise ConfigError(f"{source}: fields '{key}' and '{name}' are two spellings of one setting with "
                              "different values; keep one", name)
        out[name] = value
    return out


def _translate_renamed_flags(argv: list[str], dataclass_types) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("--"):
            flag, eq, value = arg[2:].partition("=")
            name = flag.replace("-", "_")  # TRL's parser takes `--gradient-checkpointing` too
            installed = installed_field_name(name, dataclass_types)
            if installed != name:
                arg = f"--{installed}{eq}{value}"
        out.append(arg)
    return out


def validate_recipe(recipe: dict, dataclass_types, source: str) -> None:
    fields = _fields(dataclass_types)
    recipe = translate_renamed_fields(recipe, dataclass_types, source)
    hints = {}
    for dc in dataclass_types:
        try:
            hints.update(typing.get_type_hints(dc))
        except Exception:  # a TRL type we cannot resolve: skip type checks for it
            pass
    for key, value in recipe.items():
        if key == "env":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: field 'env' must be a mapping of environment variables", "env")
            continue
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{source}: unknown field '{key}'{hint}", key)
        expected = _type_problem(value, hints.get(key, fields[key].type))
        if expected:
            raise ConfigError(f"{source}: field '{key}' must be {expected}, got {value!r}", key)


def _dict_fields(dataclass_types) -> set[str]:
    """Fields holding a mapping (or a list of them): argparse cannot parse those, YAML can."""
    names = set()
    for dc in dataclass_types:
        try:
            hints = typing.get_type_hints(dc)
        except Exception:
            continue
        for name, hint in hints.items():
            if "dict" in str(hint).lower():
                names.add(name)
    return names


def _yaml_value(text: str):
    """CLI values for list/dict fields are YAML: --rewards '{name: accuracy, weight: 2}'."""
    return yaml.safe_load(text)


def parse_config(dataclass_types, argv: list[str] | None, *, recipe_required: bool = True, stage: str | None = None):
    """Parse `--config recipe.yaml [--field value ...]` into instances of `dataclass_types`.

    TRL's parser reads the recipe and the command line (every flag spelling it accepts: `--run_dir X`,
    `--run_dir=X`, `--run-dir X`, `--run-dir=X`); `${run_dir}` is expanded once, afterwards, with the
    run_dir it parsed. With `stage`, output_dir defaults to `${run_dir}/<stage>`.
    Returns (instances tuple, recipe dict as given). Raises ConfigError with one line on any problem.
    """
    from trl import TrlParser  # on use, as in installed_field_name: trl imports torch

    argv = list(argv or [])
    recipe, source = {}, "command line"
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise ConfigError("--config needs a recipe path")
        source = argv[i + 1]
        del argv[i : i + 2]
        recipe = read_recipe_file(source)
    elif recipe_required:
        raise ConfigError("missing --config recipe.yaml (see recipes/tiny/ for examples)")
    recipe = translate_renamed_fields(recipe, dataclass_types, source)
    argv = _translate_renamed_flags(argv, dataclass_types)
    validate_recipe(recipe, dataclass_types, source)
    if stage and "output_dir" in _fields(dataclass_types):
        recipe = with_default_output_dir(recipe, stage)
    env = recipe.pop("env", {})
    # Set before parsing, where TRL's __post_init__ may read them; a value naming ${run_dir} waits for the
    # parsed run_dir.
    for key, value in env.items():
        if not RUN_DIR_PATTERN.search(str(value)):
            os.environ.setdefault(key, str(value))

    parser = TrlParser(dataclass_types, allow_abbrev=False)  # --max_step must not silently mean --max_steps
    yaml_fields = _dict_fields(dataclass_types)
    for action in parser._actions:
        if action.dest in yaml_fields:
            action.type = _yaml_value

    def error(message: str):
        raise ConfigError(f"command line: {message}")

    parser.error = error
    parser.set_defaults_with_config(**recipe)
    try:
        *instances, unknown = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:  # raised by a dataclass __post_init__ (e.g. TRL's batch checks)
        raise ConfigError(f"{source}: {str(err).splitlines()[0]}") from None
    if unknown:
        flag = next((u for u in unknown if u.startswith("--")), unknown[0])
        close = difflib.get_close_matches(flag.lstrip("-"), list(_fields(dataclass_types)), n=1, cutoff=0.6)
        hint = f"; did you mean '--{close[0]}'?" if close else ""
        raise ConfigError(f"command line: unknown argument '{flag}'{hint}")
    _flatten_cli_lists(instances, yaml_fields)
    parsed = _expand_instances(instances)
    _check_output_in_run_dir(parsed, recipe, source)
    _check_fsdp_device(parsed, source)
    for key, value in env.items():
        if RUN_DIR_PATTERN.search(str(value)):
            os.environ.setdefault(key, _expand(str(value), str(parsed.get("run_dir") or DEFAULT_RUN_DIR)))
    return tuple(instances), recipe


def _flatten_cli_lists(instances, yaml_fields: set[str]) -> None:
    """A list field given on the command line as one YAML list (`--rewards '[{name: a}, {name: b}]'`)
    arrives nested in argparse's nargs list; it means the same as `--rewards '{name: a}' '{name: b}'`."""
    for inst in instances:
        for name in yaml_fields:
            value = getattr(inst, name, None)
            if isinstance(value, list) and any(isinstance(item, list) for item in value):
                flat = [x for item in value for x in (item if isinstance(item, list) else [item])]
                setattr(inst, name, flat)


def _expand_instances(instances) -> dict:
    """Expand ${run_dir} in every parsed value, from the recipe or the command line alike, with the parsed
    run_dir. Returns the values before expansion, by field name."""
    parsed = {f.name: getattr(inst, f.name, None) for inst in instances for f in dataclasses.fields(inst)}
    expanded = expand_run_dir(parsed)
    for inst in instances:
        for f in dataclasses.fields(inst):
            value = getattr(inst, f.name, None)
            if isinstance(value, (str, list, dict)) and RUN_DIR_PATTERN.search(str(value)):
                setattr(inst, f.name, expanded[f.name])
    return parsed


def _inside(path: str, directory: str) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))


def _check_fsdp_device(parsed: dict, source: str) -> None:
    """FSDP needs GPUs (accelerate 1.15, measured 2026-12-04): under use_cpu the Trainer's `fsdp` plugin is
    dropped without a word (AcceleratorState turns it on for GPU-type devices only) and the run is plain DDP,
    and `accelerate launch` with an FSDP config raises a traceback about missing devices. Say so in one line.
    (DeepSpeed ZeRO-3 through `accelerate launch` does run on CPU.)"""
    asked = parsed.get("fsdp") or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if asked and parsed.get("use_cpu"):
        raise ConfigError(f"{source}: field 'fsdp' (or an accelerate FSDP config) needs GPUs; with use_cpu "
                          "accelerate would run plain DDP. On CPU drop it (or use a DeepSpeed config)", "fsdp")


def _check_output_in_run_dir(parsed: dict, recipe: dict, source: str) -> None:
    """A run directory given on the command line holds what the stage writes: a recipe output_dir fixed
    outside it would overwrite another run's stage. An output_dir given on the command line is the user's."""
    run_dir, output_dir = parsed.get("run_dir"), parsed.get("output_dir")
    if run_dir is None or output_dir is None or output_dir != recipe.get("output_dir"):
        return
    if os.path.abspath(str(run_dir)) == os.path.abspath(str(recipe.get("run_dir") or DEFAULT_RUN_DIR)):
        return
    output_dir = expand_run_dir({"run_dir": run_dir, "output_dir": output_dir})["output_dir"]
    if not _inside(output_dir, str(run_dir)):
        raise ConfigError(f"{source}: output_dir {output_dir} is outside the run directory {run_dir} given on the "
                          "command line; write it as ${run_dir}/<name> in the recipe, or pass --output_dir",
                          "output_dir")
