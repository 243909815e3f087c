"""What a stage reads, resolved from its args: each stage module's `inputs(args)` returns a StageInputs, and
both the stage's `run` and `r1repro check` use it, so a stage's data and reward rules are written once, in the
stage (r1repro/check/inputs.py checks what it declares, without knowing stage rules)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from r1repro.rewards import resolve_reward

# A preference pair's columns (DPO's pairs, the reward model's): the prompt, the better and the worse answer.
PREFERENCE_COLUMNS = ("problem", "chosen", "rejected")


@dataclass
class StageInputs:
    # Recipe field naming a dataset or file -> the columns its rows need ("a|b": one of them).
    columns: dict[str, list[str]] = field(default_factory=dict)
    # The reward specs as the stage builds them (all_scenario_rl points reward_model rewards at its model);
    # None: the stage has no rewards.
    rewards: list | None = None
    # The reward that verifies sampled traces' answers (score_samples, r1repro/trainers/traces.py), as the spec
    # the stage resolves; None: the stage samples no traces.
    answer_reward: str | dict | None = None
    # Recipe fields naming the models whose tokenizers render prompt_template: the trained model, and the one
    # traces are sampled from when the stage samples (r1repro check reads their chat templates).
    template_models: list[str] = field(default_factory=lambda: ["model_name_or_path"])


def reward_columns(specs: list) -> list[str]:
    """Dataset columns the rewards take: parameters without a default that their specs do not set
    ("a|b" where a reward takes one of several, e.g. code_tests), and `task` for a reward restricted to tasks.
    A spec that does not resolve takes none (r1repro check reports it as a reward problem)."""
    cols = []
    for spec in specs:
        try:
            reward = resolve_reward(spec)
        except Exception:  # a plugin file may fail in any way; check_rewards reports it
            continue
        for p in inspect.signature(reward.func).parameters.values():
            if p.name not in ("completions", "prompts") and p.default is p.empty and p.name not in reward.params \
                    and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                cols.append(p.name)
        one_of = getattr(reward.func, "columns_one_of", None)  # e.g. code_tests: tests, input_output or test
        if one_of:
            cols.append("|".join(one_of))
        if reward.tasks:
            cols.append("task")
    return cols


def prompt_columns(data_args, needed: list[str]) -> list[str]:
    """The columns of `dataset` a stage needs, under the recipe's names: problem_column, and `needed` with
    `solution` read from solution_column."""
    cols = [data_args.problem_column]
    cols += [data_args.solution_column if c == "solution" else c for c in needed]
    return list(dict.fromkeys(cols))
