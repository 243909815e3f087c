"""`language_consistency` (DeepSeek-R1 §2.3.2): the fraction of the chain of thought's words that are in
the target language.

Words are classified by script, which is what mixing looks like in practice (R1-Zero drifted between
English and Chinese; the tiny recipe mixes English and Korean): a run of Latin letters is one word, a
run of Hangul one word, each Han ideograph one word (Chinese is written without spaces). Digits,
symbols and math are not words. Script cannot tell English from French: `en` means Latin script.
"""

from __future__ import annotations

import re

from .registry import register
from .text import completion_text, extract_think

_SCRIPTS = {
    "latin": r"[A-Za-z\u00c0-\u024f]+",
    "hangul": r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]+",
    "han": r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]",
    "kana": r"[\u3040-\u30ff]+",
    "cyrillic": r"[\u0400-\u04ff]+",
    "arabic": r"[\u0600-\u06ff]+",
}
_WORD = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _SCRIPTS.items()))

# Which scripts count as words of each language.
LANGUAGES = {
    "en": {"latin"},
    "fr": {"latin"},
    "de": {"latin"},
    "es": {"latin"},
    "zh": {"han"},
    "ko": {"hangul"},
    "ja": {"kana", "han"},
    "ru": {"cyrillic"},
    "ar": {"arabic"},
}


def language_fraction(text: str, language: str) -> float | None:
    """Fraction of the words of `text` written in `language`'s script; None when there are no words."""
    scripts = LANGUAGES[language]
    total = hits = 0
    for match in _WORD.finditer(text):
        total += 1
        hits += match.lastgroup in scripts
    return hits / total if total else None


@register("language_consistency")
def language_consistency(
    completions, language: str | None = "en", think_opened: bool = False, lang=None, **kwargs
) -> list[float | None]:
    """Fraction of the chain of thought's words in `language` (en, zh, ko, ja, ru, ar, ...). With
    `language: null`, each row's `lang` column is the target. A thought without words scores None."""
    out = []
    for i, c in enumerate(completions):
        target = language if language is not None else (lang[i] if lang is not None else None)
        if target not in LANGUAGES:
            raise ValueError(f"language_consistency: row language {target!r} is not one of {sorted(LANGUAGES)}")
        out.append(language_fraction(extract_think(completion_text(c), think_opened), target))
    return out


def _validate(language: str | None = "en", think_opened: bool = False, **_):
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(sorted(LANGUAGES))} (or null to use the lang column), "
                         f"got {language!r}")


language_consistency.validate = _validate
