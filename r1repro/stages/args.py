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

from r1repro.config import parse_config
from r1repro.stages import STAGES, part_types


def parts(args) -> tuple:
    """The config objects of a loaded args object, in field order (what resolved_config fingerprints)."""
    return tuple(getattr(args, f.name) for f in dataclasses.fields(args))


def at_world_size(types, num_processes: int) -> tuple:
    """`types`, the TrainingArguments among them answering `world_size` with num_processes.
    TRL's __post_init__ derives the generation batch from TrainingArguments.world_size, a read-only property
    that only a launched job's process state sets (1 here); a subclass answers the cluster's count for this
    parse alone, so TRL's own rules and defaults check the batch and nothing global changes."""
    # Imported on use: the stage module has loaded transformers by now, and this module stays light for the
    # callers that only read the stage table.
    from transformers import TrainingArguments

    def world_size(self) -> int:
        return num_processes

    return tuple(type(dc.__name__, (dc,), {"world_size": property(world_size), "__module__": dc.__module__,
                                           "__doc__": dc.__doc__})
                 if issubclass(dc, TrainingArguments) else dc for dc in types)


def load_args(args_type, argv: list[str] | None, stage: str, num_processes: int | None = None):
    """`--config recipe.yaml [--field value ...]` parsed into an `args_type` (r1repro.config.parse_config:
    TRL's parser, `${run_dir}` expanded once, output_dir defaulting to `${run_dir}/<stage>`). With
    num_processes, TRL's batch rules are checked at that process count (`r1repro check` of a cluster shape).
    Raises ConfigError with one line on any problem."""
    types = part_types(args_type)
    if num_processes is not None:
        types = at_world_size(types, num_processes)
    instances, _ = parse_config(types, argv, stage=stage)
    return args_type(*instances)


def load_stage_args(stage: str, argv: list[str] | None, num_processes: int | None = None):
    """The typed args of stage `stage` (a name in STAGES) from its recipe and command line."""
    return load_args(STAGES[stage].args_type(), argv, stage, num_processes)
