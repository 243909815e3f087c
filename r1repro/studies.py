"""Studies on top of a pipeline run: a many-sample pass@k eval, a forgetting table, and a verdict on
each effect R1 (and its critics) claim, computed from the run's own numbers.

A pipeline recipe asks for the pass@k study with a `pass_at_k:` mapping (recipes/tiny/studies.yaml):

    pass_at_k:
      checkpoints: [base, r1zero, distill]   # report names: `base` is the cpt stage's model
      num_problems: 50                       # fewer problems, many samples: pass@k up to k = num_samples
      num_samples: 64
      temperature: 0.6                       # DeepSeek-R1 README
      top_p: 0.95

It runs after the stages, through `r1repro eval` (same rewards, same estimator), into
<run_dir>/pass_at_k/, and is skipped when its DONE.json matches the spec and the checkpoints' own
DONE.json files (a retrained checkpoint is evaluated again).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from r1repro.config import ConfigError
from r1repro.evaluation.cli import run as run_eval
from r1repro.evaluation.core import EvalSettings
from r1repro.rundir import finish_stage, is_done, read_done

STUDY_DIR = "pass_at_k"
# Below this general accuracy the base has no skill to forget: a drop would be noise on 100 problems.
MIN_BASE_GENERAL = 0.2


# The EvalSettings fields a study spec sets, flat beside the study's own fields (the studies.yaml schema);
# the others keep EvalSettings' defaults, and pass_k follows num_samples (`ks`).
STUDY_SETTINGS = ("num_samples", "temperature", "top_p", "max_new_tokens", "template", "seed")
# Where a study's defaults differ from a stage eval's: many samples of the tiny policy's short answers.
STUDY_DEFAULTS = {"num_samples": 64, "max_new_tokens": 96, "template": "tiny"}


@dataclass
class PassAtKStudy:
    checkpoints: list[str] = field(default_factory=lambda: ["base", "r1zero", "distill"])
    benchmark: str = "tiny_addition"
    label: str = "reasoning"  # the task name in the report
    num_problems: int = 50
    settings: EvalSettings = field(default_factory=lambda: EvalSettings(**STUDY_DEFAULTS))

    def __post_init__(self):
        ckpts = self.checkpoints
        if not isinstance(ckpts, list) or not ckpts or not all(isinstance(c, str) for c in ckpts):
            raise ConfigError(f"pass_at_k.checkpoints: expected a non-empty list of checkpoint names, got {ckpts!r}")
        if self.num_problems < 1:
            raise ConfigError(f"pass_at_k.num_problems: must be >= 1, got {self.num_problems}")
        s = self.settings
        if s.num_samples < 2:
            raise ConfigError(f"pass_at_k.num_samples: must be >= 2 for a curve, got {s.num_samples}")
        if s.temperature <= 0:
            raise ConfigError(f"pass_at_k.temperature: must be > 0 (sampling), got {s.temperature}")
        if not 0 < s.top_p <= 1:
            raise ConfigError(f"pass_at_k.top_p: must be in (0, 1], got {s.top_p}")
        self.settings = dataclasses.replace(s, pass_k=self.ks)

    @property
    def ks(self) -> tuple[int, ...]:
        """1, 2, 4, ... up to num_samples (and num_samples itself)."""
        ks, k = [], 1
        while k < self.settings.num_samples:
            ks.append(k)
            k *= 2
        return (*ks, self.settings.num_samples)

    def spec(self) -> dict:
        """The study as studies.yaml spells it (flat), the fingerprint of its DONE.json."""
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "settings"}
        return {**own, **{name: getattr(self.settings, name) for name in STUDY_SETTINGS}}


def study_keys() -> list[str]:
    """The keys a `pass_at_k:` mapping may have."""
    return [f.name for f in dataclasses.fields(PassAtKStudy) if f.name != "settings"] + list(STUDY_SETTINGS)


def parse_study(spec) -> PassAtKStudy:
    if not isinstance(spec, dict):
        raise ConfigError(f"pass_at_k: expected a mapping of {study_keys()}, got {spec!r}")
    unknown = sorted(set(spec) - set(study_keys()))
    if unknown:
        raise ConfigError(f"pass_at_k: unknown field '{unknown[0]}'; expected one of {sorted(study_keys())}")
    own = {k: v for k, v in spec.items() if k not in STUDY_SETTINGS}
    sampling = {k: v for k, v in spec.items() if k in STUDY_SETTINGS}
    return PassAtKStudy(**own, settings=EvalSettings(**{**STUDY_DEFAULTS, **sampling}))


def run_pass_at_k_study(run_dir: str | Path, study: PassAtKStudy, checkpoint_dirs: dict[str, str]) -> dict:
    """Evaluate the study's checkpoints (name -> model dir); a status dict for the report."""
    out = Path(run_dir) / STUDY_DIR
    missing = [c for c in study.checkpoints if c not in checkpoint_dirs]
    if missing:
        print(f"[pipeline] pass_at_k: no finished checkpoint {', '.join(missing)}; not run")
        return {"status": "skipped", "output_dir": str(out), "missing": missing}
    models = {c: checkpoint_dirs[c] for c in study.checkpoints}
    # The stages' DONE.json contract; a checkpoint finished again (a new DONE.json) redoes the study.
    config = {"study": study.spec(), "models": models, "done": {c: read_done(m) for c, m in models.items()}}
    if is_done(out, config):
        print("[pipeline] pass_at_k: done already, skipping")
        return {"status": "done", "wall_s": read_done(out).get("wall_s"), "output_dir": str(out), "skipped": True}
    print(f"[pipeline] pass_at_k: {', '.join(models)} on {study.num_problems} {study.label} problems x "
          f"{study.settings.num_samples} samples", flush=True)
    started = time.time()
    run_eval({"checkpoints": models, "benchmarks": [{"name": study.benchmark, "label": study.label}],
              "output_dir": str(out), "limit": study.num_problems, "overwrite": True, "settings": study.settings})
    finish_stage(out, config, started)
    return {"status": "done", "wall_s": read_done(out)["wall_s"], "output_dir": str(out)}


