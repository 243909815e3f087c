"""Studies on top of a pipeline run: a many-sample pass@k eval and a forgetting table (the verdict on each
claimed effect, with its interval, is r1repro/findings.py).

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
from r1repro.evaluation.settings import EvalSettings, SettingError
from r1repro.findings import lookup
from r1repro.rundir import finish_stage, is_done, read_done

STUDY_DIR = "pass_at_k"


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
        # The study's own rules, on top of EvalSettings' (a curve needs several samples, drawn by sampling).
        s = self.settings
        if s.num_samples < 2:
            raise ConfigError(f"pass_at_k.num_samples: must be >= 2 for a curve, got {s.num_samples}")
        if s.temperature <= 0:
            raise ConfigError(f"pass_at_k.temperature: must be > 0 (sampling), got {s.temperature}")
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
    try:
        settings = EvalSettings(**{**STUDY_DEFAULTS, **sampling})
    except SettingError as err:
        raise ConfigError(f"pass_at_k.{err.field}: {err.problem}") from None
    return PassAtKStudy(**own, settings=settings)


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



def forgetting_rows(evals: dict, task: str = "general", intervals: dict | None = None) -> list[dict]:
    """General-task greedy accuracy per checkpoint next to the base's (delta in points), with its 95%
    interval where the report has one (`intervals[checkpoint][task][metric]`, r1repro.report)."""
    base = lookup(evals, "base", task, "accuracy_greedy")
    rows = []
    for ckpt in evals:
        acc = lookup(evals, ckpt, task, "accuracy_greedy")
        if acc is None:
            continue
        delta = None if base is None or ckpt == "base" else round(100 * (acc - base), 1)
        rows.append({"checkpoint": ckpt, "accuracy_greedy": acc, "pass@1": lookup(evals, ckpt, task, "pass@1"),
                     "delta_vs_base_points": delta,
                     "accuracy_greedy_ci95": lookup(intervals or {}, ckpt, task, "accuracy_greedy")})
    return rows


def forgetting_table(rows: list[dict]) -> str:
    lines = ["| checkpoint | general accuracy (greedy) | general pass@1 | vs base (points) |", "|---|---|---|---|"]
    for r in rows:
        p1 = "–" if r["pass@1"] is None else f"{r['pass@1']:.3f}"
        delta = "–" if r["delta_vs_base_points"] is None else f"{r['delta_vs_base_points']:+.1f}"
        ci = r.get("accuracy_greedy_ci95")
        acc = f"{r['accuracy_greedy']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
        lines.append(f"| {r['checkpoint']} | {acc} | {p1} | {delta} |")
    return "\n".join(lines)
