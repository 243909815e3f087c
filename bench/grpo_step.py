"""r1repro's GRPO stage vs a plain TRL GRPOTrainer script on the identical tiny config.

Both train the same freshly built tiny model (same seed, same GRPOConfig, same prompts) for the same
number of steps; the plain script checks answers with math-verify in-process and the format with a regex, as a
plain TRL script for string completions would (trl.rewards.accuracy_reward expects chat messages). Runs
alternate (ours, plain, ours, plain, ...) so machine noise hits both alike.
Prints seconds per step for each and the ratio ours / plain (goal <= 1.05).

    python bench/grpo_step.py [--steps 10] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes/tiny/r1zero.yaml"

PLAIN_SCRIPT = r'''
import json, re, sys, time
import yaml
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from math_verify import parse, verify

model_dir, out_dir, steps, recipe = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fields = {f for f in GRPOConfig.__dataclass_fields__}
cfg = {k: v for k, v in yaml.safe_load(open(recipe)).items() if k in fields}
cfg.update(output_dir=out_dir, max_steps=steps, save_strategy="no", logging_steps=1, disable_tqdm=True)
args = GRPOConfig(**cfg)
FORMAT = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
def format_reward(completions, **kw):
    return [1.0 if FORMAT.match(c) else 0.0 for c in completions]
def accuracy_reward(completions, solution, **kw):
    # trl.rewards.accuracy_reward expects chat completions; a plain-text script checks in-process
    out = []
    for c, gold in zip(completions, solution):
        m = ANSWER.findall(c)
        out.append(float(verify(parse(gold), parse(m[-1]))) if m else 0.0)
    return out
from r1repro.tiny.tasks import task_rows
rows = task_rows("addition", "train", 2000, 0)
ds = Dataset.from_list([{"prompt": f"User: {r['problem']}. Assistant:", "solution": r["solution"]} for r in rows])
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)
trainer = GRPOTrainer(model=model, reward_funcs=[format_reward, accuracy_reward], args=args, train_dataset=ds,
                      processing_class=tok)
start = time.time()
out = trainer.train()
print(json.dumps({"train_runtime": out.metrics["train_runtime"], "wall": time.time() - start}))
'''


def run_ours(model_dir: str, work: Path, steps: int, i: int) -> float:
    out = work / f"ours{i}"
    cmd = [sys.executable, "-m", "r1repro.cli", "r1zero", "--config", str(RECIPE), "--run_dir", str(work),
           "--model_name_or_path", model_dir, "--output_dir", str(out), "--max_steps", str(steps),
           "--save_strategy", "no", "--logging_steps", "1", "--disable_tqdm", "true", "--eval_num_problems", "0"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    return float(last["train_runtime"]) / steps


def run_plain(model_dir: str, work: Path, steps: int, i: int) -> float:
    script = work / "plain_grpo.py"
    script.write_text(PLAIN_SCRIPT)
    result = subprocess.run([sys.executable, str(script), model_dir, str(work / f"plain{i}"), str(steps), str(RECIPE)],
                            check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])["train_runtime"] / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", help="a model dir to start from (default: a fresh tiny model)")
    args = parser.parse_args()
    from r1repro.tiny.model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = args.model or str(build_tiny_model(work / "model", "small", seed=0))
        ours, plain = [], []
        for i in range(args.repeats):
            t = time.time()
            ours.append(run_ours(model_dir, work, args.steps, i))
            plain.append(run_plain(model_dir, work, args.steps, i))
            print(f"repeat {i}: ours {ours[-1]:.3f} s/step, plain TRL {plain[-1]:.3f} s/step ({time.time() - t:.0f}s)",
                  flush=True)
    o, p = statistics.median(ours), statistics.median(plain)
    print("\n| runner | s/step (median) |\n|---|---|")
    print(f"| r1repro r1zero stage | {o:.3f} |\n| plain TRL GRPOTrainer | {p:.3f} |")
    print(f"ratio ours/plain: {o / p:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
