"""The report's Effects: each effect R1 (and its critics) claim, with the run's numbers, a 95% interval of
the difference and a verdict that follows from the interval, not from the point estimates.

One finding (report.json `findings`; bench/robustness.py reads these keys):
  {"effect", "claim", "a", "b", "task", "metric", "value_a", "value_b", "diff" (value_a - value_b),
   "ci95": [lo, hi] of the difference, "n" (problems), "verdict", "holds", "evidence",
   "target": {"min_diff": x} or {"min_value": x} or null, "target_met": bool or null, "ci_method"}

Verdicts: "holds" when the interval excludes 0 in the claimed direction (for a non-inferiority claim
`a >= b - m`: its lower bound is >= -m); "does not hold" when it excludes it the other way; "inconclusive"
otherwise or without an interval; "not measured" when a value is missing. `holds` is True / False / None
for the same. Whether the effect reached the size issue 20 asks for is `target_met`, on the point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from r1repro.evaluation.stats import diff_ci, mean_ci, newcombe_diff, wilson

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"
HOLDS_FLAG = {HOLDS: True, DOES_NOT_HOLD: False, INCONCLUSIVE: None, NOT_MEASURED: None}
# Below this general accuracy the base has no skill to forget: any drop is noise.
MIN_BASE_GENERAL = 0.2
# LoRA study (recipes/tiny/studies.yaml): stage 3 without general data, full fine-tuning vs LoRA, same steps.
FULL, LORA = "rejection_sft_nogeneral", "rejection_sft_nogeneral_lora"
LATER_REASONING_STAGES = ("cold_start", "reasoning_rl", "rejection_sft", "all_scenario_rl")


def verdict(ci: tuple[float, float] | None, direction: str = ">", margin: float | None = None) -> str:
    """direction ">": claim a > b; "<": claim a < b; margin m (with ">"): claim a >= b - m."""
    if ci is None:
        return INCONCLUSIVE
    lo, hi = ci
    if margin is not None:
        return HOLDS if lo >= -margin else DOES_NOT_HOLD if hi < -margin else INCONCLUSIVE
    if direction == "<":
        lo, hi = -hi, -lo
    return HOLDS if lo > 0 else DOES_NOT_HOLD if hi < 0 else INCONCLUSIVE


def target_met(diff: float | None, target: dict | None) -> bool | None:
    if diff is None or not target or "min_diff" not in target:
        return None
    # a zero target means "raises": strictly above
    return bool(diff > 0 if target["min_diff"] == 0 else diff >= target["min_diff"] - 1e-12)


@dataclass(frozen=True)
class Effect:
    effect: str
    a: str
    b: str
    task: str
    metric: str
    direction: str = ">"  # the claim: a > b, or a < b
    margin: float | None = None  # non-inferiority: the claim is a >= b - margin
    min_diff: float | None = None  # issue 20's size target on value_a - value_b

    @property
    def claim(self) -> str:
        if self.margin is not None:
            return f"{self.a} >= {self.b} - {self.margin:g}"
        return f"{self.a} {self.direction} {self.b}"


def lookup(table: dict, ckpt: str, task: str, metric: str):
    """table[ckpt][task][metric], None where any level is missing (report.json's evals, intervals, units)."""
    return table.get(ckpt, {}).get(task, {}).get(metric)


def _fmt(v: float) -> str:
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.3f}"


def _record(e: Effect, va, vb, diff, ci, n, v: str, evidence: str, method: str | None,
            target: dict | None = None) -> dict:
    target = target if target is not None else ({"min_diff": e.min_diff} if e.min_diff is not None else None)
    va, vb, diff = (None if x is None else float(x) for x in (va, vb, diff))  # plain floats for JSON
    return {"effect": e.effect, "claim": e.claim, "a": e.a, "b": e.b, "task": e.task, "metric": e.metric,
            "value_a": va, "value_b": vb, "diff": diff, "ci95": None if ci is None else [float(ci[0]), float(ci[1])],
            "n": n, "verdict": v, "holds": HOLDS_FLAG[v], "evidence": evidence, "target": target,
            "target_met": target_met(diff, target), "ci_method": method}


