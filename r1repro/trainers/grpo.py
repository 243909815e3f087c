"""GRPO with TRL's GRPOTrainer: the trainer of stages r1zero, reasoning_rl and all_scenario_rl.

The stages only differ in their recipes and what they feed in; the loop is TRL's. Every GRPO knob
(loss_type, beta, epsilon, epsilon_high, scale_rewards, num_generations, temperature,
mask_truncated_completions, use_vllm/vllm_mode, ...) is a GRPOConfig field set in the recipe; ours on top:
`dynamic_sampling` (DAPO's, r1repro/trainers/dynamic_sampling.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import datasets
from trl import GRPOConfig, GRPOTrainer, ModelConfig

from r1repro.config import ConfigError, DataArgs, RewardArgs, RunArgs
from r1repro.data import dataset_rows, prompt_dataset
from r1repro.evaluation.settings import EvalArgs
from r1repro.generation.vllm_sync import use_reload_sync_where_needed
from r1repro.lengths import drop_long_prompts, prompt_token_limit, report_dropped
from r1repro.prompts import builder_for
from r1repro.rewards import RewardStatsCallback, build_rewards
from r1repro.sandbox.mathpool import get_pool
from r1repro.trainers.dynamic_sampling import DynamicSamplingArgs, check_metric, parse_spec, trainer_class
from r1repro.trainers.inputs import StageInputs, prompt_columns, reward_columns
from r1repro.trainers.training import load_policy, train_and_save


@dataclass
class GRPOStageArgs:
    run: RunArgs
    data: DataArgs
    reward: RewardArgs
    eval: EvalArgs
    train: GRPOConfig
    model: ModelConfig
    dynamic: DynamicSamplingArgs


ARGS = GRPOStageArgs


def inputs(args: GRPOStageArgs) -> StageInputs:
    """The prompts' dataset, with the columns the rewards take, and the rewards."""
    return StageInputs(columns={"dataset": prompt_columns(args.data, reward_columns(args.reward.rewards))},
                       rewards=args.reward.rewards)


def build_reward_funcs(reward_specs: list, grpo_args, builder=None):
    """The stage's rewards (StageInputs.rewards); with a PromptBuilder whose prompt pre-fills `<think>`, the
    tag-reading builtins are told so (think_opened)."""
    specs = builder.reward_specs(reward_specs) if builder is not None else reward_specs
    try:
        funcs, weights = build_rewards(specs)
    except ValueError as err:
        raise ConfigError(f"rewards: {err}") from None
    if grpo_args.reward_weights is None:
        grpo_args.reward_weights = weights
    elif len(grpo_args.reward_weights) != len(funcs):
        raise ConfigError(f"reward_weights: {len(grpo_args.reward_weights)} weights for {len(funcs)} rewards")
    return funcs


def run(stage: str, args: GRPOStageArgs, train_rows=None, reward_funcs=None) -> dict:
    """Train with GRPO, save the final model into output_dir. `train_rows` and `reward_funcs`: a stage built
    on this trainer (all_scenario_rl) passes its own."""
    builder = builder_for(args.data.prompt_template, args.data.system_prompt, args.model.model_name_or_path)
    # Fail on a bad reward before loading anything.
    funcs = reward_funcs or build_reward_funcs(args.reward.rewards, args.train, builder)
    dynamic = parse_spec(args.dynamic.dynamic_sampling)
    check_metric(dynamic, [f.__name__ for f in funcs])
    if any(getattr(f, "__name__", "").startswith("accuracy") for f in funcs):
        get_pool().start()  # math-verify workers start while the model loads, not on the first batch
    model, tokenizer, peft_config = load_policy(args.model)
    if train_rows is None:
        train_rows = dataset_rows(args.data, args.data.num_train_samples, args.train.seed)
    dataset = prompt_dataset(train_rows, builder)
    dataset, dropped = drop_long_grpo_prompts(dataset, model, tokenizer, args.train)
    trainer_cls, extra = (trainer_class(), {"dynamic_sampling": dynamic}) if dynamic else (GRPOTrainer, {})
    build_trainer = partial(build_grpo_trainer, stage, trainer_cls, **extra, model=model, reward_funcs=funcs,
                            args=args.train, train_dataset=dataset, processing_class=tokenizer,
                            peft_config=peft_config)
    train_and_save(build_trainer, args.train, args.run, stage, tokenizer, args.data.prompt_template,
                   callbacks=[RewardStatsCallback()])
    return {"dropped_long_prompts": dropped}


def build_grpo_trainer(stage: str, trainer_cls, **trainer_kwargs):
    """The GRPO trainer, its vLLM weight sync switched to in-place reload where vLLM packs weights on CPU."""
    trainer = trainer_cls(**trainer_kwargs)
    if use_reload_sync_where_needed(trainer):
        print(f"{stage}: vLLM holds CPU-packed weights; syncing the policy through vLLM's in-place reload")
    return trainer


def drop_long_grpo_prompts(dataset, model, tokenizer, grpo_args):
    """Drop (and count) prompts that leave no room for max_completion_length in the model's context."""
    context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    limit = prompt_token_limit(context, grpo_args.max_completion_length, grpo_args.vllm_max_model_length)
    rows, dropped = drop_long_prompts(dataset.to_list(), tokenizer, limit)
    report_dropped("training prompts", dropped, len(dataset), limit)
    if not rows:
        raise ConfigError(f"max_completion_length: every training prompt is longer than the {limit} tokens the "
                          f"model's context ({context}) leaves; lower max_completion_length or use shorter prompts")
    return (datasets.Dataset.from_list(rows) if dropped else dataset), dropped
