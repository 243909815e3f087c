"""Intervals and verdicts of the report's Effects (r1repro.evaluation.stats, r1repro.findings) on synthetic
per-problem data whose true difference is known."""

import numpy as np
import pytest

from r1repro.evaluation.stats import (
    bands,
    diff_ci,
    mean_ci,
    newcombe_diff,
    paired_diff,
    units_from_records,
    unpaired_diff,
    wilson,
)
from r1repro.findings import (
    DOES_NOT_HOLD,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    Effect,
    at_least,
    findings_markdown,
    measure,
    pass_at_k_findings,
    verdict,
)


def point_of(units, metric):
    values = units["reasoning"][metric].values()
    return sum(s for s, _ in values) / sum(c for _, c in values)


KEYS = ("effect", "claim", "a", "b", "task", "metric", "value_a", "value_b", "diff", "ci95", "n", "verdict", "holds",
        "evidence", "target", "target_met", "ci_method")


def paired_units(n=500, p_b=0.3, flip_up=0.0, flip_down=0.0, seed=0):
    """b correct with p_b; a = b, except wrong b's turned right with flip_up and right ones wrong with flip_down."""
    rng = np.random.default_rng(seed)
    b = rng.random(n) < p_b
    u = rng.random(n)
    a = np.where(b, u >= flip_down, u < flip_up)
    return ({f"p{i}": (float(x), 1.0) for i, x in enumerate(a)}, {f"p{i}": (float(x), 1.0) for i, x in enumerate(b)})


def test_paired_bootstrap_covers_a_large_difference_and_excludes_zero():
    a, b = paired_units(flip_up=0.5)  # true difference 0.7 * 0.5 = 0.35
    r = paired_diff(a, b)
    assert r["n"] == 500
    assert r["diff"] == pytest.approx(np.mean([v for v, _ in a.values()]) - np.mean([v for v, _ in b.values()]))
    lo, hi = r["ci95"]
    assert lo < 0.35 < hi and lo > 0.25 and hi - lo < 0.12
    assert verdict(r["ci95"]) == HOLDS and verdict(r["ci95"], "<") == DOES_NOT_HOLD
    assert paired_diff(a, b) == r  # seeded: the same data give the same interval


def test_a_tiny_difference_is_inconclusive_and_pairing_narrows_the_interval():
    a, b = paired_units(flip_up=0.02, flip_down=0.02)  # true difference ~0.008
    r = paired_diff(a, b)
    assert r["ci95"][0] < 0 < r["ci95"][1] and verdict(r["ci95"]) == INCONCLUSIVE
    # correlated checkpoints: the unpaired interval ignores the correlation and is several times wider
    wide = unpaired_diff(a, b)["ci95"]
    assert (wide[1] - wide[0]) > 3 * (r["ci95"][1] - r["ci95"][0])
    assert diff_ci(a, b)["method"].startswith("paired")
    del b["p0"]
    assert "unpaired" in diff_ci(a, b)["method"]


def test_repeated_problems_are_one_unit_and_the_estimate_is_the_row_mean():
    a = {"x": (3.0, 4.0), "y": (0.0, 1.0)}  # x asked 4 times (3 right), y once: row mean 3/5
    lo, hi = mean_ci(a)
    assert 0.0 <= lo <= 0.6 <= hi <= 0.75


def test_verdicts_in_each_direction_and_with_a_margin():
    assert verdict((0.01, 0.2)) == HOLDS and verdict((-0.2, -0.01)) == DOES_NOT_HOLD
    assert verdict((-0.01, 0.2)) == INCONCLUSIVE and verdict((0.0, 0.2)) == INCONCLUSIVE
    assert verdict((-0.2, -0.01), "<") == HOLDS and verdict((0.01, 0.2), "<") == DOES_NOT_HOLD
    assert verdict((-0.01, 0.01), "<") == INCONCLUSIVE
    # non-inferiority a >= b - 0.05: judged on the lower bound against -0.05
    assert verdict((-0.04, 0.03), margin=0.05) == HOLDS
    assert verdict((-0.07, 0.03), margin=0.05) == INCONCLUSIVE
    assert verdict((-0.2, -0.06), margin=0.05) == DOES_NOT_HOLD
    assert verdict(None) == INCONCLUSIVE


