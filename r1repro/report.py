"""The run report: <run_dir>/report.json, report.md and plots, gathered from the stage directories.

report.json (the shape docs/architecture.md fixes; more fields welcome):
  {"stages": {"<stage>": {"status": "done", "wall_s": 12.3, ...}},
   "evals":  {"<checkpoint>": {"<task>": {"accuracy_greedy": ..., "pass@1": ..., ...}}},
   "training": {"<stage>": {"first": {...}, "last": {...}}}}
Checkpoint names come from the stage table (r1repro.stages.checkpoint_name): the `cpt` stage's model
is `base`; every other pipeline entry's model carries its name.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from r1repro.evaluation.report import markdown_table, plot_pass_at_k
from r1repro.evaluation.stats import bands, consistent, mean_cis, units_from_records
from r1repro.files import write_json_atomic, write_text_atomic
from r1repro.findings import NOT_MEASURED, findings, findings_markdown
from r1repro.jsonl import read_jsonl
from r1repro.stages import checkpoint_name
from r1repro.studies import forgetting_rows, forgetting_table, merge_study, read_study

# Training metrics worth following per stage (TRL's log keys).
CURVES = {
    "reward": "mean reward",
    "rewards/accuracy/mean": "accuracy reward (training samples)",
    "frac_reward_zero_std": "groups with zero reward variance",
    "completions/mean_length": "mean completion length (tokens)",
    "rewards/language_consistency/mean": "language consistency (training samples)",
    "loss": "loss",
}


SMOOTH_FROM, SMOOTH_WINDOW = 20, 10  # curves with 20+ points get a running mean over 10 steps


def read_metrics(output_dir: str | Path) -> list[dict]:
    path = Path(output_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: skip it
            continue
    return rows


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def training_summary(metrics: list[dict]) -> dict:
    """First and last logged value of each curve (averaged over the first/last 3 log lines)."""
    summary = {}
    for key in CURVES:
        values = [v for v in (_float(m.get(key)) for m in metrics) if v is not None]
        if len(values) >= 2:
            k = min(3, len(values) // 2)
            summary[key] = {"first": sum(values[:k]) / k, "last": sum(values[-k:]) / k}
    return summary


def plot_curves(training: dict[str, list[dict]], path: Path) -> None:
    import matplotlib  # lazy: a slow import (docs/architecture.md, measured facts), paid only when a report is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in CURVES if any(any(k in m for m in rows) for rows in training.values())]
    if not keys:
        return
    cols = min(3, len(keys))
    grid_rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(grid_rows, cols, figsize=(5 * cols, 3.5 * grid_rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys):
        for stage, rows in training.items():
            points = [(m["step"], _float(m[key])) for m in rows if key in m and _float(m[key]) is not None]
            if not points:
                continue
            steps, values = zip(*points)
            if len(values) < SMOOTH_FROM:
                ax.plot(steps, values, label=stage)
                continue
            # Per-step GRPO values are noisy (a few groups a step): the raw line faint, a running mean on top.
            line = ax.plot(steps, values, alpha=0.25)[0]
            w = SMOOTH_WINDOW
            smooth = [sum(values[max(0, i - w + 1):i + 1]) / len(values[max(0, i - w + 1):i + 1])
                      for i in range(len(values))]
            ax.plot(steps, smooth, color=line.get_color(), label=f"{stage} (mean of {w})")
        ax.set_title(CURVES[key])
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_accuracy(evals: dict, path: Path) -> None:
    import matplotlib  # lazy, as in plot_curves

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checkpoints = list(evals)
    tasks = sorted({t for e in evals.values() for t in e})
    if not checkpoints or not tasks:
        return
    fig, ax = plt.subplots(figsize=(1.6 * len(checkpoints) + 2, 3.5))
    width = 0.8 / len(tasks)
    for j, task in enumerate(tasks):
        values = [evals[c].get(task, {}).get("accuracy_greedy", 0.0) for c in checkpoints]
        ax.bar([i + j * width for i in range(len(checkpoints))], values, width, label=task)
    ax.set_xticks([i + width * (len(tasks) - 1) / 2 for i in range(len(checkpoints))], checkpoints, rotation=20)
    ax.set_ylabel("greedy accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_units(samples: Path, metrics: dict) -> dict | None:
    """Per-problem units (r1repro.evaluation.stats) from an eval's sample records, or None when there are
    none or they do not match `metrics` (records of an older eval): then no interval is paired on them."""
    if not samples.is_file():
        return None
    ks = tuple(sorted({int(m.split("@")[1]) for per_task in metrics.values() for m in per_task
                       if m.startswith("pass@")}))
    try:
        units = units_from_records(read_jsonl(samples, required=("task", "mode")), ks or (1,))
    except (ValueError, KeyError) as err:
        print(f"[report] {samples}: unreadable ({err}); no intervals from it")
        return None
    return units if consistent(units, metrics) else None


def intervals(units: dict) -> dict:
    """{checkpoint: {task: {metric: [lo, hi]}}}: 95% bootstrap interval of each metric over problems."""
    return {ckpt: {task: mean_cis(per_metric) for task, per_metric in per_task.items()}
            for ckpt, per_task in units.items()}


def stages_table(stages: dict) -> str:
    lines = ["| stage | status | wall (s) |", "|---|---|---|"]
    lines += [f"| {name} | {s['status']} | {s.get('wall_s', '')} |" for name, s in stages.items()]
    return "\n".join(lines)


def pass_at_k_plot_evals(evals: dict, study: dict | None, ci: dict | None = None) -> tuple[dict, dict]:
    """The stage evals (k <= their samples) plus, as their own panel, the study's many-sample curves:
    two sample sizes on one line would join two different estimates. Second: the bands (stage evals'
    `ci`, the study's own `bands`) under the same panel names."""
    plot_evals, plot_bands = copy.deepcopy(evals), copy.deepcopy(ci or {})
    if study:
        s = study["settings"]
        for ckpt, per_task in study["curves"].items():
            for task, metrics in per_task.items():
                label = f"{task}: {s['num_problems']} problems x {s['num_samples']} samples"
                plot_evals.setdefault(ckpt, {})[label] = metrics
                band = study.get("bands", {}).get(ckpt, {}).get(task)
                if band:
                    plot_bands.setdefault(ckpt, {})[label] = band
    return plot_evals, plot_bands


def report_text(report: dict) -> list[str]:
    """report.md's study sections: what holds in this run, forgetting, the pass@k settings."""
    md = ["## Effects: which hold in this run", "",
          "Each difference with its 95% interval (paired bootstrap over problems, 2000 resamples, where both "
          "checkpoints left per-problem records; else a Newcombe interval for two proportions). **holds** only "
          "when the interval excludes 0 in the claimed direction (for `a >= b - m`: its lower bound is at least "
          "-m); **does not hold** when it excludes 0 the other way; otherwise **inconclusive**. The target column "
          "says whether the point estimate reached the size the recipe sets out to show (issues 20 and 21).", "",
          findings_markdown([f for f in report["findings"] if f["verdict"] != NOT_MEASURED]), ""]
    missing = [f["effect"] for f in report["findings"] if f["verdict"] == NOT_MEASURED]
    if missing:  # a pipeline without those checkpoints (the demo without studies, the SmolLM2 run)
        md += ["Not measured in this run (a checkpoint or task it needs is missing): " + "; ".join(missing) + ".", ""]
    if report["forgetting"]:
        md += ["## Forgetting (general task, greedy accuracy per checkpoint vs the base)", "",
               forgetting_table(report["forgetting"]), "",
               "Stage 3 (rejection_sft) mixes general rows into its SFT data; `rejection_sft_nogeneral` (study "
               "pipeline) is the same stage without them, `rejection_sft_nogeneral_lora` that stage trained with "
               "LoRA. [lo, hi]: 95% bootstrap interval over problems.", ""]
    if report.get("pass_at_k"):
        s = report["pass_at_k"]["settings"]
        md += [f"## pass@k up to k = {s['num_samples']}", "",
               f"{s['num_problems']} reasoning problems x {s['num_samples']} samples per checkpoint, temperature "
               f"{s['temperature']}, top-p {s['top_p']}, at most {s['max_new_tokens']} new tokens; unbiased "
               "estimator (Chen et al. 2021). The evaluation table's pass@1..4 come from the stage evals (more "
               "problems, 4 samples); pass@8 and up from this study.", "",
               "| checkpoint | " + " | ".join(f"pass@{k}" for k in s["ks"]) + " |", "|---|" + "---|" * len(s["ks"])]
        study_bands = report["pass_at_k"].get("bands", {})
        for ckpt, per_task in report["pass_at_k"]["curves"].items():
            for task, metrics in per_task.items():
                band = study_bands.get(ckpt, {}).get(task, {})
                values = " | ".join(f"{metrics.get(f'pass@{k}', float('nan')):.3f}" + (
                    f" [{band[f'pass@{k}'][0]:.2f}, {band[f'pass@{k}'][1]:.2f}]" if f"pass@{k}" in band else "")
                    for k in s["ks"])
                md.append(f"| {ckpt} | {values} |")
        if study_bands:
            md.append("\n[lo, hi]: 95% bootstrap band over problems of the unbiased estimator.")
        md.append("")
    return md


def write_report(run_dir: str | Path, stages: list[dict], statuses: dict[str, dict]) -> Path:
    run_dir = Path(run_dir)
    evals, training, units = {}, {}, {}
    for stage in stages:
        name = stage["name"]
        status = statuses.get(name)
        if not status:
            continue
        out = Path(status["output_dir"])
        if (out / "eval.json").is_file() and status["status"] == "done":
            ckpt = checkpoint_name(name)
            evals[ckpt] = json.loads((out / "eval.json").read_text())
            if (u := load_units(out / "eval_samples.jsonl", evals[ckpt])) is not None:
                units[ckpt] = u
        metrics = read_metrics(out)
        if metrics:
            training[name] = metrics
    study_status = statuses.get("pass_at_k", {})
    study = read_study(study_status["output_dir"]) if study_status.get("status") == "done" else None
    study_units = {}
    if study:
        for ckpt, per_task in study["curves"].items():
            samples = Path(study_status["output_dir"]) / "samples" / f"{ckpt}.jsonl"
            if (u := load_units(samples, per_task)) is not None:
                study_units[ckpt] = u
        study["bands"] = {ckpt: bands(u) for ckpt, u in study_units.items()}
    ci = intervals(units)
    plot_evals, plot_bands = pass_at_k_plot_evals(evals, study, ci)
    if study:
        merge_study(evals, study)
    report = {
        "run_dir": str(run_dir),
        "stages": statuses,
        "evals": evals,
        "training": {name: training_summary(rows) for name, rows in training.items()},
        "forgetting": forgetting_rows(evals, intervals=ci),
        "findings": findings(evals, study, units, study_units),
        "intervals": ci,
    }
    if study:
        report["pass_at_k"] = study
    plots = {"curves": run_dir / "training_curves.png", "accuracy": run_dir / "accuracy.png",
             "pass_at_k": run_dir / "pass_at_k.png"}
    plot_curves(training, plots["curves"])
    plot_accuracy(evals, plots["accuracy"])
    if plot_evals:
        plot_pass_at_k(plot_evals, str(plots["pass_at_k"]), plot_bands)
    report["plots"] = {k: str(p) for k, p in plots.items() if p.is_file()}
    write_json_atomic(run_dir / "report.json", report)

    md = [f"# r1repro run report: {run_dir}", "", "## Stages", "", stages_table(statuses), ""]
    if evals:
        md += ["## Evaluation (test split)", "", markdown_table(evals), ""]
    md += report_text(report)
    if report["training"]:
        md += ["## Training (first → last logged values)", "", "| stage | metric | first | last |",
               "|---|---|---|---|"]
        for name, summary in report["training"].items():
            md += [f"| {name} | {key} | {v['first']:.3f} | {v['last']:.3f} |" for key, v in summary.items()]
        md.append("")
    md += [f"![{k}]({Path(p).name})" for k, p in report["plots"].items()]
    text = "\n".join(md) + "\n"
    write_text_atomic(run_dir / "report.md", text)
    print(text)
    return run_dir / "report.json"
