"""Stage 4, `all_scenario_rl`: GRPO over mixed reasoning and general prompts, each sample rewarded
by the functions its `task` column routes it to.

Rule rewards for reasoning (accuracy, format, language), a reward model for general prompts: on
the answer part for helpfulness, on the whole response for harmlessness (`scope` of the
`reward_model` reward). Restrict a reward to tasks with `tasks: [...]` in its spec; it then scores
None (does not apply) on other rows, which TRL ignores in the weighted sum.

When no reward model is given (`reward_model_path`: a published one, e.g. a HelpSteer2-trained
reward model), one is trained first with TRL's RewardTrainer on preference pairs for the general task
and saved under <output_dir>/reward_model. The pairs are, in this order of preference: `rm_pairs` (a
JSONL of problem/chosen/rejected); real preferences in the general dataset (`rm_score_column`:
responses to the same prompt ranked by a human score, e.g. HelpSteer2's `helpfulness`); or, for the
tiny world only, its reference response against a wrong answer.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch
from accelerate.state import AcceleratorState
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardConfig, RewardTrainer

from r1repro.config import ConfigError, installed_field_name
from r1repro.data import dataset_rows, load_rows
from r1repro.jsonl import read_jsonl
from r1repro.prompts import builder_for
from r1repro.trainers import grpo
from r1repro.trainers.callbacks import MetricsJsonlCallback
from r1repro.trainers.inputs import PREFERENCE_COLUMNS, StageInputs, prompt_columns, reward_columns


@dataclass
class AllScenarioArgs:
    general_dataset: str = field(default="tiny:general", metadata={
        "help": "Prompts of the general (non-reasoning) task."})
    general_fraction: float = field(default=0.5, metadata={
        "help": "Share of training prompts drawn from general_dataset."})
    reward_model_path: str | None = field(default=None, metadata={
        "help": "An existing reward model; when unset, one is trained first."})
    rm_pairs: str | None = field(default=None, metadata={
        "help": "JSONL of problem/chosen/rejected for the reward model."})
    general_problem_column: str = field(default="problem", metadata={
        "help": "general_dataset column holding the prompt (HelpSteer2: prompt)."})
    general_response_column: str = field(default="response", metadata={
        "help": "general_dataset column holding a response (HelpSteer2: response)."})
    rm_score_column: str | None = field(default=None, metadata={
        "help": "Human score of each response (HelpSteer2: helpfulness): reward-model pairs are two responses to "
                "the same prompt, the higher-scored one chosen."})
    rm_min_score_gap: float = field(default=1.0, metadata={"help": "Smallest score difference that makes a pair."})
    rm_num_pairs: int = 1000
    rm_max_steps: int = 100
    rm_learning_rate: float = 1e-3
    rm_batch_size: int = field(default=32, metadata={"help": "Per-device batch of pairs for the reward model."})
    rm_gradient_accumulation_steps: int = 1
    rm_bf16: bool = field(default=False, metadata={
        "help": "Train the reward model in bf16 (GPUs; on CPU bf16 is slow)."})
    rm_activation_checkpointing: bool = field(default=False, metadata={
        "help": "Activation checkpointing for the reward model."})
    rm_max_length: int | None = field(default=1024, metadata={
        "help": "RewardTrainer drops (does not truncate) longer pairs."})


@dataclass
class AllScenarioStageArgs(grpo.GRPOStageArgs):
    scenario: AllScenarioArgs


ARGS = AllScenarioStageArgs
def reward_model_dir(args: AllScenarioStageArgs) -> str:
    """The reward model the general rows are scored with: reward_model_path, else the one trained here."""
    return args.scenario.reward_model_path or str(Path(args.train.output_dir) / "reward_model")


def routed_rewards(args: AllScenarioStageArgs) -> list:
    """The recipe's reward specs, reward_model rewards without a model of their own pointed at ours."""
    return [{"model": reward_model_dir(args), **spec} if isinstance(spec, dict) and spec.get("name") == "reward_model"
            else spec for spec in args.reward.rewards]


def pair_source_columns(args: AllScenarioArgs) -> tuple[str, ...]:
    """The general-dataset columns the reward model's pairs are made from, as load_rows names them (the prompt
    as `problem`, the others as in the file): none with a pairs file, the response and its human score with
    rm_score_column, else the response."""
    if args.rm_pairs:
        return ()
    scored = (args.rm_score_column,) if args.rm_score_column else ()
    return ("problem", args.general_response_column, *scored)


