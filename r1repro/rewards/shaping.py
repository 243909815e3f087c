"""Length and repetition shaping: `length`, `cosine`, `soft_overlong`, `repetition`.

Lengths are in tokens when TRL passes `completion_ids` (training), else in characters (e.g. `r1repro
rewards score` on a JSONL file without token ids); give lengths in the same unit as the parameters.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from .accuracy import answer_target, score_answers
from .registry import note_timeouts, register
from .text import completion_text

_WORD = re.compile(r"\S+")


def _lengths(completions, completion_ids) -> list[int]:
    if completion_ids is not None and len(completion_ids) == len(completions):
        return [len(ids) for ids in completion_ids]
    return [len(completion_text(c)) for c in completions]


def _correctness(completions, solution, timeout: float) -> list[float | None]:
    answers = [answer_target(completion_text(c)) for c in completions]
    scores, timeouts = score_answers(list(solution), answers, timeout)
    note_timeouts(timeouts)
    return scores


@register("length")
def length(completions, solution, completion_ids=None, prompts=None, timeout: float = 5.0,
           **kwargs) -> list[float | None]:
    """Kimi k1.5's length reward: within the completions of one prompt, lambda = 0.5 - (len - min) / (max - min);
    a correct completion gets lambda, a wrong one min(0, lambda). Rewards short correct answers without
    pushing wrong ones to be shorter still. Rows with an unparseable gold score None."""
    lengths = _lengths(completions, completion_ids)
    correct = _correctness(completions, solution, timeout)
    groups = defaultdict(list)  # GRPO samples several completions per prompt: compare within a prompt
    for i in range(len(completions)):
        key = str(prompts[i]) if prompts is not None and len(prompts) == len(completions) else ""
        groups[key].append(i)
    out: list[float | None] = [None] * len(completions)
    for members in groups.values():
        lo, hi = min(lengths[i] for i in members), max(lengths[i] for i in members)
        for i in members:
            if correct[i] is None:
                continue
            lam = 0.0 if hi == lo else 0.5 - (lengths[i] - lo) / (hi - lo)
            out[i] = lam if correct[i] == 1.0 else min(0.0, lam)
    return out


@register("cosine")
def cosine(
    completions,
    solution,
    max_len: int = 1000,
    min_value_wrong: float = -1.0,
    max_value_wrong: float = -0.5,
    min_value_correct: float = 0.5,
    max_value_correct: float = 1.0,
    completion_ids=None,
    timeout: float = 5.0,
    **kwargs,
) -> list[float | None]:
    """Cosine-scaled correctness ("Demystifying Long CoT", App. C.1; the formula of trl's
    get_cosine_scaled_reward, with correctness from our timeout-safe `accuracy`): short correct answers
    earn most, short wrong ones lose most. Lengths past max_len stay at the long-length bound."""
    lengths = _lengths(completions, completion_ids)
    out = []
    for correct, n in zip(_correctness(completions, solution, timeout), lengths):
        if correct is None:
            out.append(None)
            continue
        progress = min(n / max_len, 1.0)
        lo, hi = (min_value_correct, max_value_correct) if correct == 1.0 else (max_value_wrong, min_value_wrong)
        out.append(lo + 0.5 * (hi - lo) * (1.0 + math.cos(progress * math.pi)))
    return out


@register("soft_overlong")
def soft_overlong(completions, max_completion_len: int = 1024, soft_punish_cache: int = 256, completion_ids=None,
                  **kwargs):
    """DAPO's soft overlong punishment (trl.rewards.get_soft_overlong_punishment): 0 up to
    max_completion_len - soft_punish_cache, then linearly down to -1 at max_completion_len, -1 beyond."""
    # trl imports torch: on use, so that importing the reward registry (`r1repro check`) stays light.
    from trl.rewards import get_soft_overlong_punishment

    punish = get_soft_overlong_punishment(max_completion_len, soft_punish_cache)
    return punish([[0] * n for n in _lengths(completions, completion_ids)])


@register("repetition")
def repetition(completions, ngram_size: int = 3, max_penalty: float = -1.0, unit: str = "words", completion_ids=None,
               **kwargs):
    """Repeated n-gram penalty (trl.rewards.get_repetition_penalty_reward): (1 - unique/total n-grams) *
    max_penalty, over words of the text (`unit: words`, works everywhere) or token ids (`unit: tokens`)."""
    from trl.rewards import get_repetition_penalty_reward  # on use, as in soft_overlong

    penalty = get_repetition_penalty_reward(ngram_size=ngram_size, max_penalty=max_penalty)
    if unit == "tokens":
        if completion_ids is None:
            raise ValueError("repetition: unit 'tokens' needs completion_ids (passed by TRL during training)")
        return penalty(completion_ids=completion_ids)
    vocabulary: dict[str, int] = {}
    ids = [[vocabulary.setdefault(w, len(vocabulary)) for w in _WORD.findall(completion_text(c))] for c in completions]
    return penalty(completion_ids=ids)


def _positive(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


cosine.validate = lambda max_len=1000, timeout=5.0, **_: _positive(max_len=max_len, timeout=timeout)
length.validate = lambda timeout=5.0, **_: _positive(timeout=timeout)


def _validate_overlong(max_completion_len=1024, soft_punish_cache=256, **_):
    _positive(max_completion_len=max_completion_len)
    if not isinstance(soft_punish_cache, int) or not 0 <= soft_punish_cache <= max_completion_len:
        raise ValueError(f"soft_punish_cache must be an integer in [0, max_completion_len], got {soft_punish_cache!r}")


def _validate_repetition(ngram_size=3, max_penalty=-1.0, unit="words", **_):
    _positive(ngram_size=ngram_size)
    if max_penalty > 0:
        raise ValueError(f"max_penalty must be <= 0, got {max_penalty!r}")
    if unit not in ("words", "tokens"):
        raise ValueError(f"unit must be 'words' or 'tokens', got {unit!r}")


soft_overlong.validate = _validate_overlong
repetition.validate = _validate_repetition