def measure(e: Effect, evals: dict, units: dict) -> dict:
    """One effect from evals[ckpt][task][metric] and, where the eval left records, per-problem units
    (units[ckpt][task][metric], r1repro.evaluation.stats)."""
    va, vb = lookup(evals, e.a, e.task, e.metric), lookup(evals, e.b, e.task, e.metric)
    if va is None or vb is None:
        return _record(e, va, vb, None, None, None, NOT_MEASURED,
                       f"not measured ({e.a} or {e.b} has no {e.task} {e.metric})", None)
    diff = va - vb
    ua, ub = lookup(units, e.a, e.task, e.metric), lookup(units, e.b, e.task, e.metric)
    na, nb = lookup(evals, e.a, e.task, "n"), lookup(evals, e.b, e.task, "n")
    result = diff_ci(ua, ub) if ua and ub else None
    if result:
        ci, n, method = result["ci95"], result["n"], result["method"]
    elif e.metric != "mean_length" and na and nb:  # a proportion (or a mean of them) and its n
        ci, n, method = newcombe_diff(va, na, vb, nb), min(na, nb), "Newcombe (no per-problem records)"
    else:
        ci, n, method = None, None, None
    shown = f"{e.task} {e.metric}: {e.a} {_fmt(va)} vs {e.b} {_fmt(vb)}; diff {diff:+.3f}"
    shown += f" [{ci[0]:+.3f}, {ci[1]:+.3f}] ({method}, n={n})" if ci else " (no per-problem records: no interval)"
    return _record(e, va, vb, diff, ci, n, verdict(ci, e.direction, e.margin), shown, method)


def at_least(effect: str, ckpt: str, task: str, metric: str, threshold: float, evals: dict, units: dict) -> dict:
    """A single value against a threshold (the base's general accuracy >= 0.8), Wilson interval. With
    records, n counts distinct problems (a small test set cycled to fill the eval counts once)."""
    e = Effect(effect, ckpt, None, task, metric)
    target = {"min_value": threshold}
    value, u = lookup(evals, ckpt, task, metric), lookup(units, ckpt, task, metric)
    base = {"claim": f"{ckpt} >= {threshold:g}", "value_b": threshold, "target": target}
    if value is None:
        rec = _record(e, None, None, None, None, None, NOT_MEASURED, f"not measured ({ckpt} has no {task} {metric})",
                      None, target)
        return {**rec, **base}
    n = len(u) if u else lookup(evals, ckpt, task, "n")
    successes = sum(s / c for s, c in u.values() if c) if u else value * (n or 0)
    ci = wilson(successes, n) if n else None
    diff = value - threshold
    ci_diff = None if ci is None else (ci[0] - threshold, ci[1] - threshold)
    v = verdict(ci_diff, margin=0.0)  # holds when the whole interval is at or above the threshold
    evidence = f"{task} {metric}: {ckpt} {value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}] (Wilson, n={n})" if ci else "")
    rec = _record(e, value, threshold, diff, ci_diff, n, v, evidence, "Wilson" if ci else None, target)
    return {**rec, **base, "target_met": bool(value >= threshold)}


