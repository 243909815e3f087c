"""`exact_match`: string equality of the final answer with the gold, for non-math tasks (the tiny
recipe's `general` task: uppercase / reverse / repeat a word)."""

from __future__ import annotations

import re

from .registry import register
from .text import completion_text, extract_answer

_SPACES = re.compile(r"\s+")


def normalize(text: str, ignore_case: bool = False) -> str:
    """Strip, collapse runs of whitespace to one space, optionally fold case."""
    text = _SPACES.sub(" ", text).strip()
    return text.casefold() if ignore_case else text


@register("exact_match")
def exact_match(completions, solution, ignore_case: bool = False, **kwargs) -> list[float | None]:
    """1.0 if the last `<answer>` block equals `solution` after normalisation, 0.0 otherwise (also when
    there is no answer block); None when the row has no gold. Case-sensitive by default, because
    "uppercase the word" is one of the tasks it grades."""
    out = []
    for c, gold in zip(completions, solution, strict=True):
        if gold is None:
            out.append(None)
            continue
        answer = extract_answer(completion_text(c))
        out.append(float(answer is not None and normalize(answer, ignore_case) == normalize(str(gold), ignore_case)))
    return out


def _validate(ignore_case: bool = False, **_):
    if not isinstance(ignore_case, bool):
        raise ValueError(f"ignore_case must be true or false, got {ignore_case!r}")


exact_match.validate = _validate