def read_study(output_dir: str | Path) -> dict | None:
    """report.json's `pass_at_k` section from the study's results.json, or None."""
    path = Path(output_dir) / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    settings = results.get("settings", {})
    curves = {ckpt: {task: {m: v for m, v in metrics.items() if m.startswith("pass@") or m in ("accuracy_greedy", "n")}
                     for task, metrics in per_task.items()} for ckpt, per_task in results.get("evals", {}).items()}
    return {
        "settings": {"num_problems": next(iter(results.get("tasks", {}).values()), None),
                     "num_samples": settings.get("num_samples"),
                     "temperature": settings.get("temperature"), "top_p": settings.get("top_p"),
                     "max_new_tokens": settings.get("max_new_tokens"), "ks": settings.get("pass_k")},
        "curves": curves,
    }


def merge_study(evals: dict, study: dict) -> None:
    """Copy the study's pass@k for the k's a stage eval lacks into evals[checkpoint][task] (so
    `evals.base.reasoning["pass@64"]` exists); the stage eval's own pass@1..4 stay as they are."""
    for ckpt, per_task in study["curves"].items():
        for task, metrics in per_task.items():
            target = evals.setdefault(ckpt, {}).setdefault(task, {})
            for name, value in metrics.items():
                if name.startswith("pass@") and name not in target:
                    target[name] = value


def _get(evals: dict, ckpt: str, task: str, metric: str):
    return evals.get(ckpt, {}).get(task, {}).get(metric)


def forgetting_rows(evals: dict, task: str = "general") -> list[dict]:
    """General-task greedy accuracy per checkpoint next to the base's (delta in points)."""
    base = _get(evals, "base", task, "accuracy_greedy")
    rows = []
    for ckpt in evals:
        acc = _get(evals, ckpt, task, "accuracy_greedy")
        if acc is None:
            continue
        delta = None if base is None or ckpt == "base" else round(100 * (acc - base), 1)
        rows.append({"checkpoint": ckpt, "accuracy_greedy": acc, "pass@1": _get(evals, ckpt, task, "pass@1"),
                     "delta_vs_base_points": delta})
    return rows


def forgetting_table(rows: list[dict]) -> str:
    lines = ["| checkpoint | general accuracy (greedy) | general pass@1 | vs base (points) |", "|---|---|---|---|"]
    for r in rows:
        p1 = "–" if r["pass@1"] is None else f"{r['pass@1']:.3f}"
        delta = "–" if r["delta_vs_base_points"] is None else f"{r['delta_vs_base_points']:+.1f}"
        lines.append(f"| {r['checkpoint']} | {r['accuracy_greedy']:.3f} | {p1} | {delta} |")
    return "\n".join(lines)


