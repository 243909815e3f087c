"""`multiple_choice`: is the option the completion settles on the gold letter? (GPQA, MMLU-style rows)

`exact_match` needs the letter alone in an `<answer>` block, which R1-style models (and the R1 protocol,
which asks for no tags) do not write: they end with `\\boxed{C}`, `Answer: C`, `The correct answer is
(C).` or `**C**`. The letter is read from the part a user sees (the `<answer>` block, else what follows
`</think>`; nothing when the think block never closed, since a truncated response chose nothing), in
this order: the whole part is a letter; the last `\\boxed{}` holding a letter; the last "answer: X" /
"answer is (X)"; a bold or parenthesised letter standing alone at the end.
"""

from __future__ import annotations

import re

from .registry import register
from .text import THINK_CLOSE, THINK_OPEN, answer_part, completion_text, extract_answer, last_boxed

# A letter as an option label: `C`, `(C)`, `C)`, `C.`, `\text{C}`, `\textbf{(C)}`, `**C**`.
_LETTER = r"\**\s*(?:\\text(?:bf)?\s*\{\s*)?\(?\s*([A-Z])\s*\)?\s*\}?\s*\**"
# Only the words are case-blind: "the answer is a bit unclear" states no option.
_ALONE_RE = re.compile(rf"\s*(?:(?i:answer)\s*[:：]?\s*)?{_LETTER}[.!]?\s*")
_STATED_RE = re.compile(rf"(?i:answer)\s*(?:(?i:is)|:|：)\s*(?:(?i:option)\s*)?{_LETTER}(?![A-Za-z])")
_END_RE = re.compile(r"(?:\*\*\s*\(?([A-Z])\)?\s*\*\*|\(([A-Z])\))\s*[.!]?\s*$")


def chosen_letter(text: str, think_opened: bool = False) -> str | None:
    """The option letter a response settles on, upper case; None when it states none."""
    if extract_answer(text) is None:
        start = text.find(THINK_OPEN)
        opened = think_opened or start >= 0
        if opened and text.rfind(THINK_CLOSE) < max(start, 0):
            return None  # still thinking: no choice made
    part = answer_part(text)
    m = _ALONE_RE.fullmatch(part)
    if m:
        return m.group(1).upper()
    boxed = last_boxed(part)
    if boxed is not None:
        m = _ALONE_RE.fullmatch(boxed)
        return m.group(1).upper() if m else None
    stated = _STATED_RE.findall(part)
    if stated:
        return stated[-1].upper()
    m = _END_RE.search(part)
    return (m.group(1) or m.group(2)) if m else None


@register("multiple_choice")
def multiple_choice(completions, solution, think_opened: bool = False, **kwargs) -> list[float | None]:
    """1.0 if the option letter the completion settles on equals the gold letter `solution`, else 0.0;
    None when the row has no gold."""
    out = []
    for c, gold in zip(completions, solution, strict=True):
        if gold is None or not str(gold).strip():
            out.append(None)
            continue
        out.append(float(chosen_letter(completion_text(c), think_opened) == str(gold).strip().upper()))
    return out


def _validate(think_opened: bool = False, **_):
    if not isinstance(think_opened, bool):
        raise ValueError(f"think_opened must be true or false, got {think_opened!r}")


multiple_choice.validate = _validate
