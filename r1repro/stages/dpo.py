"""Optional stage `dpo`: TRL's DPOTrainer on the pairs rejection sampling produced.

`pairs` points at `${run_dir}/rejection_sft/dpo_pairs.jsonl`: a correct (chosen) and an incorrect
(rejected) answer to the same prompt. Usually started from the rejection-SFT model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import datasets
from trl import DPOConfig, DPOTrainer, ModelConfig

from r1repro.config import ConfigError, DataArgs, RunArgs
from r1repro.evaluation.settings import EvalArgs
from r1repro.jsonl import read_jsonl
from r1repro.prompts import builder_for
from r1repro.trainers.inputs import PREFERENCE_COLUMNS, StageInputs
from r1repro.trainers.training import load_policy, train_and_save


@dataclass
class DpoArgs:
    pairs: str = field(default="${run_dir}/rejection_sft/dpo_pairs.jsonl",
                       metadata={"help": "JSONL with problem, chosen, rejected."})


@dataclass
class DpoStageArgs:
    run: RunArgs
    data: DataArgs
    eval: EvalArgs
    dpo: DpoArgs
    train: DPOConfig
    model: ModelConfig


ARGS = DpoStageArgs


def inputs(args: DpoStageArgs) -> StageInputs:
    return StageInputs(columns={"pairs": list(PREFERENCE_COLUMNS)})


def run(stage: str, args: DpoStageArgs) -> dict:
    # Named as the trainer section below reads them.
    run_args, data_args, dpo_args, dpo_config, model_args = args.run, args.data, args.dpo, args.train, args.model
    try:
        pairs = read_jsonl(dpo_args.pairs, required=PREFERENCE_COLUMNS)
    except FileNotFoundError:
        raise ConfigError(f"pairs: {dpo_args.pairs} not found (run rejection_sft first)") from None
    except ValueError as err:
        raise ConfigError(f"pairs: {err}") from None
    if not pairs:
        raise ConfigError(f"pairs: {dpo_args.pairs} holds no pairs")
    for i, pair in enumerate(pairs, 1):
        for column in PREFERENCE_COLUMNS:
            if not isinstance(pair[column], str):
                raise ConfigError(f"pairs: {dpo_args.pairs}: row {i}: column '{column}' must be a string, "
                                  f"got {type(pair[column]).__name__}")
    model, tokenizer, peft_config = load_policy(model_args)
    builder = builder_for(data_args.prompt_template, data_args.system_prompt, model_args.model_name_or_path, tokenizer)
    dataset = datasets.Dataset.from_list(
        [builder.preference_example(p["problem"], p["chosen"], p["rejected"]) for p in pairs])
    build_trainer = partial(DPOTrainer, model=model, args=dpo_config, train_dataset=dataset,
                            processing_class=tokenizer, peft_config=peft_config)
    train_and_save(build_trainer, dpo_config, run_args, stage, tokenizer)
    return {"pairs": len(pairs)}