def inputs(args: AllScenarioStageArgs) -> StageInputs:
    """GRPO's prompts (a reward's `task` column is not needed: mixed_rows tags rows by their source), the
    general prompts, and when the reward model is trained here the rows or pairs it is trained on."""
    scenario = args.scenario
    rewards = routed_rewards(args)
    needed = [c for c in reward_columns(rewards) if c != "task"]
    columns = {"dataset": prompt_columns(args.data, needed)}
    if scenario.general_dataset and scenario.general_fraction:
        general = ["problem"]
        if not scenario.reward_model_path:
            general += pair_source_columns(scenario)
        columns["general_dataset"] = list(dict.fromkeys(
            scenario.general_problem_column if c == "problem" else c for c in general))
    if scenario.rm_pairs and not scenario.reward_model_path:
        columns["rm_pairs"] = list(PREFERENCE_COLUMNS)
    return StageInputs(columns=columns, rewards=rewards)


def wrong_answer(row: dict, rng: random.Random) -> str:
    """A plausible but wrong response to a general-task row (the rejected side of a pair), in the
    reference response's own format: the solution inside it replaced by a near miss."""
    solution = row["solution"]
    candidates = [solution[::-1], solution.lower(), solution.upper(), solution.split()[0], solution + solution[-1],
                  f"{solution} {solution}"]
    candidates = [c for c in candidates if c != solution] or [solution + "x"]
    wrong = rng.choice(candidates)
    response = row["response"]
    at = response.rfind(solution)
    return response[:at] + wrong + response[at + len(solution):] if at >= 0 else f" {wrong}"


def general_pairs(rows: list[dict], seed: int) -> list[dict]:
    """Tiny world only: the reference response against a corrupted answer."""
    rng = random.Random(seed)
    return [{"problem": r["problem"], "chosen": r["response"], "rejected": wrong_answer(r, rng)}
            for r in rows if r.get("response")]


def scored_pairs(rows: list[dict], score_column: str, min_gap: float, limit: int, seed: int) -> list[dict]:
    """Real preferences: every two responses to the same prompt whose human scores differ by at least
    `min_gap`, the higher-scored one chosen (HelpSteer2 has two scored responses per prompt)."""
    by_prompt: dict[str, list[dict]] = {}
    for row in rows:
        if row.get(score_column) is not None and row.get("response"):
            by_prompt.setdefault(row["problem"], []).append(row)
    pairs = []
    for problem, answers in by_prompt.items():
        for i, a in enumerate(answers):
            for b in answers[i + 1:]:
                gap = float(a[score_column]) - float(b[score_column])
                if abs(gap) >= min_gap and a["response"] != b["response"]:
                    chosen, rejected = (a, b) if gap > 0 else (b, a)
                    pairs.append({"problem": problem, "chosen": chosen["response"], "rejected": rejected["response"]})
    random.Random(seed).shuffle(pairs)
    return pairs[:limit]


def general_rows(args: AllScenarioArgs, split: str, n: int | None, seed: int, required=("problem",)) -> list[dict]:
    """Rows of the general dataset with its prompt / response columns renamed to problem / response."""
    try:
        rows = load_rows(args.general_dataset, split, n, seed, problem_column=args.general_problem_column,
                         required=required)
    except ValueError as err:
        raise ConfigError(f"general_dataset: {err} (general_problem_column / general_response_column map "
                          "yours)") from None
    if args.general_response_column != "response":
        for row in rows:
            if args.general_response_column in row:
                row["response"] = row.pop(args.general_response_column)
    return rows


def reward_model_pairs(args: AllScenarioArgs, seed: int) -> list[dict]:
    if args.rm_pairs:
        return read_jsonl(args.rm_pairs, required=PREFERENCE_COLUMNS)
    if args.rm_score_column:
        rows = general_rows(args, "train", None, seed, required=pair_source_columns(args))
        pairs = scored_pairs(rows, args.rm_score_column, args.rm_min_score_gap, args.rm_num_pairs, seed)
        if not pairs:
            raise ConfigError(f"rm_score_column: no two responses to one prompt in {args.general_dataset} differ by "
                              f"{args.rm_min_score_gap} in '{args.rm_score_column}'; lower rm_min_score_gap")
        return pairs
    if not args.general_dataset.startswith("tiny:"):
        raise ConfigError("reward_model_path, rm_pairs or rm_score_column: a real general dataset needs real "
                          "preferences (a published reward model, a pairs file, or a human-score column); corrupted "
                          "answers are for the tiny world")
    rows = general_rows(args, "train", args.rm_num_pairs, seed, required=pair_source_columns(args))
    return general_pairs(rows, seed)


