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
    teacher_path = args.train.teacher_model_name_or_path
    if not teacher_path:
        raise ConfigError("teacher_model_name_or_path: required (the teacher's stage directory or model id)")
    require_stage_output(teacher_path, "teacher_model_name_or_path")
    model, tokenizer, peft_config = load_policy(args.model)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_path, dtype=args.model.dtype or "auto")
    if teacher.config.vocab_size != model.config.vocab_size:
        raise ConfigError(f"teacher_model_name_or_path: {teacher_path} has vocab size {teacher.config.vocab_size}, "
                          f"the student {model.config.vocab_size}; on-policy distillation needs a shared tokenizer")
    rows = dataset_rows(args.data, args.data.num_train_samples, args.train.seed)
    builder = builder_for(args.data.prompt_template, args.data.system_prompt, args.model.model_name_or_path, tokenizer)
    dataset = prompt_dataset(rows, builder).select_columns(["prompt"])
    build_trainer = partial(DistillationTrainer, model=model, teacher_model=teacher, args=args.train,
                            train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
    train_and_save(build_trainer, args.train, args.run, stage, tokenizer, args.data.prompt_template)
    return {}

