"""The one schema of eval settings, EvalSettings, and a stage recipe's view of it, EvalArgs.

Every eval is configured through EvalSettings: a stage's end-of-training eval (from its recipe's `eval_*`
fields), `r1repro eval` (its YAML keys and flags are EvalSettings' field names), a published protocol's
settings (protocols.py) and the pass@k study (studies.py). EvalSettings owns each default and each rule; a
bad value raises SettingError, which each front end reports under the name its user wrote
(`field 'eval_top_p'`, `pass_at_k.top_p`, `top_p`).

A recipe keeps the field names recipes and DONE.json fingerprints already carry (`eval_num_samples`, ...);
RECIPE_FIELDS says which setting each one is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from r1repro.config import ConfigError, DataArgs
from r1repro.generation import BACKENDS


class SettingError(ConfigError):
    """A bad eval setting: `field` is its EvalSettings name, `problem` what is wrong with it
    ("must be a number in (0, 1], got 1.5")."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"{name} {problem}", name)
        self.problem = problem


@dataclass
class EvalSettings:
    template: str = DataArgs.prompt_template  # a stage's eval uses its recipe's prompt_template
    num_samples: int = 4  # samples per problem for pass@1 (R1: 64 on AIME)
    temperature: float = 0.6  # DeepSeek-R1 README
    top_p: float = 0.95  # DeepSeek-R1 README
    max_new_tokens: int = 256
    seed: int = 0
    backend: str = "hf"
    batch_size: int = 256
    pass_k: tuple[int, ...] = (1, 2, 4)  # a k above num_samples is left out of the metrics
    language: str = "en"  # expected language when a row has no `lang` column
    engine_options: dict = field(default_factory=dict)  # extra get_engine options (server: base_url, ...)
    system_prompt: str | None = None  # only for template "chat"

    def __post_init__(self):
        if isinstance(self.pass_k, list):  # YAML and JSON give a list
            self.pass_k = tuple(self.pass_k)
        for name in ("num_samples", "max_new_tokens", "batch_size"):
            value = getattr(self, name)
            _require(name, value, _is_int(value) and value >= 1, "an integer >= 1")
        _require("seed", self.seed, _is_int(self.seed), "an integer")
        _require("temperature", self.temperature, _is_number(self.temperature) and self.temperature >= 0,
                 "a number >= 0 (0 samples greedily)")
        _require("top_p", self.top_p, _is_number(self.top_p) and 0 < self.top_p <= 1, "a number in (0, 1]")
        _require("backend", self.backend, self.backend in BACKENDS, f"one of {', '.join(BACKENDS)}")
        _require("pass_k", self.pass_k, isinstance(self.pass_k, tuple) and bool(self.pass_k)
                 and all(_is_int(k) and k >= 1 for k in self.pass_k), "a non-empty list of integers >= 1")
        _require("engine_options", self.engine_options, isinstance(self.engine_options, dict), "a mapping")

    @classmethod
    def from_recipe(cls, eval_args: EvalArgs, data_args: DataArgs, seed: int = 0) -> EvalSettings:
        """A stage recipe's eval settings: its RECIPE_FIELDS, its prompt template and system prompt, and the
        stage's seed. A bad value is a ConfigError naming the recipe's field."""
        values = {name: getattr(eval_args, recipe_name) for recipe_name, name in RECIPE_FIELDS.items()}
        try:
            return cls(**values, template=data_args.prompt_template, system_prompt=data_args.system_prompt,
                       seed=seed)
        except SettingError as err:
            recipe_name = next((r for r, name in RECIPE_FIELDS.items() if name == err.field), err.field)
            raise ConfigError(f"field '{recipe_name}' {err.problem}", recipe_name) from None


def _require(name: str, value, ok: bool, expected: str) -> None:
    if not ok:
        raise SettingError(name, f"must be {expected}, got {value!r}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# The recipe's eval fields that are EvalSettings fields: recipe name -> setting. EvalArgs' other fields
# (eval_tasks, eval_num_problems) choose the rows, not how they are sampled.
RECIPE_FIELDS = {"eval_num_samples": "num_samples", "eval_temperature": "temperature", "eval_top_p": "top_p",
                 "eval_max_new_tokens": "max_new_tokens", "eval_backend": "backend"}


@dataclass
class EvalArgs:
    """The eval fields of a stage recipe (TRL's parser fills them). Those in RECIPE_FIELDS take EvalSettings'
    defaults and rules: a bad value fails when the recipe is parsed, not after training."""

    eval_tasks: list[dict] = field(
        default_factory=lambda: [
            {"name": "reasoning", "dataset": "tiny:addition", "answer_reward": "accuracy"},
            {"name": "general", "dataset": "tiny:general",
             "answer_reward": {"name": "exact_match", "tags_required": False}},
        ],
        metadata={"help": "Tasks evaluated after training: {name, dataset, answer_reward, num_samples?}."},
    )
    eval_num_problems: int = field(default=100,
                                   metadata={"help": "Test problems per eval task (0 disables the eval)."})
    eval_num_samples: int = field(default=EvalSettings.num_samples,
                                  metadata={"help": "Samples per problem for pass@1 (R1: 64 on AIME)."})
    eval_temperature: float = EvalSettings.temperature
    eval_top_p: float = EvalSettings.top_p
    eval_max_new_tokens: int = EvalSettings.max_new_tokens
    eval_backend: str = EvalSettings.backend

    def __post_init__(self):
        EvalSettings.from_recipe(self, DataArgs())
