"""DAPO dynamic sampling against plain GRPO (issue 24): accuracy at equal optimizer steps, at equal
generation tokens, and wall time, over seeds, with 95% intervals.

For each seed, three runs of one GRPO recipe's stage (default: the tiny r1zero) from one base model:
- plain:   the recipe as it is (max_steps M).
- dynamic: the same with `--dynamic_sampling SPEC` (M optimizer steps; more generation per step).
- tokens:  plain again, given the dynamic run's generation budget: max_steps = M x (dynamic's tokens /
           plain's tokens), tokens being TRL's `num_tokens` (prompt + completion tokens through generation,
           every draw counted). With the recipe's constant learning rate its first M steps are plain's M
           steps; it also gets more optimizer steps than dynamic: equal generation, not equal compute.
Each run's end-of-stage eval (eval.json, eval_samples.jsonl) gives greedy accuracy and pass@1 per problem;
differences are paired over problems (same test problems in every run) with r1repro.evaluation.stats'
bootstrap, per seed and pooled over seeds (problems of each seed as units; seeds themselves are not
resampled), and across seeds (the per-seed differences as units, a t interval: the one that counts how much
training runs differ). Wall time is DONE.json's training wall_s.

    taskset -c 1 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python bench/dynamic_sampling.py \\
        --base /path/to/cpt --out runs/bench_ds [--recipe recipes/tiny/r1zero.yaml] [--seeds 0 1 2]
    python bench/dynamic_sampling.py --out runs/bench_ds --report-only

Runs that finished are skipped on a rerun (the stage's own DONE.json), so the bench resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from r1repro.evaluation.stats import paired_diff, units_from_records  # noqa: E402
from r1repro.findings import verdict  # noqa: E402

ARMS = ("plain", "dynamic", "tokens")
METRICS = ("accuracy_greedy", "pass@1")


def stage_dir(out: Path, seed: int, arm: str, stage: str) -> Path:
    return out / f"seed{seed}" / arm / stage


def last(metrics: list[dict], key: str):
    return next((m[key] for m in reversed(metrics) if key in m), None)


def read_metrics(path: Path) -> list[dict]:
    f = path / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []


def run(args, seed: int, arm: str, extra: list[str]) -> None:
    d = stage_dir(args.out, seed, arm, args.stage)
    if (d / "DONE.json").is_file() and (d / "eval.json").is_file():
        print(f"[bench] seed {seed} {arm}: done before", flush=True)
        return
    cmd = [sys.executable, "-m", "r1repro.cli", args.stage, "--config", args.recipe, "--run_dir", str(d.parent),
           "--output_dir", str(d), "--model_name_or_path", args.base, "--seed", str(seed), *extra, *args.extra]
    started = time.time()
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / "bench.log", "a") as log:
        proc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    print(f"[bench] seed {seed} {arm}: rc {proc.returncode} in {time.time() - started:.0f}s", flush=True)
    if proc.returncode:
        raise SystemExit(f"run failed: see {d.parent / 'bench.log'}")
    if not (d / "eval.json").is_file():  # a failed end-of-stage eval leaves the stage done (exit 0)
        raise SystemExit(f"{d}: trained but no eval.json (its eval failed: see {d.parent / 'bench.log'}); "
                         "rerun the bench to evaluate it")


def token_steps(args, seed: int) -> int | None:
    plain = last(read_metrics(stage_dir(args.out, seed, "plain", args.stage)), "num_tokens")
    dyn = last(read_metrics(stage_dir(args.out, seed, "dynamic", args.stage)), "num_tokens")
    if not plain or not dyn:
        return None
    return max(args.steps, round(args.steps * dyn / plain))


def measure(args) -> None:
    for seed in args.seeds:
        run(args, seed, "plain", ["--max_steps", str(args.steps)])
        run(args, seed, "dynamic", ["--max_steps", str(args.steps), "--dynamic_sampling", args.dynamic])
        if "tokens" in args.arms:
            run(args, seed, "tokens", ["--max_steps", str(token_steps(args, seed))])


# ------------------------------------------------------------------------------------------ report

def arm_result(args, seed: int, arm: str) -> dict | None:
    d = stage_dir(args.out, seed, arm, args.stage)
    if not (d / "eval.json").is_file():
        return None
    metrics = read_metrics(d)
    records = [json.loads(line) for line in (d / "eval_samples.jsonl").read_text().splitlines() if line.strip()]
    units = units_from_records(records)[args.task]
    ds = [m for m in metrics if "dynamic_sampling/generation_batches" in m]
    return {"eval": json.loads((d / "eval.json").read_text())[args.task], "units": units,
            "wall_s": json.loads((d / "DONE.json").read_text())["wall_s"],
            "steps": last(metrics, "step"), "num_tokens": last(metrics, "num_tokens"),
            "frac_zero_std": statistics.mean(m["frac_reward_zero_std"] for m in metrics
                                             if "frac_reward_zero_std" in m),
            "draws": statistics.mean(m["dynamic_sampling/generation_batches"] for m in ds) if ds else 1.0,
            "max_reached": statistics.mean(m["dynamic_sampling/max_reached"] for m in ds) if ds else None}


def pooled(results: dict, a: str, b: str, metric: str) -> dict | None:
    ua, ub = {}, {}
    for seed, arms in results.items():
        if arms.get(a) and arms.get(b):
            ua.update({f"{seed}/{k}": v for k, v in arms[a]["units"][metric].items()})
            ub.update({f"{seed}/{k}": v for k, v in arms[b]["units"][metric].items()})
    return paired_diff(ua, ub) if ua else None


# Student's t, 97.5% quantile, by degrees of freedom (seeds - 1): the across-seed interval below. Past 9 the
# value for 9: wider than t's own, never narrower.
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def across_seeds(diffs: list[float]) -> dict | None:
    """Seeds as the units: the mean of the per-seed differences and its 95% t interval. Unlike the pooled
    bootstrap (problems as units, seeds fixed), this counts the spread between training runs, so it is the
    interval a claim "dynamic helps" has to clear; wide with few seeds."""
    if len(diffs) < 2:
        return None
    mean = statistics.mean(diffs)
    half = T975[min(len(diffs) - 1, max(T975))] * statistics.stdev(diffs) / len(diffs) ** 0.5
    return {"diff": mean, "ci95": (mean - half, mean + half)}


def fmt_ci(d: dict | None) -> str:
    if d is None:
        return "n/a"
    lo, hi = d["ci95"]
    return f"{d['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] ({verdict((lo, hi))})"


def report(args) -> str:
    results = {s: {arm: arm_result(args, s, arm) for arm in ARMS} for s in args.seeds}
    lines = [f"Dynamic sampling vs plain GRPO: {args.recipe} ({args.stage}, {args.steps} steps), base {args.base}, "
             f"dynamic_sampling {args.dynamic}; eval task {args.task}", "",
             "| seed | run | steps | gen. tokens | train wall s | draws/step | frac zero-std (trained) | "
             "acc. greedy | pass@1 |", "|---|---|---|---|---|---|---|---|---|"]
    for seed, arms in results.items():
        for arm, r in arms.items():
            if r:
                lines.append(f"| {seed} | {arm} | {r['steps']} | {r['num_tokens']:,.0f} | {r['wall_s']:.0f} | "
                             f"{r['draws']:.2f} | {r['frac_zero_std']:.3f} | {r['eval']['accuracy_greedy']:.3f} | "
                             f"{r['eval']['pass@1']:.3f} |")
    lines += ["", "Paired differences over problems, 95% bootstrap interval (verdict: holds = interval above 0):", "",
              "| comparison | metric | " + " | ".join(f"seed {s}" for s in results) + " | pooled | across seeds (t) |",
              "|---|---|" + "---|" * (len(results) + 2)]
    for a, b, label in (("dynamic", "plain", "dynamic - plain, equal optimizer steps"),
                        ("dynamic", "tokens", "dynamic - plain, equal generation tokens")):
        for metric in METRICS:
            per_seed = []
            for arms in results.values():
                ra, rb = arms.get(a), arms.get(b)
                per_seed.append(paired_diff(ra["units"][metric], rb["units"][metric]) if ra and rb else None)
            both = fmt_ci(pooled(results, a, b, metric))
            spread = fmt_ci(across_seeds([d["diff"] for d in per_seed if d]))
            lines.append(f"| {label} | {metric} | " + " | ".join(map(fmt_ci, per_seed)) + f" | {both} | {spread} |")
    walls = {arm: [arms[arm]["wall_s"] for arms in results.values() if arms.get(arm)] for arm in ARMS}
    ratios = [arms["dynamic"]["wall_s"] / arms["plain"]["wall_s"] for arms in results.values()
              if arms.get("dynamic") and arms.get("plain")]
    lines += ["", "Train wall time (s, mean over seeds): " + ", ".join(
        f"{arm} {statistics.mean(w):.0f}" for arm, w in walls.items() if w)
        + (f"; dynamic / plain per seed: {', '.join(f'{r:.2f}' for r in ratios)}" if ratios else "")]
    return "\n".join(lines)


def running_mean(values: list[float], w: int = 5) -> list[float]:
    return [sum(values[max(0, i - w + 1):i + 1]) / len(values[max(0, i - w + 1):i + 1]) for i in range(len(values))]


def plot(args, path: Path) -> bool:
    """Training accuracy reward (mean over every sample generated, all draws) against optimizer steps and
    against generated tokens, per arm and seed, plus dynamic's generation batches per step."""
    try:  # matplotlib is not in .venv-vllm, where the SmolLM2 arm runs: rerun with --report-only elsewhere
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    colors = {"plain": "tab:blue", "dynamic": "tab:orange", "tokens": "tab:green"}
    for seed, style in zip(args.seeds, ("-", "--", ":", "-.")):
        for arm in ARMS:
            rows = [m for m in read_metrics(stage_dir(args.out, seed, arm, args.stage))
                    if args.curve in m and "num_tokens" in m]
            if not rows:
                continue
            acc = running_mean([m[args.curve] for m in rows])
            label = f"{arm}, seed {seed}"
            axes[0].plot([m["step"] for m in rows], acc, style, color=colors[arm], label=label)
            axes[1].plot([m["num_tokens"] / 1e3 for m in rows], acc, style, color=colors[arm], label=label)
            draws = [m.get("dynamic_sampling/generation_batches", 1) for m in rows]
            axes[2].plot([m["step"] for m in rows], draws, style, color=colors[arm], label=label)
    for ax, x, title in ((axes[0], "optimizer step", f"{args.curve} (running mean of 5 steps)"),
                         (axes[1], "generated tokens, thousands (TRL num_tokens)", f"{args.curve} vs generation"),
                         (axes[2], "optimizer step", "generation batches a step")):
        ax.set_xlabel(x)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="recipes/tiny/r1zero.yaml")
    p.add_argument("--stage", default="r1zero")
    p.add_argument("--base", help="the base model (model_name_or_path) every run starts from")
    p.add_argument("--out", type=Path, default=Path("runs/bench_dynamic_sampling"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dynamic", default="{metric: reward, max_generation_batches: 4}")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--task", default="reasoning")
    p.add_argument("--curve", default="rewards/accuracy/mean", help="the training metric plotted")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more stage flags, after everything else")
    args = p.parse_args(argv)
    if not args.report_only:
        if not args.base:
            p.error("--base is required to run")
        measure(args)
    text = report(args)
    print(text)
    (args.out / "dynamic_sampling.md").write_text(text + "\n")
    if plot(args, args.out / "dynamic_sampling.png"):
        print(f"plot: {args.out / 'dynamic_sampling.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
