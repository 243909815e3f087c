"""`exact_match`: string equality of the final answer with the gold, for non-math tasks (GPQA's
letter; the tiny recipe's `general` task: say / repeat a number)."""

from __future__ import annotations

import re

from .registry import register
from .text import answer_part, completion_text, extract_answer

_SPACES = re.compile(r"\s+")


def normalize(text: str, ignore_case: bool = False) -> str:
    """Strip, collapse runs of whitespace to one space, optionally fold case."""
    text = _SPACES.sub(" ", text).strip()
    return text.casefold() if ignore_case else text


@register("exact_match")
def exact_match(completions, solution, ignore_case: bool = False, tags_required: bool = True,
                **kwargs) -> list[float | None]:
    """1.0 if the last `<answer>` block equals `solution` after normalisation, 0.0 otherwise (also when
    there is no answer block); None when the row has no gold. Case-sensitive by default. With
    `tags_required: false` the answer is what a user sees (`answer_part`: the answer block, else what
    follows `</think>`, else the whole completion), for tasks answered directly, without the R1 tags."""
    out = []
    for c, gold in zip(completions, solution, strict=True):
        if gold is None:
            out.append(None)
            continue
        text = completion_text(c)
        answer = extract_answer(text) if tags_required else answer_part(text)
        out.append(float(answer is not None and normalize(answer, ignore_case) == normalize(str(gold), ignore_case)))
    return out


def _validate(ignore_case: bool = False, tags_required: bool = True, **_):
    for name, value in (("ignore_case", ignore_case), ("tags_required", tags_required)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")


exact_match.validate = _validate