def test_wilson_and_newcombe_match_published_values():
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))  # Wilson at the boundary: not [0, 0]
    lo, hi = wilson(81, 263)  # Newcombe (1998), Statistics in Medicine 17: 857-872, table I
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    lo, hi = newcombe_diff(56 / 70, 70, 48 / 80, 80)  # Newcombe (1998) 17: 873-890, example (a), method 10
    assert (lo, hi) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))
    with pytest.raises(ValueError, match="wilson: n must be >= 1"):
        wilson(0, 0)


def evals(acc_a=0.6, acc_b=0.2, n=500):
    return {"a": {"reasoning": {"accuracy_greedy": acc_a, "mean_length": 50.0, "n": n}},
            "b": {"reasoning": {"accuracy_greedy": acc_b, "mean_length": 40.0, "n": n}}}


def test_a_finding_has_every_key_the_robustness_bench_reads():
    a, b = paired_units(flip_up=0.5)
    units = {"a": {"reasoning": {"accuracy_greedy": a}}, "b": {"reasoning": {"accuracy_greedy": b}}}
    e = evals(acc_a=np.mean([v for v, _ in a.values()]), acc_b=np.mean([v for v, _ in b.values()]))
    f = measure(Effect("A beats B", "a", "b", "reasoning", "accuracy_greedy", min_diff=0.30), e, units)
    assert tuple(f) == KEYS
    assert f["claim"] == "a > b" and f["verdict"] == HOLDS and f["holds"] is True and f["n"] == 500
    assert f["target"] == {"min_diff": 0.30} and f["target_met"] is True and f["ci_method"].startswith("paired")
    assert f["ci95"][0] < f["diff"] < f["ci95"][1]
    # the same numbers without records: a Newcombe interval from the proportions and n
    g = measure(Effect("A beats B", "a", "b", "reasoning", "accuracy_greedy"), e, {})
    assert g["ci_method"].startswith("Newcombe") and g["verdict"] == HOLDS and g["target"] is None
    # not a proportion and no records: numbers, no interval, no verdict either way
    h = measure(Effect("A is longer", "a", "b", "reasoning", "mean_length"), evals(), {})
    assert h["ci95"] is None and h["verdict"] == INCONCLUSIVE and h["holds"] is None and h["diff"] == 10.0
    missing = measure(Effect("C beats B", "c", "b", "reasoning", "accuracy_greedy"), e, units)
    assert missing["verdict"] == NOT_MEASURED and missing["holds"] is None and tuple(missing) == KEYS


def test_target_is_separate_from_the_verdict():
    # a real but small gain: the interval excludes 0 (holds) while the issue's 0.30 is not reached
    f = measure(Effect("A beats B", "a", "b", "reasoning", "accuracy_greedy", min_diff=0.30), evals(0.3, 0.1), {})
    assert f["verdict"] == HOLDS and f["target_met"] is False
    # non-inferiority with n = 100: 0.02 worse, interval too wide to rule out 0.05 worse
    e = Effect("A keeps B", "a", "b", "reasoning", "accuracy_greedy", margin=0.05, min_diff=-0.05)
    f = measure(e, evals(0.48, 0.5, n=100), {})
    assert f["claim"] == "a >= b - 0.05" and f["verdict"] == INCONCLUSIVE and f["target_met"] is True


def test_single_value_finding_uses_a_wilson_interval():
    e = {"base": {"general": {"accuracy_greedy": 0.95, "n": 500}}}
    f = at_least("base general >= 0.8", "base", "general", "accuracy_greedy", 0.8, e, {})
    assert tuple(f) == KEYS and f["claim"] == "base >= 0.8" and f["verdict"] == HOLDS and f["target_met"] is True
    lo, hi = wilson(475, 500)
    assert f["ci95"] == [pytest.approx(lo - 0.8), pytest.approx(hi - 0.8)]
    # 0.82 on 45 distinct problems (records): the interval reaches below 0.8
    units = {"base": {"general": {"accuracy_greedy": {f"p{i}": (float(i < 37), 1.0) for i in range(45)}}}}
    f = at_least("x", "base", "general", "accuracy_greedy", 0.8, {"base": {"general": {"accuracy_greedy": 0.822}}},
                 units)
    assert f["n"] == 45 and f["verdict"] == INCONCLUSIVE and f["target_met"] is True


