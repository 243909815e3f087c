"""Stage 5 option, `distill_on_policy`: on-policy distillation with TRL's DistillationTrainer.

The student samples completions for the prompts itself and is trained to match the teacher's
token distributions on them (generalised JSD: `beta` 0 = forward KL, 1 = reverse KL, TRL's default).
R1 distilled with SFT only (stage `distill`); on-policy distillation is the option later work found
cheaper per point of accuracy. Teacher and student must share a tokenizer.

`model_name_or_path` is the student's base, `teacher_model_name_or_path` the teacher (e.g.
`${run_dir}/rejection_sft`); prompts come from `dataset` like the GRPO stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from transformers import AutoModelForCausalLM
from trl import DistillationConfig, DistillationTrainer, ModelConfig

from r1repro.config import ConfigError, DataArgs, RunArgs
from r1repro.data import dataset_rows, prompt_dataset
from r1repro.evaluation.settings import EvalArgs
from r1repro.prompts import builder_for
from r1repro.rundir import require_stage_output
from r1repro.trainers.inputs import StageInputs, prompt_columns
from r1repro.trainers.training import load_policy, train_and_save


@dataclass
class DistillOnPolicyStageArgs:
    run: RunArgs
    data: DataArgs
    eval: EvalArgs
    train: DistillationConfig
    model: ModelConfig


ARGS = DistillOnPolicyStageArgs


def inputs(args: DistillOnPolicyStageArgs) -> StageInputs:
    """The prompts the student samples on (no answers: the teacher's distributions are the target)."""
    return StageInputs(columns={"dataset": prompt_columns(args.data, [])})


def run(stage: str, args: DistillOnPolicyStageArgs) -> dict:
    # Named as the trainer section below reads them.
    run_args, data_args, distill_args, model_args = args.run, args.data, args.train, args.model
    teacher_path = distill_args.teacher_model_name_or_path
    if not teacher_path:
        raise ConfigError("teacher_model_name_or_path: required (the teacher's stage directory or model id)")
    require_stage_output(teacher_path, "teacher_model_name_or_path")
    model, tokenizer, peft_config = load_policy(model_args)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_path, dtype=model_args.dtype or "auto")
    if teacher.config.vocab_size != model.config.vocab_size:
        raise ConfigError(f"teacher_model_name_or_path: {teacher_path} has vocab size {teacher.config.vocab_size}, "
                          f"the student {model.config.vocab_size}; on-policy distillation needs a shared tokenizer")
    rows = dataset_rows(data_args, data_args.num_train_samples, distill_args.seed)
    builder = builder_for(data_args.prompt_template, data_args.system_prompt, model_args.model_name_or_path, tokenizer)
    dataset = prompt_dataset(rows, builder).select_columns(["prompt"])
    build_trainer = partial(DistillationTrainer, model=model, teacher_model=teacher, args=distill_args,
                            train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
    train_and_save(build_trainer, distill_args, run_args, stage, tokenizer, data_args.prompt_template)
    return {}

