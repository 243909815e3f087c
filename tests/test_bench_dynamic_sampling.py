"""bench/dynamic_sampling.py's report half: from run directories as the stages leave them (metrics.jsonl,
eval.json, eval_samples.jsonl, DONE.json) it sizes the equal-tokens run, pairs the evals over problems per seed
and pooled, and draws the curves. Nothing here trains: the directories are written by the test."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [f"{a} + {a}" for a in range(40)]


@pytest.fixture(scope="module")
def ds():
    spec = importlib.util.spec_from_file_location("bench_dynamic_sampling", ROOT / "bench" / "dynamic_sampling.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def write_run(d: Path, right: int, tokens_per_step: float, draws: int | None, wall_s: float, steps: int = 4):
    """A finished stage: `right` of the problems answered correctly (greedy and both samples)."""
    d.mkdir(parents=True)
    rows = []
    for step in range(1, steps + 1):
        m = {"step": step, "num_tokens": tokens_per_step * step, "frac_reward_zero_std": 0.0 if draws else 0.5,
             "rewards/accuracy/mean": 0.1 * step}
        if draws:
            m.update({"dynamic_sampling/generation_batches": draws, "dynamic_sampling/max_reached": 0.0})
        rows.append(m)
    (d / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in rows))
    records = []
    for i, problem in enumerate(PROBLEMS):
        ok = i < right
        records.append({"task": "reasoning", "mode": "greedy", "problem": problem, "reward": float(ok)})
        records += [{"task": "reasoning", "mode": "sampled", "problem": problem, "prompt_id": i, "correct": ok,
                     "format": 1.0, "num_tokens": 20} for _ in range(2)]
    (d / "eval_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    acc = right / len(PROBLEMS)
    (d / "eval.json").write_text(json.dumps({"reasoning": {"accuracy_greedy": acc, "pass@1": acc}}))
    (d / "DONE.json").write_text(json.dumps({"wall_s": wall_s}))


def args_for(ds, out: Path):
    return ds.argparse.Namespace(out=out, stage="r1zero", seeds=[0, 1], steps=4, task="reasoning",
                                 recipe="recipes/tiny/r1zero.yaml", base="base", curve="rewards/accuracy/mean",
                                 dynamic="{metric: reward, max_generation_batches: 4}")


def test_across_seeds_interval_counts_the_spread_between_runs(ds):
    assert ds.across_seeds([0.1]) is None  # one seed: no spread to measure
    d = ds.across_seeds([-0.09, 0.03, 0.13])  # signs disagree: the interval spans 0
    assert d["diff"] == pytest.approx(0.0233, abs=1e-3)
    lo, hi = d["ci95"]
    assert lo < 0 < hi and hi - lo == pytest.approx(2 * 4.303 * 0.1102 / 3 ** 0.5, rel=1e-2)


def test_equal_token_run_gets_the_steps_of_dynamics_generation(ds, tmp_path):
    args = args_for(ds, tmp_path)
    assert ds.token_steps(args, 0) is None  # nothing measured yet: not sized
    write_run(ds.stage_dir(tmp_path, 0, "plain", "r1zero"), 20, 1000, None, 60)
    write_run(ds.stage_dir(tmp_path, 0, "dynamic", "r1zero"), 30, 1500, 2, 80)
    assert ds.token_steps(args, 0) == 6  # 4 steps x 1.5 the tokens


def test_report_pairs_arms_per_seed_and_pooled_and_draws_the_curves(ds, tmp_path):
    args = args_for(ds, tmp_path)
    for seed in (0, 1):
        write_run(ds.stage_dir(tmp_path, seed, "plain", "r1zero"), 20, 1000, None, 60)
        write_run(ds.stage_dir(tmp_path, seed, "dynamic", "r1zero"), 30, 1500, 2, 90)
    text = ds.report(args)
    assert "| 0 | dynamic | 4 | 6,000 | 90 | 2.00 | 0.000 | 0.750 | 0.750 |" in text
    assert "| 1 | plain | 4 | 4,000 | 60 | 1.00 | 0.500 | 0.500 | 0.500 |" in text
    steps_row = next(line for line in text.splitlines()
                     if line.startswith("| dynamic - plain, equal optimizer steps | pass@1"))
    cells = [c.strip() for c in steps_row.strip("|").split("|")]
    assert all(c.startswith("+0.250 [") and c.endswith("(holds)") for c in cells[2:5]), cells  # 2 seeds, pooled
    assert cells[5] == "+0.250 [+0.250, +0.250] (holds)"  # across seeds: both seeds gained exactly 0.25
    assert "equal generation tokens | pass@1 | n/a | n/a | n/a | n/a" in text  # no tokens arm run
    assert "dynamic / plain per seed: 1.50, 1.50" in text
    pytest.importorskip("matplotlib")
    assert ds.plot(args, tmp_path / "curves.png") and (tmp_path / "curves.png").stat().st_size > 0
