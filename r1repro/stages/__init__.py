"""The R1 chain as one table: every stage, the module that runs it and what the CLI, the pipeline,
the report, `r1repro check` and the Slurm planner need to know about it.

A stage's module (a trainer in r1repro/trainers/ that several stages share, or a module of its own in
this package) has
- `ARGS`: its typed args, one dataclass whose fields are the config dataclasses its recipe fills, by role
  (`run`, `data`, `eval`, `train`, `model`, its own); r1repro/stages/args.py loads a recipe into it;
- `inputs(args) -> StageInputs` (r1repro/trainers/inputs.py): the data and rewards it reads, resolved from its
  args; `run` trains on them and `r1repro check` checks them, so the stage's rules live in one place;
- `run(stage, args) -> dict`: train, save the model into args.train.output_dir, return extra fields for
  DONE.json.
r1repro/stages/runner.py does the rest (load the args, skip if done, mark done, eval). The steps of a stage
that run in processes of their own live here too: `r1repro stage-eval` (evaluate.py) and `r1repro traces`
(traces.py). Nothing below this package imports it: the trainers are named here by string only.

This module imports nothing heavy: the Slurm helpers and `r1repro check` read it without torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from dataclasses import dataclass
from types import ModuleType

# Stages without a numbered script of their own (optional in the R1 chain) run through this one,
# with the stage name as its first argument: `sbatch slurm/stage.sh dpo --config ...`.
GENERIC_SLURM_SCRIPT = "stage.sh"


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # dotted name of the module with ARGS, inputs(args) and run(stage, args)
    help: str  # one line for `r1repro --help`
    slurm_script: str = GENERIC_SLURM_SCRIPT  # file in slurm/; users call the numbered ones by name
    checkpoint: str = ""  # the model's name in the run report; default: the stage name
    grpo: bool = False  # trained with GRPOTrainer: a generation batch must hold whole prompt groups

    def __post_init__(self):
        if not self.checkpoint:
            object.__setattr__(self, "checkpoint", self.name)

    def load(self) -> ModuleType:
        # Imported on use: the table stays light, and only the stage that runs pays for TRL.
        return importlib.import_module(self.module)

    def args_type(self) -> type:
        return self.load().ARGS

    def dataclass_types(self) -> tuple:
        return part_types(self.args_type())


def part_types(args_type) -> tuple:
    """The config dataclasses a stage's args class holds, in its field order (the order TRL's parser fills
    them in, and resolved_config merges them in)."""
    hints = typing.get_type_hints(args_type)  # resolves the stage module's `from __future__` annotations
    return tuple(hints[f.name] for f in dataclasses.fields(args_type))


GRPO_TRAINER = "r1repro.trainers.grpo"
TRACE_SFT_TRAINER = "r1repro.trainers.sft"

# In pipeline order.
STAGES: dict[str, Stage] = {stage.name: stage for stage in [
    Stage("cpt", "r1repro.stages.cpt", checkpoint="base",
          help="continued pre-training on plain text; on CPU it builds the tiny base model"),
    Stage("r1zero", GRPO_TRAINER, grpo=True, slurm_script="stage0_r1zero.sh",
          help="stage 0: GRPO from a base model, R1-Zero template, rule rewards (format + accuracy)"),
    Stage("cold_start", TRACE_SFT_TRAINER, slurm_script="stage1_cold_start.sh",
          help="stage 1: readable long-CoT traces (from the R1-Zero model or a dataset), SFT of the base"),
    Stage("reasoning_rl", GRPO_TRAINER, grpo=True, slurm_script="stage2_grpo.sh",
          help="stage 2: GRPO from the cold-start model: accuracy + format + language consistency"),
    Stage("rejection_sft", TRACE_SFT_TRAINER, slurm_script="stage3_rejection_sft.sh",
          help="stage 3: sample k, verify, keep <= m correct, mix general data, SFT of the base"),
    Stage("dpo", "r1repro.stages.dpo",
          help="optional: DPO on stage 3's correct-vs-incorrect pairs"),
    Stage("all_scenario_rl", "r1repro.stages.all_scenario_rl", grpo=True, slurm_script="stage4_all_scenario_rl.sh",
          help="stage 4: GRPO over mixed prompts, rewards (rules, reward model) routed by `task`"),
    Stage("distill", TRACE_SFT_TRAINER, slurm_script="stage5_distill.sh",
          help="stage 5: SFT of a smaller student on the traces rejection_sft kept"),
    Stage("distill_on_policy", "r1repro.stages.distill_on_policy",
          help="stage 5 option: on-policy distillation (the student samples, matches the teacher)"),
]}

GRPO_STAGES = frozenset(name for name, stage in STAGES.items() if stage.grpo)
# SFT on problem/response traces (the trainer drops examples longer than max_length at load): ready ones
# (source_dataset), or sampled from source_model first by `r1repro traces STAGE` (trace_source,
# r1repro/trainers/traces.py, decides which; distill samples as cold_start and rejection_sft do).
TRACE_SFT_STAGES = tuple(name for name, stage in STAGES.items() if stage.module == TRACE_SFT_TRAINER)


def checkpoint_name(entry: str) -> str:
    """The report's name for a pipeline entry's model: a stage's checkpoint name (`cpt` -> `base`),
    else the entry's own name (e.g. `student_base`, a second cpt entry)."""
    return STAGES[entry].checkpoint if entry in STAGES else entry
