"""`reasoning_gym`: score the answer with the reasoning-gym task's own verifier (`score_answer`).

Rows come from a `gym:<task>` dataset (r1repro/gym.py), whose `gym` column says which task entry the
row is; rows without it score None (does not apply), so the reward mixes with other datasets. The
answer is the last `<answer>` block (else the text after `</think>`, else the whole completion, with
`answer_fallback: true`). Scores are the task's: 1.0 correct, partial credit where the task gives it.
Verifiers run in worker processes with a hard per-sample timeout, like math-verify (r1repro/sandbox/mathpool.py).
"""

from __future__ import annotations

import importlib.util
import json

from r1repro.sandbox.mathpool import GYM_WORKER, MathPool, shared_pool

from .registry import _bump, current_reward_name, note_timeouts, register
from .text import answer_part, completion_text, extract_answer


def get_gym_pool() -> MathPool:
    """Process-wide pool of gym workers. Size: $R1REPRO_GYM_WORKERS, else min(2, CPUs)."""
    return shared_pool(GYM_WORKER, "R1REPRO_GYM_WORKERS", max_size=2)


@register("reasoning_gym")
def reasoning_gym(completions, gym=None, timeout: float = 5.0, answer_fallback: bool = False,
                  **kwargs) -> list[float | None]:
    """The reasoning-gym task's own score for each answer; None for rows that are not gym rows.

    timeout: hard limit in seconds per sample (scores 0, counted as a timeout).
    answer_fallback: without an `<answer>` block, score the text after `</think>` (else 0).
    """
    n = len(completions)
    refs = gym if isinstance(gym, (list, tuple)) else [gym] * n
    scores: list[float | None] = [None] * n
    queued, pairs = [], []
    for i, (completion, ref) in enumerate(zip(completions, refs)):
        if not ref:
            continue
        text = completion_text(completion)
        answer = extract_answer(text)
        if answer is None and answer_fallback:
            answer = answer_part(text)
        queued.append(i)
        pairs.append((ref if isinstance(ref, str) else json.dumps(ref), answer or ""))
    timeouts = 0
    for i, (score, timed_out, crashed) in zip(queued, get_gym_pool().score(pairs, timeout)):
        scores[i] = score
        timeouts += timed_out
        if crashed:
            _bump(current_reward_name(), "errors")
    note_timeouts(timeouts)
    return scores


def _validate(timeout: float = 5.0, answer_fallback: bool = False, **_):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if importlib.util.find_spec("reasoning_gym") is None:  # (importing it takes seconds: the workers do)
        raise ValueError("needs reasoning-gym (pip install 'r1repro[gym]')")


reasoning_gym.validate = _validate
reasoning_gym.columns_one_of = ("gym",)
