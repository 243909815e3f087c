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
    try:
        pairs = read_jsonl(args.dpo.pairs, required=PREFERENCE_COLUMNS)
    except FileNotFoundError:
        raise ConfigError(f"pairs: {args.dpo.pairs} not found (run rejection_sft first)") from None
    except ValueError as err:
        raise ConfigError(f"pairs: {err}") from None
    if not pairs:
        raise ConfigError(f"pairs: {args.dpo.pairs} holds no pairs")
    for i, pair in enumerate(pairs, 1):
        for column in PREFERENCE_COLUMNS:
            if not isinstance(pair[column], str):
                raise ConfigError(f"pairs: {args.dpo.pairs}: row {i}: column '{column}' must be a string, "
                                  f"got {type(pair[column]).__name__}")
    model, tokenizer, peft_config = load_policy(args.model)
    builder = builder_for(args.data.prompt_template, args.data.system_prompt, args.model.model_name_or_path, tokenizer)
    dataset = datasets.Dataset.from_list(
        [builder.preference_example(p["problem"], p["chosen"], p["rejected"]) for p in pairs])
    build_trainer = partial(DPOTrainer, model=model, args=args.train, train_dataset=dataset,
                            processing_class=tokenizer, peft_config=peft_config)
    train_and_save(build_trainer, args.train, args.run, stage, tokenizer)
    return {"pairs": len(pairs)}