def test_markdown_shows_difference_interval_and_verdict():
    a, b = paired_units(flip_up=0.5)
    units = {"a": {"reasoning": {"accuracy_greedy": a}}, "b": {"reasoning": {"accuracy_greedy": b}}}
    e = evals(acc_a=np.mean([v for v, _ in a.values()]), acc_b=np.mean([v for v, _ in b.values()]))
    f = measure(Effect("A beats B", "a", "b", "reasoning", "accuracy_greedy", min_diff=0.30), e, units)
    row = findings_markdown([f]).splitlines()[2]
    lo, hi = f["ci95"]
    assert f"| A beats B | a > b | {f['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] | 500 | **holds** | ≥ +0.30: met |" in row
    missing = measure(Effect("C beats B", "c", "b", "reasoning", "accuracy_greedy"), e, units)
    assert "| – | – | **not measured** | – |" in findings_markdown([missing])


def test_pass_at_k_bands_from_records_contain_the_curve():
    records = []
    for i, c in enumerate([0, 1, 2, 4] * 25):  # 100 problems, c of 4 samples correct
        base = {"task": "reasoning", "prompt_id": i, "problem": f"q{i}"}
        records.append({**base, "mode": "greedy", "reward": float(c == 4), "num_tokens": 5})
        records += [{**base, "mode": "sampled", "correct": j < c, "format": 1.0, "language_consistency": None,
                     "num_tokens": 5} for j in range(4)]
    units = units_from_records(records, ks=(1, 2, 4))["reasoning"]
    band = bands({"reasoning": units})["reasoning"]
    assert set(band) == {"pass@1", "pass@2", "pass@4"}
    expected = {"pass@1": 7 / 16, "pass@2": (0 + 0.5 + 5 / 6 + 1) / 4, "pass@4": 0.75}
    for k, value in expected.items():
        lo, hi = band[k]
        assert lo < value < hi and hi - lo < 0.25, k
    assert band["pass@1"][1] < band["pass@4"][0] + 0.3  # bands follow the curve upward


def study_records(correct_per_problem, n=100):
    records = []
    for i in range(n):
        c = correct_per_problem(i)
        base = {"task": "reasoning", "prompt_id": i, "problem": f"q{i}"}
        records.append({**base, "mode": "greedy", "reward": float(c > 0), "num_tokens": 5})
        records += [{**base, "mode": "sampled", "correct": j < c, "num_tokens": 5} for j in range(4)]
    return records


def test_pass_at_k_critique_with_intervals():
    # RL: half the problems always solved, half never (pass@1 0.5, pass@4 0.5); the base solves every problem
    # once in 4 (pass@1 0.25, pass@4 1.0): RL leads at k=1, the base overtakes by k=4
    units = {"r1zero": units_from_records(study_records(lambda i: 4 * (i % 2)), ks=(1, 4)),
             "base": units_from_records(study_records(lambda i: 1), ks=(1, 4))}
    curves = {c: {"reasoning": {"pass@1": point_of(u, "pass@1"), "pass@4": point_of(u, "pass@4"), "n": 100}}
              for c, u in units.items()}
    items = {f["effect"]: f for f in pass_at_k_findings({"curves": curves}, units)}
    assert all(tuple(f) == KEYS for f in items.values())
    gap = items["pass@k: the gap to the base narrows by k = 4"]
    assert gap["diff"] == pytest.approx(0.25 - (-0.5)) and gap["verdict"] == HOLDS and gap["n"] == 100
    assert gap["claim"] == "(r1zero - base) at pass@1 > at pass@4"
    assert items["pass@k: the base overtakes RL by k = 4"]["verdict"] == HOLDS
    assert items["pass@k: RL raises pass@1"]["ci_method"].startswith("paired")


def test_issue_20s_noise_is_no_longer_reported_as_holding():
    # r1zero 0.03 vs base 0.01 and distill 0.01 vs student_grpo 0.00 on 100 problems were reported as "holds"
    e = {"r1zero": {"reasoning": {"accuracy_greedy": 0.03, "n": 100}},
         "base": {"reasoning": {"accuracy_greedy": 0.01, "n": 100}}}
    f = measure(Effect("R1-Zero raises accuracy", "r1zero", "base", "reasoning", "accuracy_greedy", min_diff=0.3), e,
                {})
    assert f["verdict"] == INCONCLUSIVE and f["holds"] is None and f["target_met"] is False
    e = {"distill": {"reasoning": {"accuracy_greedy": 0.01, "n": 100}},
         "student_grpo": {"reasoning": {"accuracy_greedy": 0.0, "n": 100}}}
    f = measure(Effect("Distillation beats GRPO", "distill", "student_grpo", "reasoning", "accuracy_greedy"), e, {})
    assert f["verdict"] == INCONCLUSIVE
