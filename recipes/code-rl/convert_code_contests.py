"""Convert DeepMind's CodeContests (hub id deepmind/code_contests) into the code-RL recipe's JSONL:
one row per problem with `problem` (the statement), `tests` (a list of {"input", "output"}: public,
private and generated tests merged) and `task: code`, the format rewards/code_tests.py reads.

    python recipes/code-rl/convert_code_contests.py --output data/code_contests.jsonl [--max-tests 20]
    sbatch ... slurm/stage2_grpo.sh --config recipes/code-rl/reasoning_rl.yaml --dataset data/code_contests.jsonl

Downloads the dataset (run it where the hub is reachable); r1repro itself never does this for you.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows(split: str, max_tests: int):
    import datasets

    for ex in datasets.load_dataset("deepmind/code_contests", split=split):
        tests = []
        for kind in ("public_tests", "private_tests", "generated_tests"):
            tests += [{"input": i, "output": o} for i, o in zip(ex[kind]["input"], ex[kind]["output"])]
        if tests:  # a problem without tests cannot be rewarded
            yield {"id": f"{split}-{ex['name']}", "problem": ex["description"], "tests": tests[:max_tests],
                   "task": "code"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--max-tests", type=int, default=20, help="tests kept per problem (bounds the reward's time)")
    args = parser.parse_args()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(args.output, "w") as f:
        for row in rows(args.split, args.max_tests):
            f.write(json.dumps(row) + "\n")
            n += 1
    print(f"{n} problems -> {args.output}")


if __name__ == "__main__":
    main()
