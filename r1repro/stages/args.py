"""The one recipe loader: a stage's recipe and command line, parsed once with TRL's parser, into the stage's
typed args object.

A stage module declares its args as one dataclass, `ARGS`, whose fields are the config dataclasses its
recipe fills, by role: `run` (RunArgs), `data` (DataArgs), `eval` (EvalArgs), `train` (the TrainingArguments
subclass its trainer takes), `model` (ModelConfig) and any of its own (e.g. `scenario`). Everything that
reads a recipe (the stage itself, `r1repro check`, the pipeline, `r1repro stage-eval`, `r1repro traces`)
goes through load_stage_args and reads those attributes: nobody unpacks a tuple or searches for a type.
"""

from __future__ import annotations

import dataclasses
from functools import partial

from r1repro.config import parse_config
from r1repro.stages import STAGES, part_types


def parts(args) -> tuple:
    """The config objects of a loaded args object, in field order (what resolved_config fingerprints)."""
    return tuple(getattr(args, f.name) for f in dataclasses.fields(args))


def _training_args_with(types, attrs: dict) -> tuple:
    """`types`, each TrainingArguments among them replaced by a subclass with `attrs`, for one parse alone:
    TRL's own rules and defaults still apply, and nothing global changes."""
    # Imported on use: the stage module has loaded transformers by now, and this module stays light for the
    # callers that only read the stage table (the Slurm planner imports it in sbatch scripts).
    from transformers import TrainingArguments

    return tuple(type(dc.__name__, (dc,), {**attrs, "__module__": dc.__module__, "__doc__": dc.__doc__})
                 if issubclass(dc, TrainingArguments) else dc for dc in types)


def at_world_size(types, num_processes: int) -> tuple:
    """`types`, the TrainingArguments among them answering `world_size` with num_processes.
    TRL's __post_init__ derives the generation batch from TrainingArguments.world_size, a read-only property
    that only a launched job's process state sets (1 here); the subclass answers the cluster's count."""

    def world_size(self) -> int:
        return num_processes

    return _training_args_with(types, {"world_size": property(world_size)})


def as_parsed(types) -> tuple:
    """`types`, the TrainingArguments among them without their __post_init__: the values as the parser read
    them (recipe, command line, dataclass defaults), nothing derived from them or checked against a world size."""

    def keep_as_parsed(self) -> None:
        return None

    return _training_args_with(types, {"__post_init__": keep_as_parsed})


def load_args(args_type, argv: list[str] | None, stage: str, retype=None):
    """`--config recipe.yaml [--field value ...]` parsed into an `args_type` (r1repro.config.parse_config:
    TRL's parser, `${run_dir}` expanded once, output_dir defaulting to `${run_dir}/<stage>`). `retype`, when
    given, maps the args' config dataclasses to the ones this parse fills instead (at_world_size, as_parsed):
    the one parse every loader goes through. Raises ConfigError with one line on any problem."""
    types = part_types(args_type)
    instances, _ = parse_config(retype(types) if retype else types, argv, stage=stage)
    return args_type(*instances)


def load_stage_args(stage: str, argv: list[str] | None, num_processes: int | None = None):
    """The typed args of stage `stage` (a name in STAGES) from its recipe and command line. With num_processes,
    TRL's batch rules are checked at that process count (at_world_size: the Slurm plan of a cluster shape,
    which `r1repro check` reads too)."""
    retype = None if num_processes is None else partial(at_world_size, num_processes=num_processes)
    return load_args(STAGES[stage].args_type(), argv, stage, retype)


def load_stage_layout(stage: str, argv: list[str] | None):
    """The typed args of stage `stage` as parsed, before the training args' __post_init__ (as_parsed): what
    the Slurm plan reads the job's layout from (vLLM server mode, accelerate config) to find the world size
    at which it then loads them for real (load_stage_args with num_processes). Unknown fields, wrong types and
    bad flags fail here already; what TRL derives (generation_batch_size, ...) and checks waits for that load."""
    return load_args(STAGES[stage].args_type(), argv, stage, as_parsed)
