"""Answer and gold text as real models and datasets write it, cleaned before math-verify sees it.

Three families of wrong verdicts come from handing math-verify the raw string:
- money: `\\$18` (how models write GSM8K answers) contains a `$`, so the text looked already delimited
  and reached math-verify without the `$…$` its LaTeX extractor needs;
- prose golds ("Answer is forty two."): wrapped in `$…$` they read as a product of letters, so a gold
  that is not math scored 0.0 instead of None;
- unbraced LaTeX (`\\frac34`, `\\tfrac12`, `\\sqrt3`, `\\frac94\\pi`): valid TeX that math-verify reads
  wrongly or not at all unless its malformed-operator repair is on (the worker turns it on) and, for
  command arguments such as `\\frac\\pi4`, unless the braces are put back (done here, with TeX's own
  rule: an unbraced argument is one token, so `\\frac123` is `\\frac{1}{2}3`).

Everything here is plain regex work on short strings: cheap enough to run on every sample in the
trainer process, before the integer fast path.
"""

from __future__ import annotations

import re

# One TeX argument token: a braced group without nesting, a control word, or one character.
_ARG = r"(\{[^{}]*\}|\\[A-Za-z]+|[0-9A-Za-z])"
_FRAC_RE = re.compile(r"\\[dtc]?frac(?![A-Za-z])\s*" + _ARG + r"\s*" + _ARG)
_SQRT_RE = re.compile(r"\\sqrt(?![A-Za-z])\s*(\[[^\]]*\])?\s*(\\[A-Za-z]+|[0-9A-Za-z])")
# Currency: escaped or spelled dollar signs, and other currency symbols next to a number.
_CURRENCY_RE = re.compile(r"\\(?:text|mathrm|textrm|mbox)\s*\{\s*\\\$\s*\}|\\textdollar\b|\\\$|[€£¥]")
_UNESCAPED_DOLLAR_RE = re.compile(r"(?<!\\)\$")
# A whole answer that is a number with blanks between its thousands (`1 000`, `12 345.5`): TeX ignores
# blanks in math mode, so it is one number; math-verify would read `1 000` as the product 1·000 = 0.
_BLANK_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?: \d{3})+(?:\.\d+)?")
# `$18` / `-$5` / `$ 1,200` written as plain text (an odd number of `$`: not a math delimiter pair).
_TEXT_MONEY_RE = re.compile(r"(^|[\s(+-])\$\s*(?=[\d.])")
# Pure spacing commands: thin, negative thin, medium, thick space, `\ ` and `~`, with the blanks after
# them: TeX ignores blanks in math mode, and MATH writes thousands as `32,\! 349` (blank kept, the
# number read as the pair "32, 349").
_SPACING_RE = re.compile(r"(?<!\\)(?:\\[,!;: ]|~)\s*")  # not the `\\` row break of a matrix
# A whole answer wrapped in \text{...} (or \mathrm, \textbf, \mbox) whose content starts like a number.
_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([-+]?\s*[\d.$\\][^{}]*)\}\s*\.?")
# "18 dollars", "5 cm", "12.5 square feet": a number followed only by unit words.
_NUMBER_WORDS_RE = re.compile(r"([-+]?\d[\d,]*(?:\.\d+)?)\s+([A-Za-z][A-Za-z .]*)")
# Words that mean something in math; a number followed by them is not a number with a unit.
_MATH_WORDS = {"pi", "e", "i", "inf", "infty", "infinity", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc",
               "log", "ln", "exp", "mod", "and", "or", "x", "y", "z", "n", "k",
               "degrees", "degree", "percent"}  # fmt: skip
# Prose: two words of >= 2 letters next to each other, outside \text{} and not control words.
_TEXT_GROUP_RE = re.compile(r"\\(?:text\w*|math\w+|mbox|operatorname)\s*\{[^{}]*\}|\\[A-Za-z]+")
_PROSE_RE = re.compile(r"(?<![A-Za-z])[A-Za-z]{2,}\s+[A-Za-z]{2,}(?![A-Za-z])")


def brace_arguments(text: str) -> str:
    """`\\frac34` -> `\\frac{3}{4}`, `\\tfrac12` -> `\\frac{1}{2}`, `\\frac\\pi4` -> `\\frac{\\pi}{4}`,
    `\\sqrt3` / `\\sqrt 2` -> `\\sqrt{3}` / `\\sqrt{2}` (TeX's one-token rule for unbraced arguments)."""
    if "frac" in text:
        text = _FRAC_RE.sub(
            lambda m: r"\frac" + "".join(a if a.startswith("{") else "{" + a + "}" for a in m.groups()), text)
    if "sqrt" in text:
        text = _SQRT_RE.sub(lambda m: r"\sqrt" + (m.group(1) or "") + "{" + m.group(2) + "}", text)
    return text


def strip_currency(text: str) -> str:
    """`\\$18`, `\\text{\\$}18`, `-$5`, `$1,200` (as text), `€3` -> the number alone."""
    text = _CURRENCY_RE.sub("", text)
    if "$" in text and len(_UNESCAPED_DOLLAR_RE.findall(text)) % 2 == 1:
        text = _TEXT_MONEY_RE.sub(r"\1", text, count=1)
    return text


def _number_with_units(text: str) -> str:
    """`18 dollars` -> `18 \\text{dollars}` (math-verify's unit normalisation then drops the text)."""
    m = _NUMBER_WORDS_RE.fullmatch(text)
    words = m.group(2).rstrip(" .") if m else ""
    if words and not any(w.lower().strip(".") in _MATH_WORDS for w in words.split()):
        return f"{m.group(1)} \\text{{{words}}}"
    return text


def clean_math_text(text: str) -> str:
    """A final answer or a gold target made ready for comparison (see the module docstring). Idempotent."""
    text = text.strip()
    if "####" in text:  # a GSM8K-style ending inside the answer itself
        text = text.rsplit("####", 1)[1].strip()
    m = _TEXT_WRAP_RE.fullmatch(text)
    if m:
        text = m.group(1).strip()
    text = strip_currency(text)
    if " " in text and _BLANK_THOUSANDS_RE.fullmatch(text.strip()):
        text = text.replace(" ", "")
    if "\\" in text or "~" in text:
        text = _SPACING_RE.sub("", text)
        text = brace_arguments(text)
    return _number_with_units(text.strip())


def is_prose(text: str) -> bool:
    """Is this (delimiter-free) text a sentence rather than a math expression? ("Answer is forty two.")"""
    return bool(_PROSE_RE.search(_TEXT_GROUP_RE.sub(" ", text)))
