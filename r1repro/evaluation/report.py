"""Reports over several checkpoints: `evals[checkpoint][task][metric]` -> a markdown table and a
pass@k curve (PNG). Checkpoints keep their given order (base first, then each stage), so the table
reads as the recipe's progress and a `general` row shows forgetting."""

from __future__ import annotations

import re
from pathlib import Path

from r1repro.files import atomic_path

# Columns in this order first; any other metric follows (pass@k and cons@k sorted by k).
LEADING = ("accuracy_greedy", "pass@1")
TRAILING = ("format_rate", "mean_length", "language_consistency", "truncated_rate", "n")
_AT_K = re.compile(r"^(pass|cons)@(\d+)$")


def _metric_order(names: set[str]) -> list[str]:
    at_k = sorted((n for n in names if _AT_K.match(n) and n not in LEADING),
                  key=lambda n: (_AT_K.match(n)[1] != "pass", int(_AT_K.match(n)[2])))
    rest = sorted(n for n in names if n not in LEADING and n not in TRAILING and n not in at_k)
    return [n for n in LEADING if n in names] + at_k + rest + [n for n in TRAILING if n in names]


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
    return str(value)


def markdown_table(evals: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per (task, checkpoint), grouped by task so each checkpoint can be compared with base."""
    metrics = _metric_order({m for tasks in evals.values() for values in tasks.values() for m in values})
    tasks = list(dict.fromkeys(t for per_task in evals.values() for t in per_task))
    lines = ["| task | checkpoint | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for task in tasks:
        for checkpoint, per_task in evals.items():
            if task in per_task:
                values = per_task[task]
                lines.append(f"| {task} | {checkpoint} | " + " | ".join(_fmt(values.get(m)) for m in metrics) + " |")
    return "\n".join(lines)


def pass_at_k_curve(metrics: dict[str, float]) -> list[tuple[int, float]]:
    points = [(int(m[2]), v) for name, v in metrics.items()
              if (m := _AT_K.match(name)) and m[1] == "pass" and v is not None]
    return sorted(points)


def plot_pass_at_k(evals: dict[str, dict[str, dict[str, float]]], path_png: str, bands: dict | None = None) -> str:
    """pass@k against k (log2 axis), one panel per task, one line per checkpoint. Written atomically.
    bands[checkpoint][task]["pass@k"] = [lo, hi] (r1repro.evaluation.stats.bands): shaded around the line."""
    import matplotlib  # optional where eval runs in a lean venv (.venv-vllm has none); see evaluation/cli.py

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(t for per_task in evals.values() for t in per_task))
    if not tasks:
        raise ValueError("plot_pass_at_k: no evaluations to plot")
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        ks = set()
        for checkpoint, per_task in evals.items():
            points = pass_at_k_curve(per_task.get(task, {}))
            if points:
                ks.update(k for k, _ in points)
                (line,) = ax.plot([k for k, _ in points], [v for _, v in points], marker="o", label=checkpoint)
                band = (bands or {}).get(checkpoint, {}).get(task, {})
                shaded = [(k, *band[f"pass@{k}"]) for k, _ in points if f"pass@{k}" in band]
                if shaded:
                    ax.fill_between([k for k, _, _ in shaded], [lo for _, lo, _ in shaded],
                                    [hi for _, _, hi in shaded], color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ks) or [1])
        ax.set_xticklabels([str(k) for k in sorted(ks)] or ["1"])
        ax.set_ylim(-0.02, 1.02)  # a curve at 0 stays visible
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k")
        ax.set_title(task)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path_png)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return str(path)
