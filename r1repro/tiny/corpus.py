"""The tiny recipe's pre-training corpus: task problems answered in a mix of formats.

It plays the role of the web text a real base model saw: the model learns arithmetic and the
R1 tags exist in its world, but the R1-Zero format (think, then answer) is a minority habit, so
R1-Zero starts from a format reward that is low but not zero and has something to discover.
"""

from __future__ import annotations

import random

from r1repro.templates import render_prompt
from r1repro.tiny.tasks import _split_of, addition_trace, general_rows, r1_response

# Weights of the answer formats for reasoning problems. Every format with steps reads the sum off them after
# `so` (one skill, learned from all of them). The greedy base must not pick `r1` by a narrow margin: after
# `</think> ` the untagged answer starts with a fixed word ("The"), not with one of ten digits, so it beats
# `<answer>` by its whole weight; sampled at GRPO's temperature the base still writes `r1` often enough
# (about a third of its tagged answers) for R1-Zero to discover and amplify.
DEFAULT_FORMAT_MIX = {
    "r1": 0.12,  # <think> steps so N </think> <answer> N </answer>   (what R1-Zero rewards)
    "plain": 0.05,  # The answer is N.                              (direct, no trace: often wrong)
    "trace": 0.50,  # steps so N                                    (no tags)
    "answer_tag": 0.03,  # <answer> N </answer>                     (tags, no thinking: often wrong)
    "think_only": 0.30,  # <think> steps so N </think> The answer is N.  (thinks, answers untagged)
}


def reasoning_completion(a: int, b: int, fmt: str, rng: random.Random, korean_rate: float) -> str:
    answer = str(a + b)
    trace = addition_trace(a, b, rng, korean_rate)
    return {
        "r1": r1_response(trace, answer),
        "plain": f" The answer is {answer}.",
        "trace": f" {trace}",
        "answer_tag": f" <answer> {answer} </answer>",
        "think_only": f" <think> {trace} </think> The answer is {answer}.",
    }[fmt]


def build_corpus(
    num_docs: int,
    template: str,
    seed: int = 0,
    format_mix: dict[str, float] | None = None,
    korean_rate: float = 0.3,
    general_fraction: float = 0.05,
    eos: str = "",
) -> list[str]:
    """Documents `prompt + completion + eos`. Reasoning problems come from the train split's range
    of numbers but test problems are excluded, so evaluation stays held out."""
    mix = format_mix or DEFAULT_FORMAT_MIX
    unknown = set(mix) - set(DEFAULT_FORMAT_MIX)
    if unknown:
        raise ValueError(
            f"corpus_format_mix: unknown formats {sorted(unknown)}; expected {sorted(DEFAULT_FORMAT_MIX)}")
    formats, weights = zip(*mix.items())
    rng = random.Random(f"corpus-{seed}")
    general = general_rows("train", 10_000, seed)
    docs = []
    while len(docs) < num_docs:
        if rng.random() < general_fraction:
            row = general[len(docs) % len(general)]
            docs.append(render_prompt(template, row["problem"]) + row["response"] + eos)
            continue
        a, b = rng.randrange(10, 100), rng.randrange(10, 100)
        if _split_of(f"{a}+{b}") != "train":
            continue
        fmt = rng.choices(formats, weights)[0]
        problem = f"{a}+{b}"
        docs.append(render_prompt(template, problem) + reasoning_completion(a, b, fmt, rng, korean_rate) + eos)
    return docs
