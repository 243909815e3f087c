"""Confidence intervals for eval metrics and for differences between checkpoints.

The unit of resampling is the problem: the samples of one problem are not independent of each other
(a model that cannot add 47+38 fails all four samples), so a problem's samples, and rows that repeat the
same problem (a small test set cycled to fill `eval_num_problems`), stay together. Each metric is kept per
problem as (sum, count), e.g. pass@1 as (correct samples, samples), mean length as (tokens, samples); a
resample's value is sum(sums) / sum(counts) over the drawn problems, the estimator the eval itself uses,
so the point estimate equals the reported metric exactly.

- `paired_diff`: both checkpoints answered the same problems: resample problems once, difference each
  draw (the problem-to-problem spread cancels, which is what makes a paired interval narrow).
- `unpaired_diff`: different problem sets: resample each side independently.
- `newcombe_diff` / `wilson`: no per-problem records, only a proportion and its n.
Bootstraps are seeded (same input, same interval) and vectorised: 2000 resamples of 500 problems take
a few milliseconds.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from r1repro.evaluation.core import CORRECT_THRESHOLD
from r1repro.evaluation.metrics import pass_at_k

RESAMPLES = 2000
SEED = 0
Z95 = 1.959963984540054  # two-sided 95% normal quantile

# {problem key: (sum, count)}: one metric of one checkpoint on one task.
Units = dict[str, tuple[float, float]]


@functools.lru_cache(maxsize=8)
def _weights(m: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of m problems is drawn in each resample (resamples x m). Cached: every interval over
    the same number of problems reuses one draw (a report computes hundreds), and is read-only."""
    draws = np.random.default_rng(seed).integers(0, m, size=(resamples, m))
    offsets = (np.arange(resamples) * m)[:, None]
    weights = np.bincount((draws + offsets).ravel(), minlength=resamples * m).reshape(resamples, m).astype(float)
    weights.flags.writeable = False
    return weights


