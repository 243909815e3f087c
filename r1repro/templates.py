"""Prompt templates: how a dataset's `problem` becomes the text a policy sees.

R1-Zero trains a *base* model, so it uses a plain-text template and no chat template (R1 paper,
Table 1). Later stages of the real recipe use the model's chat template; the tiny recipe keeps the
plain template throughout because its character-level model has no chat format.
"""

from __future__ import annotations

from pathlib import Path

# DeepSeek-R1 paper, Table 1 ("prompt" is replaced with the problem during training).
R1ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here "
    "</answer>. User: {problem}. Assistant:"
)

# The tiny recipe's variant: the R1-Zero frame without the instructions, which a model trained from
# scratch on a synthetic corpus cannot read anyway; the format must then be *discovered* through the
# reward, as in R1-Zero. Saves ~400 characters (tokens) per sample.
TINY_TEMPLATE = "User: {problem}. Assistant:"

# R1-Zero's template with one worked example before the problem, for small real base models: with
# `r1zero` or its chat template SmolLM2-135M-Instruct never writes the tags; with this one example it
# answers in them often enough, and its groups of samples differ in reward often enough, for GRPO to
# amplify (docs/architecture.md, measured facts). The example is a sum, like part of the task; it shows
# the format, not a way of reasoning.
R1ZERO_1SHOT_TEMPLATE = R1ZERO_TEMPLATE.replace(
    " User: {problem}. Assistant:",
    " User: What is 2 + 3? Assistant: <think> 2 + 3 = 5 </think> <answer> 5 </answer>\nUser: {problem}. Assistant:",
)

TEMPLATES = {"r1zero": R1ZERO_TEMPLATE, "r1zero_1shot": R1ZERO_1SHOT_TEMPLATE, "tiny": TINY_TEMPLATE}


def get_template(name_or_path: str) -> str:
    """A template by name (`r1zero`, `r1zero_1shot`, `tiny`), `chat` (the tokenizer's chat template), or a text file
    containing `{problem}`."""
    if name_or_path in TEMPLATES or name_or_path == "chat":
        return TEMPLATES.get(name_or_path, "chat")
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"prompt_template: {name_or_path!r} is neither a known template ({', '.join([*TEMPLATES, 'chat'])}) "
            "nor an existing file"
        )
    text = path.read_text()
    if "{problem}" not in text:
        raise ValueError(f"prompt_template: {path} must contain the placeholder {{problem}}")
    return text


def render_prompt(template: str, problem: str, system_prompt: str | None = None):
    """The policy input for one problem: a string for plain templates, a message list for `chat`
    (TRL then applies the tokenizer's chat template itself). Stages go through
    r1repro.prompts.PromptBuilder, which also renders the text engines sample from."""
    template = get_template(template)
    if template == "chat":
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return messages + [{"role": "user", "content": problem}]
    return template.replace("{problem}", problem.rstrip(". "))