def effects() -> list[Effect]:
    """The effects measured from the stage evals (the pass@k study adds its own, pass_at_k_findings)."""
    out = [
        Effect("R1-Zero: RL from the base raises accuracy", "r1zero", "base", "reasoning", "accuracy_greedy",
               min_diff=0.30),
        Effect("R1-Zero: responses get longer", "r1zero", "base", "reasoning", "mean_length"),
        # A real model (recipes/smollm2-135m/pipeline_r1zero.yaml): the same run at learning rate 0 is the control.
        Effect("R1-Zero beats its learning-rate-0 control (real model)", "r1zero", "control", "reasoning",
               "accuracy_greedy", min_diff=0.10),
        Effect("R1-Zero learns the format from a low start (real model)", "r1zero", "control", "reasoning",
               "format_rate", min_diff=0.10),
    ]
    out += [Effect(f"Stage {stage} keeps R1-Zero's accuracy (not worse by more than 0.05)", stage, "r1zero",
                   "reasoning", "accuracy_greedy", margin=0.05, min_diff=-0.05) for stage in LATER_REASONING_STAGES]
    out += [
        Effect("Language-consistency reward raises consistency", "r1zero_lang", "r1zero", "reasoning",
               "language_consistency", min_diff=0.0),
        Effect("Language-consistency reward costs some accuracy (R1)", "r1zero_lang", "r1zero", "reasoning",
               "accuracy_greedy", direction="<"),
        Effect("Distillation beats GRPO on the same small student", "distill", "student_grpo", "reasoning",
               "accuracy_greedy", min_diff=0.15),
        Effect("LoRA learns less: full fine-tuning's reasoning gain over the start exceeds LoRA's", FULL, LORA,
               "reasoning", "accuracy_greedy"),
        Effect("LoRA forgets less: LoRA keeps more general accuracy than full fine-tuning", LORA, FULL, "general",
               "accuracy_greedy"),
    ]
    return out


# Findings about general skills, judged only when the base has some (MIN_BASE_GENERAL).
GENERAL_EFFECTS = [
    Effect("Forgetting: reasoning RL lowers general accuracy", "r1zero", "base", "general", "accuracy_greedy",
           direction="<"),
    Effect("Stage 3's general data keeps general skills (vs the same stage without it)", "rejection_sft",
           "rejection_sft_nogeneral", "general", "accuracy_greedy", min_diff=0.10),
    Effect("Stage 3 (with general data) keeps reasoning_rl's general accuracy (not worse by more than 0.05)",
           "rejection_sft", "reasoning_rl", "general", "accuracy_greedy", margin=0.05, min_diff=-0.05),
    Effect("Stage 3 (with general data) recovers general accuracy lost in stage 2", "rejection_sft", "reasoning_rl",
           "general", "accuracy_greedy"),
]


def findings(evals: dict, study: dict | None, units: dict | None = None,
             study_units: dict | None = None) -> list[dict]:
    """Every effect's finding. units / study_units: per-problem data of the stage evals / the pass@k study."""
    units = units or {}
    out = [measure(e, evals, units) for e in effects()]
    # The LoRA effects are stated as gains / losses from the start (the base); the start cancels in the difference.
    for f in out:
        if f["a"] in (FULL, LORA) and f["value_a"] is not None and f["value_b"] is not None:
            start = lookup(evals, "base", f["task"], f["metric"])
            if start is not None:
                f["evidence"] += (f"; change from the base ({start:.3f}): {f['a']} {f['value_a'] - start:+.3f}, "
                                  f"{f['b']} {f['value_b'] - start:+.3f}")
    base_general = lookup(evals, "base", "general", "accuracy_greedy")
    out.append(at_least("The base has general skill to forget (general accuracy >= 0.8)", "base", "general",
                        "accuracy_greedy", 0.8, evals, units))
    general = [measure(e, evals, units) for e in GENERAL_EFFECTS]
    if base_general is None or base_general < MIN_BASE_GENERAL:  # the numbers stay, the verdict does not
        general = [f if f["verdict"] == NOT_MEASURED else
                   {**f, "verdict": NOT_MEASURED, "holds": None,
                    "evidence": f"not measurable: the base scores {base_general} on the general task (needs >= "
                                f"{MIN_BASE_GENERAL}); {f['evidence']}"} for f in general]
    out += general
    out += pass_at_k_findings(study, study_units or {})
    return out


