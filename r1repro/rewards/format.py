"""Format rewards: does the completion follow the R1-Zero protocol?

`think_opened=True` is for templates that end with `<think>` (DeepSeek-R1's chat template, or a plain
template that opens the block for the model): the completion then starts inside the chain of
thought, and we check it as if `<think>` were in front of it. A completion that opens the block again
itself is also accepted (see `text.with_think_opened`).
"""

from __future__ import annotations

import re

from .registry import register
from .text import TAGS, completion_text, with_think_opened

# Anchored: optional whitespace, the think block, whitespace, the answer block, optional whitespace,
# nothing else. Each tag must also occur exactly once, which keeps the lazy groups from spanning tags
# and the match linear in the length of the text.
_R1_FORMAT = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.S)


def is_r1_format(text: str, think_opened: bool = False) -> bool:
    text = with_think_opened(text, think_opened)
    if any(text.count(tag) != 1 for tag in TAGS):
        return False
    return _R1_FORMAT.fullmatch(text) is not None


@register("format")
def format_reward(completions, think_opened: bool = False, **kwargs) -> list[float]:
    """1.0 for exactly `<think>…</think> <answer>…</answer>` (whitespace around the tags allowed), else 0.0."""
    return [float(is_r1_format(completion_text(c), think_opened)) for c in completions]


@register("tag_count")
def tag_count(completions, think_opened: bool = False, **kwargs) -> list[float]:
    """0.25 for each of `<think>`, `</think>`, `<answer>`, `</answer>` that occurs exactly once: a dense
    signal that helps a model find the format before `format` ever fires (as in open-r1)."""
    out = []
    for c in completions:
        text = with_think_opened(completion_text(c), think_opened)
        out.append(sum(0.25 for tag in TAGS if text.count(tag) == 1))
    return out


def _validate(think_opened: bool = False, **_):
    if not isinstance(think_opened, bool):
        raise ValueError(f"think_opened must be true or false, got {think_opened!r}")


format_reward.validate = _validate
tag_count.validate = _validate
