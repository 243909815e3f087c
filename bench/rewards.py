"""Reward throughput, printed as ratios from one run (not a timed test).

1. accuracy: ours (math-verify in a persistent worker pool, integer fast path) vs trl.rewards.accuracy_reward
   on the same 2000 completions (half GSM8K-style integers, half LaTeX answers). Goal: >= 1.8x on 2
   cores, 0 hangs. Also reports how often the two disagree.
2. code_tests: the bubblewrap sandbox (warm slots: one long-lived sandbox per slot; and cold: a new
   bwrap per run, for reference) vs a plain, unsandboxed subprocess runner on the same programs and
   tests, same parallelism. Goal: >= 0.85x.

Each measurement is repeated (--repeat, interleaved so that load from other processes hits all
contenders alike) and the median ratio is reported; the accuracy repeats use fresh problems, so no
cache carries over.

    python bench/rewards.py [--n 2000] [--code-runs 240] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
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
        return rf"\frac{{{a}}}{{{b}}}", rng.choice([rf"\dfrac{{{2 * a}}}{{{2 * b}}}", f"{a}/{b}",
                                                    rf"\frac{{{a + 1}}}{{{b}}}"])
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


def bench_accuracy(n: int, repeat: int = 1) -> None:
    from trl.rewards import accuracy_reward

    from r1repro.rewards import STATS, resolve_reward
    from r1repro.sandbox.mathpool import get_pool

    ours = resolve_reward("accuracy")
    t0 = time.perf_counter()
    get_pool().start()  # once per training run
    cold = time.perf_counter() - t0

    ratios, differ, trl_none, theirs_total, mine_total = [], 0, 0, 0.0, 0.0
    for seed in range(repeat):
        completions, golds = make_completions(n, seed=seed)
        chat = [[{"role": "assistant", "content": c}] for c in completions]
        t0 = time.perf_counter()
        theirs_scores = accuracy_reward(chat, golds)
        theirs = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours_scores = []
        for start in range(0, n, 64):  # GRPO-sized batches
            ours_scores += ours(completions[start : start + 64], solution=golds[start : start + 64])
        mine = time.perf_counter() - t0
        ratios.append(theirs / mine)
        theirs_total, mine_total = theirs_total + theirs, mine_total + mine
        differ += sum(a != b for a, b in zip(ours_scores, theirs_scores))
        trl_none += sum(b is None for b in theirs_scores)
    total = n * repeat
    print(f"accuracy: {n} completions (8 per problem) x {repeat} on {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  trl.rewards.accuracy_reward   {theirs_total:7.2f} s  ({total / theirs_total:7.0f}/s)")
    print(f"  r1repro accuracy (warm pool)  {mine_total:7.2f} s  ({total / mine_total:7.0f}/s); "
          f"pool start-up {cold:.2f} s once")
    print(f"  ratio ours/trl, median        {statistics.median(ratios):7.2f}x   "
          f"(goal >= 1.8x; each: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"  hangs (timeouts)              {STATS['accuracy']['timeouts']}")
    # trl parses a raw-LaTeX gold without `$` delimiters as unparseable (None) or misreads it; we wrap it.
    print(f"  disagreements with trl        {differ}/{total}  (trl found {trl_none} golds unparseable)")


PROGRAMS = [
    ("print(sum(map(int, input().split())))", "3 4\n", "7"),
    ("import sys\nprint(sorted(sys.stdin.read().split(), key=int)[0])", "5 2 9\n", "2"),
    ("n = int(input())\nprint(sum(i * i for i in range(n)))", "1000\n", "332833500"),
    ("s = input()\nprint(s[::-1])", "hello\n", "olleh"),
]


def plain_run(program: str, stdin: str, timeout: float) -> str:
    """The unsandboxed baseline: the same interpreter, a temp file, a timeout; nothing else. Its own
    session, as the sandboxed runs have: with the kernel's autogroup scheduling (on by default) each
    session is scheduled as a group, so without this a loaded machine would favour the sandbox."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(program)
    try:
        return subprocess.run(["/usr/bin/python3", "-I", f.name], input=stdin, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True).stdout  # fmt: skip
    finally:
        os.unlink(f.name)


def bench_code(runs: int, parallel: int, repeat: int = 1) -> None:
    from r1repro.rewards.code import outputs_match
    from r1repro.sandbox.box import Sandbox

    warm = Sandbox(slots=parallel)
    cold = Sandbox(slots=parallel, warm=False, uid_base=warm.uid_base + parallel)
    warm.check()
    cold.check()
    jobs = [PROGRAMS[i % len(PROGRAMS)] for i in range(runs)]

    def timed(fn) -> tuple[float, int]:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            ok = sum(pool.map(lambda job: outputs_match(fn(job), job[2]), jobs))
        return time.perf_counter() - t0, ok

    contenders = {
        "plain subprocess runner": lambda job: plain_run(job[0], job[1], 5.0),
        "bubblewrap, warm slots": lambda job: warm.run(job[0], job[1]).stdout,
        "bubblewrap, cold (per run)": lambda job: cold.run(job[0], job[1]).stdout,
    }
    times = {name: [] for name in contenders}
    passed = {}
    for _ in range(repeat):
        for name, fn in contenders.items():
            seconds, passed[name] = timed(fn)
            times[name].append(seconds)
    plain = times["plain subprocess runner"]
    print(f"code_tests: {runs} runs x {repeat}, {parallel} at a time, load average {os.getloadavg()[0]:.1f}")
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {name:27s} {median:6.2f} s  ({runs / median:5.1f} runs/s, {passed[name]} passed)")
    for name in ("bubblewrap, warm slots", "bubblewrap, cold (per run)"):
        ratios = [p / t for p, t in zip(plain, times[name])]
        print(f"  ratio {name.split(',')[1].strip():17s}/plain {statistics.median(ratios):5.2f}x   "
              f"(goal >= 0.85x; each: {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip
    warm.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--code-runs", type=int, default=240)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-code", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_accuracy:
        bench_accuracy(args.n, args.repeat)
    if not args.skip_code:
        bench_code(args.code_runs, args.parallel, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
