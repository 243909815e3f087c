"""Reward throughput, printed as ratios from one run (not a timed test).

1. accuracy: ours (math-verify in a persistent worker pool, integer fast path) vs trl.rewards.accuracy_reward
   on the same 2000 completions (half GSM8K-style integers, half LaTeX answers). Goal: >= 1.8x on 2
   cores, 0 hangs. Also reports how often the two disagree.
2. code_tests: the bubblewrap sandbox vs a plain, unsandboxed subprocess runner on the same programs
   and tests, same parallelism. Goal: >= 0.85x.

    python bench/rewards.py [--n 2000] [--code-runs 240]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

def latex_pair(problem: int, rng: random.Random) -> tuple[str, str]:
    """A problem's LaTeX gold and one sampled answer (equivalent in another form, or wrong), with random
    numbers so that no cache can stand in for parsing across problems."""
    p = random.Random(problem)
    a, b, c = p.randrange(1, 50), p.randrange(2, 50), p.randrange(2, 30)
    kind = p.randrange(5)
    if kind == 0:
        return rf"\frac{{{a}}}{{{b}}}", rng.choice([rf"\dfrac{{{2 * a}}}{{{2 * b}}}", f"{a}/{b}", rf"\frac{{{a + 1}}}{{{b}}}"])
    if kind == 1:
        return rf"{a}\sqrt{{{c}}}", rng.choice([rf"\sqrt{{{a * a * c}}}", rf"{a + 1}\sqrt{{{c}}}"])
    if kind == 2:
        return f"({a}, {a + b}]", rng.choice([f"({a},{a + b}]", f"[{a},{a + b}]"])
    if kind == 3:
        return rf"\{{{a}, {b}\}}", rng.choice([rf"\{{{b},{a}\}}", rf"\{{{a},{b + 1}\}}"])
    return rf"x^2 + {2 * a}x + {a * a}", rng.choice([f"(x+{a})^2", f"x^2+{a * a}"])


def make_completions(n: int, seed: int = 0, group: int = 8) -> tuple[list[str], list[str]]:
    """n completions as a GRPO batch sees them: `group` sampled answers per problem (same gold)."""
    rng = random.Random(seed)
    completions, golds = [], []
    for i in range(n):
        problem = i // group + 1000 * seed
        if problem % 2 == 0:
            gold = str(random.Random(problem).randrange(10, 5000))
            answer = gold if rng.random() < 0.6 else str(int(gold) + rng.choice([-1, 1, 10]))
        else:
            gold, answer = latex_pair(problem, rng)
        # \boxed inside <answer>: both rewards find the same final answer
        completions.append(f" <think> step {i}: working it out </think> <answer> \\boxed{{{answer}}} </answer>")
        golds.append(gold)
    return completions, golds


def bench_accuracy(n: int) -> None:
    from trl.rewards import accuracy_reward

    from r1repro.rewards import STATS, resolve_reward

    completions, golds = make_completions(n)
    chat = [[{"role": "assistant", "content": c}] for c in completions]
    ours = resolve_reward("accuracy")
    from r1repro.rewards.mathpool import get_pool

    t0 = time.perf_counter()
    get_pool().start()  # once per training run
    cold = time.perf_counter() - t0

    t0 = time.perf_counter()
    theirs_scores = accuracy_reward(chat, golds)
    theirs = time.perf_counter() - t0

    t0 = time.perf_counter()
    ours_scores = []
    for start in range(0, n, 64):  # GRPO-sized batches
        ours_scores += ours(completions[start : start + 64], solution=golds[start : start + 64])
    mine = time.perf_counter() - t0

    differ = sum(a != b for a, b in zip(ours_scores, theirs_scores))
    trl_none = sum(b is None for b in theirs_scores)
    print(f"accuracy: {n} completions (8 per problem) on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"  trl.rewards.accuracy_reward   {theirs:7.2f} s  ({n / theirs:7.0f}/s)")
    print(f"  r1repro accuracy (warm pool)  {mine:7.2f} s  ({n / mine:7.0f}/s); pool start-up {cold:.2f} s once")
    print(f"  ratio ours/trl                {theirs / mine:7.2f}x   (goal >= 1.8x)")
    print(f"  hangs (timeouts)              {STATS['accuracy']['timeouts']}")
    # trl parses a raw-LaTeX gold without `$` delimiters as unparseable (None) or misreads it; we wrap it.
    print(f"  disagreements with trl        {differ}/{n}  (trl found {trl_none} golds unparseable)")


PROGRAMS = [
    ("print(sum(map(int, input().split())))", "3 4\n", "7"),
    ("import sys\nprint(sorted(sys.stdin.read().split(), key=int)[0])", "5 2 9\n", "2"),
    ("n = int(input())\nprint(sum(i * i for i in range(n)))", "1000\n", "332833500"),
    ("s = input()\nprint(s[::-1])", "hello\n", "olleh"),
]


def plain_run(program: str, stdin: str, timeout: float) -> str:
    """The unsandboxed baseline: the same interpreter, a temp file, a timeout; nothing else."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(program)
    try:
        return subprocess.run(["/usr/bin/python3", "-I", f.name], input=stdin, capture_output=True, text=True, timeout=timeout).stdout
    finally:
        os.unlink(f.name)


def bench_code(runs: int, parallel: int) -> None:
    from r1repro.rewards.code import get_sandbox, outputs_match

    box = get_sandbox("bwrap", "/usr/bin/python3 -I", 5.0, parallel=parallel)
    jobs = [PROGRAMS[i % len(PROGRAMS)] for i in range(runs)]

    def timed(fn) -> tuple[float, int]:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            ok = sum(pool.map(lambda job: outputs_match(fn(job), job[2]), jobs))
        return time.perf_counter() - t0, ok

    plain_s, plain_ok = timed(lambda job: plain_run(job[0], job[1], 5.0))
    box_s, box_ok = timed(lambda job: box.run(job[0], job[1]).stdout)
    print(f"code_tests: {runs} runs, {parallel} at a time")
    print(f"  plain subprocess runner  {plain_s:6.2f} s  ({runs / plain_s:5.1f} runs/s, {plain_ok} passed)")
    print(f"  bubblewrap sandbox       {box_s:6.2f} s  ({runs / box_s:5.1f} runs/s, {box_ok} passed)")
    print(f"  ratio sandbox/plain      {plain_s / box_s:6.2f}x   (goal >= 0.85x)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--code-runs", type=int, default=240)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--skip-code", action="store_true")
    args = parser.parse_args(argv)
    bench_accuracy(args.n)
    if not args.skip_code:
        bench_code(args.code_runs, args.parallel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
