"""`accuracy`: is the final answer mathematically equal to the gold one? (math-verify, in worker processes)

The answer is the last `<answer>` block, else the last `\\boxed{}` of the completion. The gold may be a
number, raw LaTeX without `$`, a MATH-style solution containing `\\boxed{}`, or a GSM8K solution ending
in `#### N`; a gold math-verify cannot parse gives None (the sample is skipped, as in TRL). Both sides
are first cleaned as models and datasets write them (`mathtext.py`: `\\$18`, `18 dollars`, `\\frac34`,
`\\sqrt 2`, prose golds), and math-verify's malformed-operator repair is on in the workers.

Plain integers on both sides (the tiny recipe's case: "579" vs "579") are compared right here: that is
exactly what math-verify concludes for them, and it keeps a 64-completion batch well under a
millisecond. Everything else goes to the worker pool (`r1repro/sandbox/mathpool.py`), which bounds every sample by a
hard timeout.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from r1repro.sandbox.mathpool import get_pool

from .mathtext import clean_math_text, is_prose
from .registry import _bump, current_reward_name, note_timeouts, register
from .text import completion_text, extract_answer, last_boxed

_INT_RE = re.compile(r"[+-]?\d+")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+")
_SCI_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d+)")
_MATH_DELIMITERS = ("$", "\\(", "\\[", "\\boxed", "\\fbox")
_HASH_ANSWER_RE = re.compile(r"####\s*([^\n]+?)\s*$")


def gold_target(solution) -> str | None:
    """The part of a gold solution to compare with: the `#### N` tail (GSM8K), else the last `\\boxed{}`
    (MATH), else the whole string. None when there is nothing to compare with."""
    if solution is None or isinstance(solution, bool):
        return None
    if isinstance(solution, (int, float)):
        return str(solution)
    text = str(solution)
    if "####" in text:
        text = text.rsplit("####", 1)[1].strip().replace(",", "").rstrip(".")
    elif "\\boxed" in text or "\\fbox" in text:
        text = last_boxed(text) or ""
    text = text.strip()
    return text or None


def answer_target(text: str, boxed_fallback: bool = True) -> str | None:
    """The model's final answer: the last `<answer>` block, else the last `\\boxed{}`, else a final
    `#### N` line (how GSM8K-trained models end); None if none of these."""
    answer = extract_answer(text)
    if answer is None and boxed_fallback:
        answer = last_boxed(text)
        if answer is None and "####" in text:
            m = _HASH_ANSWER_RE.search(text.rstrip())
            answer = m.group(1) if m else None
    elif answer is not None and ("\\boxed" in answer or "\\fbox" in answer):
        # `<answer> \boxed{42} </answer>`: the box is the answer (and "42" can take the fast path)
        answer = last_boxed(answer) or answer
    return answer


def _plain_int(text: str) -> int | None:
    text = text.strip().strip("$").strip()
    if _INT_RE.fullmatch(text):
        return int(text)
    if _THOUSANDS_RE.fullmatch(text):
        return int(text.replace(",", ""))
    return None


def _as_math(text: str, gold: bool = False) -> str:
    """What we hand math-verify: its LaTeX extractor needs delimiters, and raw answers such as
    `\\frac{1}{2}` or `(1, 2]` have none. `1.5e3` would read as 1.5·e·3, so scientific notation is
    written out as a decimal first (exponents beyond ±100 are left alone: no million-digit strings).
    A gold that is prose ("Answer is forty two.") is left undelimited: math-verify then takes a number
    out of it if there is one ("The answer is 42."), else finds it unparseable (None), as TRL does."""
    text = text.strip().rstrip(".").strip()
    m = _SCI_RE.fullmatch(text)
    if m and abs(int(m.group(2))) <= 100:
        try:
            text = format(Decimal(text), "f")
        except InvalidOperation:
            pass
    if any(d in text for d in _MATH_DELIMITERS) or (gold and is_prose(text)):
        return text
    return f"${text}$"


def score_answers(
    golds: list, answers: list[str | None], timeout: float = 5.0, max_answer_chars: int = 2000
) -> tuple[list[float | None], int]:
    """(gold, answer) pairs -> (scores, number of timeouts). The building block of `accuracy`, usable by
    other rewards and by the evaluation code."""
    scores: list[float | None] = [None] * len(golds)
    queued, pairs = [], []
    for i, (gold, answer) in enumerate(zip(golds, answers)):
        gold_text = gold_target(gold)
        if gold_text is None:
            continue  # nothing to compare with: does not apply
        gold_text = clean_math_text(gold_text)
        gold_int = _plain_int(gold_text)
        if answer is None or not answer.strip() or len(answer) > max_answer_chars:
            # No final answer, or one far too long to be one. We still need to know whether the gold
            # parses (unparseable gold -> None); an integer gold always does.
            if gold_int is not None:
                scores[i] = 0.0
            else:
                queued.append(i)
                pairs.append((_as_math(gold_text, gold=True), ""))
            continue
        answer = clean_math_text(answer)
        answer_int = _plain_int(answer)
        if gold_int is not None and answer_int is not None:
            scores[i] = float(gold_int == answer_int)
            continue
        queued.append(i)
        pairs.append((_as_math(gold_text, gold=True), _as_math(answer)))
    # GRPO samples several completions per prompt and many agree: each distinct pair goes to math-verify once.
    unique = list(dict.fromkeys(pairs))
    verdicts = dict(zip(unique, get_pool().score(unique, timeout)))
    timeouts = 0
    for i, pair in zip(queued, pairs):
        score, timed_out, crashed = verdicts[pair]
        scores[i] = score
        timeouts += timed_out
        if crashed:
            _bump(current_reward_name(), "errors")
    return scores, timeouts


@register("accuracy")
def accuracy(
    completions,
    solution,
    timeout: float = 5.0,
    max_answer_chars: int = 2000,
    boxed_fallback: bool = True,
    **kwargs,
) -> list[float | None]:
    """1.0 if the final answer equals the gold `solution` (math-verify), else 0.0; None if the gold is unparseable.

    timeout: hard limit in seconds per sample (the sample scores 0 and counts as a timeout).
    max_answer_chars: longer answers score 0 without being parsed.
    boxed_fallback: without an `<answer>` block, use the last `\\boxed{}` of the completion.
    """
    answers = [answer_target(completion_text(c), boxed_fallback) for c in completions]
    scores, timeouts = score_answers(list(solution), answers, timeout, max_answer_chars)
    note_timeouts(timeouts)
    return scores


def _validate(timeout: float = 5.0, max_answer_chars: int = 2000, boxed_fallback: bool = True, **_):
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if not isinstance(max_answer_chars, int) or max_answer_chars <= 0:
        raise ValueError(f"max_answer_chars must be a positive integer, got {max_answer_chars!r}")
    try:  # probed only: math-verify (and sympy, seconds to import) is used in the workers (mathpool)
        import latex2sympy2_extended  # noqa: F401
        import math_verify  # noqa: F401
    except ImportError as e:
        raise ValueError(f"needs math-verify (pip install 'math-verify[antlr4_13_2]'): {e}") from e


accuracy.validate = _validate