def _interval(draws: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def _ratio(units: Units, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([units[k][0] for k in keys], dtype=float), np.array([units[k][1] for k in keys], dtype=float))


def _draws(weights: np.ndarray, *pairs: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Each (sums, counts) pair's estimate in every resample; one product over the weights for all pairs
    (the weights matrix is what costs: reading it once, not once per column)."""
    totals = weights @ np.column_stack([column for pair in pairs for column in pair])
    with np.errstate(invalid="ignore", divide="ignore"):  # a draw of only count-0 problems: nan, dropped below
        return [totals[:, 2 * i] / totals[:, 2 * i + 1] for i in range(len(pairs))]


def point(units: Units) -> float | None:
    total = sum(c for _, c in units.values())
    return sum(s for s, _ in units.values()) / total if total else None


def mean_ci(units: Units, resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of the metric itself (pass@k bands, single-value findings)."""
    keys = sorted(k for k, (_, c) in units.items() if c > 0)
    if not keys:
        return None
    (draws,) = _draws(_weights(len(keys), resamples, seed), _ratio(units, keys))
    return _interval(draws[~np.isnan(draws)])


def mean_cis(per_metric: dict[str, Units], resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, list[float]]:
    """mean_ci of several metrics of one eval at once: metrics over the same problems share one product."""
    groups: dict[tuple, list[str]] = {}
    for name, units in per_metric.items():
        keys = tuple(sorted(k for k, (_, c) in units.items() if c > 0))
        if keys:
            groups.setdefault(keys, []).append(name)
    out = {}
    for keys, names in groups.items():
        draws = _draws(_weights(len(keys), resamples, seed), *(_ratio(per_metric[n], list(keys)) for n in names))
        out.update({n: list(_interval(d[~np.isnan(d)])) for n, d in zip(names, draws)})
    return out


def paired_diff(a: Units, b: Units, resamples: int = RESAMPLES, seed: int = SEED) -> dict | None:
    """a - b over the problems both answered: {"diff", "ci95", "n"}; None without shared problems."""
    keys = sorted(k for k in a.keys() & b.keys() if a[k][1] > 0 and b[k][1] > 0)
    if not keys:
        return None
    (sa, ca), (sb, cb) = _ratio(a, keys), _ratio(b, keys)
    da, db = _draws(_weights(len(keys), resamples, seed), (sa, ca), (sb, cb))
    draws = da - db
    return {"diff": float(sa.sum() / ca.sum() - sb.sum() / cb.sum()), "ci95": _interval(draws[~np.isnan(draws)]),
            "n": len(keys)}


def unpaired_diff(a: Units, b: Units, resamples: int = RESAMPLES, seed: int = SEED) -> dict | None:
    """a - b with each side resampled on its own (the checkpoints answered different problems)."""
    ka, kb = sorted(k for k, (_, c) in a.items() if c > 0), sorted(k for k, (_, c) in b.items() if c > 0)
    if not ka or not kb:
        return None
    (sa, ca), (sb, cb) = _ratio(a, ka), _ratio(b, kb)
    (da,) = _draws(_weights(len(ka), resamples, seed), (sa, ca))
    (db,) = _draws(_weights(len(kb), resamples, seed + 1), (sb, cb))
    draws = da - db
    return {"diff": float(sa.sum() / ca.sum() - sb.sum() / cb.sum()), "ci95": _interval(draws[~np.isnan(draws)]),
            "n": min(len(ka), len(kb))}


def diff_ci(a: Units, b: Units) -> dict | None:
    """Paired when both checkpoints answered the same problems, else unpaired; adds "method"."""
    if a and a.keys() == b.keys():
        out = paired_diff(a, b)
        return out and {**out, "method": "paired bootstrap over problems"}
    out = unpaired_diff(a, b)
    return out and {**out, "method": "bootstrap over problems (unpaired: different problem sets)"}


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927); sensible at 0 and 1, unlike the normal one."""
    if n <= 0:
        raise ValueError(f"wilson: n must be >= 1, got {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_diff(p1: float, n1: int, p2: float, n2: int, z: float = Z95) -> tuple[float, float]:
    """Interval of p1 - p2 for two independent proportions from their Wilson intervals (Newcombe 1998,
    method 10): the fallback when no per-problem records exist, so pairing cannot be used."""
    l1, u1 = wilson(p1 * n1, n1, z)
    l2, u2 = wilson(p2 * n2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


# --------------------------------------------------------------------------------------------------
# Per-problem units from the eval's sample records (r1repro.evaluation.core._score_task writes them).

def _key(record: dict) -> str:
    # The problem text, where the record has it: the same problem in two checkpoints' evals pairs up even
    # when the row ids differ, and repeats of one problem within an eval count as one unit.
    return str(record.get("problem") or record.get("prompt"))


def units_from_records(records: list[dict], ks: tuple[int, ...] = (1, 2, 4)) -> dict[str, dict[str, Units]]:
    """{task: {metric: Units}} for accuracy_greedy, pass@k, format_rate, mean_length and
    language_consistency, from one checkpoint's eval records (greedy + sampled)."""
    per_task: dict[str, dict[str, dict]] = {}
    for r in records:
        p = per_task.setdefault(r["task"], {}).setdefault(_key(r), {"greedy": [], "sampled": []})
        p[r["mode"]].append(r)
    out = {}
    for task, problems in per_task.items():
        metrics: dict[str, Units] = {}

        def add(metric, key, s, c):
            old = metrics.setdefault(metric, {}).get(key, (0.0, 0.0))
            metrics[metric][key] = (old[0] + s, old[1] + c)

        for key, p in problems.items():
            for g in p["greedy"]:
                add("accuracy_greedy", key, float(g.get("reward") is not None and g["reward"] >= CORRECT_THRESHOLD),
                    1)
            samples = p["sampled"]
            if not samples:
                continue
            # Repeats of one problem are separate rows, each with its own samples: pass@k per row.
            rows: dict = {}
            for s in samples:
                rows.setdefault(s.get("prompt_id"), []).append(bool(s.get("correct")))
            for flags in rows.values():
                for k in ks:
                    if k <= len(flags):
                        add(f"pass@{k}", key, pass_at_k(len(flags), sum(flags), k), 1)
            fmt = [s["format"] for s in samples if s.get("format") is not None]
            lang = [s["language_consistency"] for s in samples if s.get("language_consistency") is not None]
            add("format_rate", key, float(sum(fmt)), len(fmt))
            add("language_consistency", key, float(sum(lang)), len(lang))
            add("mean_length", key, float(sum(s["num_tokens"] for s in samples)), len(samples))
        out[task] = metrics
    return out


def consistent(units: dict[str, dict[str, Units]], metrics: dict[str, dict]) -> bool:
    """Whether records and the eval's metrics agree (records left from an older eval do not)."""
    for task, values in metrics.items():
        for name in ("accuracy_greedy", "pass@1"):
            value, recomputed = values.get(name), point(units.get(task, {}).get(name, {}))
            if value is not None and (recomputed is None or abs(value - recomputed) > 1e-6):
                return False
    return True


def bands(units: dict[str, dict[str, Units]]) -> dict[str, dict[str, list[float]]]:
    """{task: {"pass@k": [lo, hi]}}: bootstrap bands over problems of the unbiased pass@k estimator."""
    return {task: mean_cis({m: u for m, u in metrics.items() if m.startswith("pass@")})
            for task, metrics in units.items()}