def pass_at_k_findings(study: dict | None, units: dict, rl: str = "r1zero", base: str = "base",
                       task: str = "reasoning") -> list[dict]:
    """The pass@k critique: RL raises pass@1, while the base catches up (gap narrows) or overtakes at large k."""
    curves = (study or {}).get("curves", {})
    b, r = curves.get(base, {}).get(task), curves.get(rl, {}).get(task)
    if not b or not r:
        e = Effect("pass@k: the base catches up with RL at large k", base, rl, task, "pass@k")
        return [_record(e, None, None, None, None, None, NOT_MEASURED,
                        "not measured (no pass@k study for base and r1zero)", None)]
    k_max = max(int(m.split("@")[1]) for m in b if m.startswith("pass@") and m in r)
    top = f"pass@{k_max}"
    out = [measure(Effect("pass@k: RL raises pass@1", rl, base, task, "pass@1"), curves, units),
           measure(Effect(f"pass@k: the base overtakes RL by k = {k_max}", base, rl, task, top), curves, units)]
    # The gap narrows: (rl - base) at pass@1 minus (rl - base) at pass@k_max, per problem.
    e = Effect(f"pass@k: the gap to the base narrows by k = {k_max}", rl, base, task, f"gap pass@1 - gap {top}")
    gap1, gapk = r["pass@1"] - b["pass@1"], r[top] - b[top]
    ci, n = _gap_ci(units, rl, base, task, top)
    evidence = (f"pass@1 {base} {b['pass@1']:.3f} vs {rl} {r['pass@1']:.3f}; {top} {base} {b[top]:.3f} vs {rl} "
                f"{r[top]:.3f}; gap {gap1:+.3f} -> {gapk:+.3f}")
    evidence += f", narrowing [{ci[0]:+.3f}, {ci[1]:+.3f}] (paired bootstrap, n={n})" if ci else " (no interval)"
    method = "paired bootstrap over problems" if ci else None
    gap = _record(e, gap1, gapk, gap1 - gapk, ci, n, verdict(ci), evidence, method)
    out.insert(1, {**gap, "claim": f"({rl} - {base}) at pass@1 > at {top}"})
    return out


def _gap_ci(units: dict, rl: str, base: str, task: str, top: str):
    """Interval of gap(pass@1) - gap(pass@k) over the problems all four per-problem series share."""
    series = [lookup(units, c, task, m) for c in (rl, base) for m in ("pass@1", top)]
    if not all(series):
        return None, None
    keys = set.intersection(*(set(s) for s in series))
    r1, rk, b1, bk = ({k: s[k][0] / s[k][1] for k in keys if s[k][1]} for s in series)
    shared = r1.keys() & rk.keys() & b1.keys() & bk.keys()
    per_problem = {k: ((r1[k] - b1[k]) - (rk[k] - bk[k]), 1.0) for k in shared}
    return (mean_ci(per_problem), len(per_problem)) if per_problem else (None, None)


def _ci_text(f: dict) -> str:
    if f["diff"] is None:
        return "–"
    ci = f["ci95"]
    fmt = (lambda v: f"{v:+.1f}") if abs(f["diff"]) >= 10 else (lambda v: f"{v:+.2f}")
    return fmt(f["diff"]) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else " [no interval]")


def _target_text(f: dict) -> str:
    t = f.get("target")
    if not t:
        return "–"
    goal = f"≥ {t['min_value']:g}" if "min_value" in t else (
        "> 0" if t["min_diff"] == 0 else f"≥ {t['min_diff']:+.2f}")
    met = {True: "met", False: "not met", None: "–"}[f.get("target_met")]
    return f"{goal}: {met}"


def findings_markdown(items: list[dict]) -> str:
    lines = ["| effect | claim | difference [95% CI] | n | verdict | target | evidence |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {f['effect']} | {f['claim']} | {_ci_text(f)} | {f['n'] if f['n'] is not None else '–'} | "
              f"**{f['verdict']}** | {_target_text(f)} | {f['evidence']} |" for f in items]
    return "\n".join(lines)

