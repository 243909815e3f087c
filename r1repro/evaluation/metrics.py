"""R1-style metrics from per-sample correctness: pass@1 over k samples, the unbiased pass@k
estimator, and cons@k (majority vote over parsed answers)."""

from __future__ import annotations

import re
from collections import Counter
from math import comb

_SPACES = re.compile(r"\s+")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, "Evaluating Large
    Language Models Trained on Code"): 1 - C(n-c, k) / C(n, k), the probability that at least one of
    k samples drawn without replacement from the n is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k: need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k: need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every draw of k contains a correct sample
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def normalize_answer(answer: str | None) -> str | None:
    """The key answers are grouped by for the vote: whitespace collapsed, surrounding `$` dropped."""
    if answer is None:
        return None
    key = _SPACES.sub(" ", answer).strip().strip("$").strip()
    return key or None


def cons_at_k(answers: list[str | None], correct: list[bool]) -> float:
    """Majority vote over parsed answers: 1.0 if the most frequent answer is correct.

    Samples without a parsed answer (None) do not vote; if none voted the score is 0. A tie between
    several most frequent answers scores the fraction of them that are correct, i.e. the expected
    score of breaking the tie uniformly at random (no bias towards sample order).
    """
    if len(answers) != len(correct):
        raise ValueError(f"cons_at_k: {len(answers)} answers but {len(correct)} correctness flags")
    keys = [normalize_answer(a) for a in answers]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return 0.0
    top = max(votes.values())
    winners = [key for key, count in votes.items() if count == top]
    # Samples with the same answer get the same verdict from a deterministic reward; averaging the
    # group covers a nondeterministic one (e.g. code tests hitting a time limit once).
    def verdict(key: str) -> float:
        group = [float(ok) for k, ok in zip(keys, correct) if k == key]
        return sum(group) / len(group)

    return sum(verdict(w) for w in winners) / len(winners)


def mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(sum(values) / len(values)) if values else float("nan")
