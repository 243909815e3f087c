"""Countdown (TinyZero): reach `target` with each of `nums` exactly once, using + - * / and parentheses.

    rewards: [{path: rewards/countdown.py:countdown, format_score: 0.1}]

Columns: `target` (a number) and `nums` (a list of integers). The equation is checked by
`r1repro.rewards.countdown.evaluate_equation`, which walks the parsed syntax tree: nothing the model
writes is ever executed. This copy adds two policies of its own: partial credit `format_score` for a
well-formed equation that misses, and `allow_unused` to accept equations that use a subset of nums.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from r1repro.rewards.countdown import evaluate_equation
from r1repro.rewards.text import completion_text, extract_answer


def countdown(completions, target, nums, format_score: float = 0.1, allow_unused: bool = False, **kwargs):
    out = []
    for completion, goal, numbers in zip(completions, target, nums):
        answer = extract_answer(completion_text(completion))
        try:
            value, used = evaluate_equation(answer or "")
        except (ValueError, SyntaxError, RecursionError):
            out.append(0.0)  # no answer, or not plain arithmetic
            continue
        available, taken = Counter(int(n) for n in numbers), Counter(used)
        fits = taken == available or (allow_unused and not taken - available)
        out.append(1.0 if fits and value == Fraction(str(goal)) else format_score)
    return out
