"""Stage 4, `all_scenario_rl`: GRPO over mixed reasoning and general prompts, each sample rewarded
by the functions its `task` column routes it to.

Rule rewards for reasoning (accuracy, format, language), a reward model for general prompts: on
the answer part for helpfulness, on the whole response for harmlessness (`scope` of the
`reward_model` reward). Restrict a reward to tasks with `tasks: [...]` in its spec; it then scores
None (does not apply) on other rows, which TRL ignores in the weighted sum.

When no reward model is given, one is trained first with TRL's RewardTrainer on preference pairs
for the general task (`rm_pairs`, or pairs built from the general dataset: its reference response
against a wrong answer) and saved under <output_dir>/reward_model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from r1repro.config import ConfigError

STAGE = "all_scenario_rl"


@dataclass
class AllScenarioArgs:
    general_dataset: str = field(default="tiny:general", metadata={"help": "Prompts of the general (non-reasoning) task."})
    general_fraction: float = field(default=0.5, metadata={"help": "Share of training prompts drawn from general_dataset."})
    reward_model_path: str | None = field(default=None, metadata={"help": "An existing reward model; when unset, one is trained first."})
    rm_pairs: str | None = field(default=None, metadata={"help": "JSONL of problem/chosen/rejected for the reward model."})
    rm_num_pairs: int = 1000
    rm_max_steps: int = 100
    rm_learning_rate: float = 1e-3
    rm_batch_size: int = 32


def dataclass_types():
    from r1repro.stages.grpo import dataclass_types as grpo_types

    return (*grpo_types(), AllScenarioArgs)


def wrong_answer(row: dict, rng: random.Random) -> str:
    """A plausible but wrong response to a general-task row (the rejected side of a pair)."""
    solution = row["solution"]
    candidates = [solution[::-1], solution.lower(), solution.upper(), solution.split()[0], solution + solution[-1]]
    candidates = [c for c in candidates if c != solution] or [solution + "x"]
    return f" <think> </think> <answer> {rng.choice(candidates)} </answer>"


def general_pairs(rows: list[dict], seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"problem": r["problem"], "chosen": r["response"], "rejected": wrong_answer(r, rng)} for r in rows if r.get("response")]


def train_reward_model(args: AllScenarioArgs, init_model: str, builder, output_dir: str, seed: int) -> str:
    """`builder`: the recipe's PromptBuilder, so the RM scores prompts + responses in the policy's form."""
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from r1repro.data import load_rows
    from r1repro.stages.common import MetricsJsonlCallback
    from r1repro.jsonl import read_jsonl

    rm_dir = str(Path(output_dir) / "reward_model")
    if (Path(rm_dir) / "config.json").is_file():
        return rm_dir  # trained before an interruption of the GRPO part
    if args.rm_pairs:
        pairs = read_jsonl(args.rm_pairs, required=("problem", "chosen", "rejected"))
    else:
        pairs = general_pairs(load_rows(args.general_dataset, "train", args.rm_num_pairs, seed, required=("problem", "response")), seed)
    dataset = datasets.Dataset.from_list([builder.preference_example(p["problem"], p["chosen"], p["rejected"]) for p in pairs])
    tokenizer = AutoTokenizer.from_pretrained(init_model)
    model = AutoModelForSequenceClassification.from_pretrained(init_model, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(output_dir=f"{output_dir}/rm_trainer", max_steps=args.rm_max_steps, learning_rate=args.rm_learning_rate,
                          per_device_train_batch_size=args.rm_batch_size, use_cpu=_on_cpu(), bf16=False, report_to=[],
                          save_strategy="no", logging_steps=10, seed=seed, activation_checkpointing=False, disable_tqdm=True)
    trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                            callbacks=[MetricsJsonlCallback(Path(output_dir) / "rm_trainer")])
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    trainer.train()
    trainer.save_model(rm_dir + ".tmp")
    tokenizer.save_pretrained(rm_dir + ".tmp")
    Path(rm_dir + ".tmp").rename(rm_dir)
    return rm_dir


def _on_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def mixed_rows(data_args, args: AllScenarioArgs, n: int | None, seed: int) -> list[dict]:
    from r1repro.data import dataset_rows, load_rows

    reasoning = dataset_rows(data_args, n, seed)
    n_general = int(len(reasoning) * args.general_fraction / max(1e-9, 1 - args.general_fraction))
    general = load_rows(args.general_dataset, data_args.train_split, n_general, seed)
    # Rewards are routed by the `task` column; rows that do not carry one get their source's task.
    for row in reasoning:
        row.setdefault("task", "reasoning")
    for row in general:
        row.setdefault("task", "general")
    rows = reasoning + general
    random.Random(seed).shuffle(rows)
    return rows


def run(instances, config) -> dict:
    from r1repro.prompts import builder_for
    from r1repro.stages.grpo import build_reward_funcs, run_grpo

    *grpo_instances, args = instances
    run_args, data_args, reward_args, eval_args, grpo_args, model_args = grpo_instances
    if not 0 <= args.general_fraction < 1:
        raise ConfigError(f"general_fraction: must be in [0, 1), got {args.general_fraction}")
    builder = builder_for(data_args.prompt_template, data_args.system_prompt, model_args.model_name_or_path)
    rm_dir = args.reward_model_path or train_reward_model(args, model_args.model_name_or_path, builder,
                                                          grpo_args.output_dir, grpo_args.seed)
    for spec in reward_args.rewards:  # point reward_model rewards without an explicit model at ours
        if spec.get("name") == "reward_model":
            spec.setdefault("model", rm_dir)
    funcs = build_reward_funcs(reward_args, grpo_args, builder)
    rows = mixed_rows(data_args, args, data_args.num_train_samples, grpo_args.seed)
    run_grpo(STAGE, tuple(grpo_instances), config, train_rows=rows, reward_funcs=funcs)
    return {"reward_model": rm_dir, "train_rows": len(rows)}


def main(argv=None) -> int:
    from r1repro.stages.common import run_stage_main

    return run_stage_main(STAGE, dataclass_types(), run, argv)
