"""Check a final answer pulled out by your own regular expression.

    rewards: [{path: rewards/regex_answer.py:regex_answer, pattern: "(?i)final answer:\\s*(.+)", ignore_case: true}]

For output formats other than `<answer>` tags (e.g. "Final answer: B" for multiple choice). The
last match of `pattern` wins; its first group (or the whole match) is compared with `solution` after
stripping and collapsing whitespace. No match scores `no_match_score`; a row without a gold, None.
"""

from __future__ import annotations

import re
from functools import lru_cache

from r1repro.rewards.match import normalize
from r1repro.rewards.text import completion_text


@lru_cache(maxsize=32)
def _compile(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.S)


def regex_answer(
    completions,
    solution,
    pattern: str = r"<answer>(.*?)</answer>",
    ignore_case: bool = False,
    no_match_score: float = 0.0,
    **kwargs,
) -> list[float | None]:
    regex = _compile(pattern)
    out = []
    for completion, gold in zip(completions, solution):
        if gold is None:
            out.append(None)
            continue
        matches = list(regex.finditer(completion_text(completion)))
        if not matches:
            out.append(no_match_score)
            continue
        last = matches[-1]
        answer = last.group(1) if regex.groups else last.group(0)
        out.append(float(normalize(answer, ignore_case) == normalize(str(gold), ignore_case)))
    return out


def _validate(pattern: str = r"<answer>(.*?)</answer>", **_):
    try:
        _compile(pattern)
    except re.error as e:  # checked when the recipe is loaded, not on the first batch
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {e}") from e


regex_answer.validate = _validate