def _finding(effect: str, holds, evidence: str) -> dict:
    return {"effect": effect, "holds": holds, "evidence": evidence}


def _compare(evals, effect, a, b, task, metric, higher: bool = True):
    """`a`'s metric above (or below) `b`'s; holds None when either was not measured."""
    va, vb = _get(evals, a, task, metric), _get(evals, b, task, metric)
    if va is None or vb is None:
        return _finding(effect, None, f"not measured ({a} or {b} has no {task} {metric})")
    return _finding(effect, (va > vb) if higher else (va < vb), f"{task} {metric}: {a} {va:.3f} vs {b} {vb:.3f}")


def findings(evals: dict, study: dict | None) -> list[dict]:
    """One verdict per claimed effect: holds True / False, or None when this run did not measure it."""
    out = [
        _compare(evals, "R1-Zero: RL from the base raises accuracy", "r1zero", "base", "reasoning", "accuracy_greedy"),
        _compare(evals, "R1-Zero: responses get longer", "r1zero", "base", "reasoning", "mean_length"),
        _compare(evals, "Language-consistency reward raises consistency", "r1zero_lang", "r1zero", "reasoning",
                 "language_consistency"),
        _compare(evals, "Language-consistency reward costs some accuracy (R1)", "r1zero_lang", "r1zero", "reasoning",
                 "accuracy_greedy", higher=False),
        _compare(evals, "Distillation beats GRPO on the same small student", "distill", "student_grpo", "reasoning",
                 "accuracy_greedy"),
    ]
    base_general = _get(evals, "base", "general", "accuracy_greedy")
    if base_general is None or base_general < MIN_BASE_GENERAL:
        out.append(_finding("Forgetting: reasoning RL lowers general accuracy", None,
                            f"not measurable: the base scores {base_general} on the general task "
                            f"(needs >= {MIN_BASE_GENERAL})"))
    else:
        out.append(_compare(evals, "Forgetting: reasoning RL lowers general accuracy", "r1zero", "base", "general",
                            "accuracy_greedy", higher=False))
    stage3 = [_compare(evals, "Stage 3 (with general data) recovers general accuracy lost in stage 2",
                       "rejection_sft", "reasoning_rl", "general", "accuracy_greedy")]
    if "rejection_sft_nogeneral" in evals:
        stage3.insert(0, _compare(evals, "Stage 3's general data keeps general skills (vs the same stage without it)",
                                  "rejection_sft", "rejection_sft_nogeneral", "general", "accuracy_greedy"))
    if base_general is None or base_general < MIN_BASE_GENERAL:  # the numbers stay, the verdict does not
        stage3 = [{**f, "holds": None, "evidence": f"{f['evidence']}; too low to judge (base general {base_general})"}
                  for f in stage3]
    out += stage3
    out += pass_at_k_findings(study)
    return out


def pass_at_k_findings(study: dict | None, rl: str = "r1zero", base: str = "base",
                       task: str = "reasoning") -> list[dict]:
    """The pass@k critique: RL raises pass@1, while the base catches up (gap narrows) or overtakes at large k."""
    curves = (study or {}).get("curves", {})
    b, r = curves.get(base, {}).get(task), curves.get(rl, {}).get(task)
    if not b or not r:
        return [_finding("pass@k: the base catches up with RL at large k", None,
                         "not measured (no pass@k study for base and r1zero)")]
    k_max = max(int(m.split("@")[1]) for m in b if m.startswith("pass@") and m in r)
    b1, r1, bk, rk = b["pass@1"], r["pass@1"], b[f"pass@{k_max}"], r[f"pass@{k_max}"]
    evidence = f"pass@1 {base} {b1:.3f} vs {rl} {r1:.3f}; pass@{k_max} {base} {bk:.3f} vs {rl} {rk:.3f}"
    return [
        _finding("pass@k: RL raises pass@1", r1 > b1, evidence),
        _finding(f"pass@k: the gap to the base narrows by k = {k_max}", (r1 - b1) > (rk - bk), evidence),
        _finding(f"pass@k: the base overtakes RL by k = {k_max}", bk >= rk, evidence),
    ]


def findings_markdown(items: list[dict]) -> str:
    verdict = {True: "holds", False: "does not hold", None: "not measured"}
    lines = ["| effect | in this run | evidence |", "|---|---|---|"]
    lines += [f"| {f['effect']} | {verdict[f['holds']]} | {f['evidence']} |" for f in items]
    return "\n".join(lines)