def train_reward_model(args: AllScenarioArgs, init_model: str, builder, output_dir: str, seed: int) -> str:
    """`builder`: the recipe's PromptBuilder, so the RM scores prompts + responses in the policy's form."""
    rm_dir = str(Path(output_dir) / "reward_model")
    if (Path(rm_dir) / "config.json").is_file():
        return rm_dir  # trained before an interruption of the GRPO part
    pairs = reward_model_pairs(args, seed)
    dataset = datasets.Dataset.from_list(
        [builder.preference_example(p["problem"], p["chosen"], p["rejected"]) for p in pairs])
    tokenizer = AutoTokenizer.from_pretrained(init_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        init_model, num_labels=1, dtype=torch.bfloat16 if args.rm_bf16 else torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = RewardConfig(output_dir=f"{output_dir}/rm_trainer", max_steps=args.rm_max_steps,
                          learning_rate=args.rm_learning_rate, per_device_train_batch_size=args.rm_batch_size,
                          gradient_accumulation_steps=args.rm_gradient_accumulation_steps, use_cpu=_on_cpu(),
                          bf16=args.rm_bf16, report_to=[], save_strategy="no", logging_steps=10, seed=seed,
                          disable_tqdm=True, max_length=args.rm_max_length,  # TRL drops longer pairs
                          **{installed_field_name("activation_checkpointing"): args.rm_activation_checkpointing,
                             installed_field_name("activation_checkpointing_kwargs"): {"use_reentrant": False}})
    print(f"[all_scenario_rl] reward model: {len(pairs)} pairs (TRL drops those over rm_max_length), "
          f"bf16={args.rm_bf16}, activation checkpointing={args.rm_activation_checkpointing}", flush=True)
    trainer = RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                            callbacks=[MetricsJsonlCallback(Path(output_dir) / "rm_trainer")])
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    # Every rank saves into one staging directory (under FSDP / ZeRO-3 gathering the weights is a
    # collective; only the main process writes), which the main process then renames into place: the
    # reward model appears complete or not at all, and it has one writer (with a temporary directory per
    # rank, a rank holding only the tokenizer could replace the main process's complete one).
    staging = Path(output_dir) / ".reward_model.partial"
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)  # left by a killed run
    trainer.train()
    trainer.save_model(str(staging))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(staging))
        os.replace(staging, rm_dir)
    trainer.accelerator.wait_for_everyone()  # the other ranks load it on their first general row
    release_deepspeed_state(trainer)
    return rm_dir


def release_deepspeed_state(trainer) -> None:
    """Let the GRPO trainer that follows in this process bring its own DeepSpeed plugin: accelerate refuses a
    second Accelerator with one ("You cannot pass in a `deepspeed_plugin` when creating a second
    `Accelerator`", measured under ZeRO-3 on 2 ranks), and every TrainingArguments makes one under an
    `accelerate launch` DeepSpeed config. Clearing accelerate's shared state after the reward model's trainer
    is what transformers itself does between DeepSpeed hyperparameter trials (Trainer._hp_search_setup); the
    process group (PartialState) stays."""
    if trainer.is_deepspeed_enabled:
        trainer.accelerator.free_memory()
        AcceleratorState._reset_state()


def _on_cpu() -> bool:
    return not torch.cuda.is_available()


def mixed_rows(data_args, args: AllScenarioArgs, n: int | None, seed: int) -> list[dict]:
    reasoning = dataset_rows(data_args, n, seed)
    n_general = int(len(reasoning) * args.general_fraction / max(1e-9, 1 - args.general_fraction))
    # Several scored responses per prompt (HelpSteer2): GRPO needs each prompt once, so real data is
    # read whole and deduplicated (the tiny world generates exactly the rows asked for).
    limit = n_general if args.general_dataset.startswith("tiny:") else None
    by_problem = {row["problem"]: row for row in general_rows(args, data_args.train_split, limit, seed)}
    general = list(by_problem.values())[:n_general]
    # Rewards are routed by the `task` column; rows that do not carry one get their source's task.
    for row in reasoning:
        row.setdefault("task", "reasoning")
    for row in general:
        row.setdefault("task", "general")
    rows = reasoning + general
    random.Random(seed).shuffle(rows)
    return rows


def run(stage: str, args: AllScenarioStageArgs) -> dict:
    if not 0 <= args.scenario.general_fraction < 1:
        raise ConfigError(f"general_fraction: must be in [0, 1), got {args.scenario.general_fraction}")
    builder = builder_for(args.data.prompt_template, args.data.system_prompt, args.model.model_name_or_path)
    rm_dir = args.scenario.reward_model_path or train_reward_model(
        args.scenario, args.model.model_name_or_path, builder, args.train.output_dir, args.train.seed)
    funcs = grpo.build_reward_funcs(routed_rewards(args), args.train, builder)  # as inputs() declares them
    rows = mixed_rows(args.data, args.scenario, args.data.num_train_samples, args.train.seed)
    grpo.run(stage, args, train_rows=rows, reward_funcs=funcs)
    return {"reward_model": rm_dir, "train_rows": len(rows)}

