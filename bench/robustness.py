"""The tiny pipeline across the machine-dependent float paths one machine can produce (issue 20, part 2).

A configuration is a torch CPU kernel set (`ATEN_CPU_CAPABILITY`: default = not vectorised, avx2, avx512;
only those this CPU has), a thread count (1, 2) and a seed (0, 1, 2), optionally an MKL code path (`--mkl
AVX2`: MKL_ENABLE_INSTRUCTIONS=AVX2 next to unset). Each runs `r1repro pipeline --config PIPELINE --run-dir
OUT/<name> --seed N` in a process with that environment, logging to OUT/<name>/pipeline.log; then every
OUT/<name>/report.json is read and the spread of each effect printed and written to OUT/robustness.json
and OUT/robustness.md.

    python bench/robustness.py --subset --dry-run          # the plan and its estimated wall time
    python bench/robustness.py --subset [--out runs/robustness] [--pipeline recipes/tiny/studies.yaml]
    python bench/robustness.py --configs avx2-t1-s0 default-t2-s1
    python bench/robustness.py --report-only               # only the tables, from the runs already there
    python bench/robustness.py --check-paths               # which knobs change float results here
    python bench/robustness.py --smoke                     # 3 configs, 20 cpt steps, 2 GRPO steps

How each axis is applied, and checked in a child with the same environment before a configuration runs:
- seed: `r1repro pipeline` passes flags it does not know to every stage, so `--seed N` overrides each stage
  recipe's `seed:` (init, corpus, data order, sampling, the eval's problem draw). The pass@k study keeps
  its own `pass_at_k.seed`.
- threads: OMP_NUM_THREADS and MKL_NUM_THREADS, both (torch takes MKL's too), also for 2 (unset is one per
  core); the child must report torch.get_num_threads() == N. No stage sets threads: accelerate does so only
  in multi-process CPU runs without OMP_NUM_THREADS, the HF engine only when given num_threads (nothing does).
- capability: the child must report torch.backends.cpu.get_cpu_capability() as asked (torch keeps its best
  on a value it cannot use). Unset is the CPU's best, the same kernels as naming it: not a config of its own.
Measured with `--check-paths` (Intel Xeon with AMX, torch 2.13 cpu, 2026-12-03; a tiny-Llama forward and
backward): each capability gives other logits and gradients; 1 vs 2 threads other gradients;
`ONEDNN_MAX_CPU_ISA` (AVX2, SSE41) nothing (fp32 linear layers run MKL's sgemm, not oneDNN), so it is no
axis; `MKL_ENABLE_INSTRUCTIONS=AVX2` changes both (MKL picks its path per CPU
vendor and model, so another machine may run another one): the optional `--mkl` axis.

`--subset`, 9 configs on an AVX-512 CPU (5 without): avx2 and avx512 x seeds 0-2 at 1 thread and seed 0 at
2 threads, plus the slow `default` kernels at 1 thread, seed 0; `--subset --dry-run` prints the time it is
estimated to take (EST_S, from the timings in docs/architecture.md, measured facts). Quiet the machine must
be: on a loaded one a step takes many times as long (OpenMP threads wait on each other when either is
descheduled).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PIPELINE = "recipes/tiny/pipeline_r1zero.yaml"
# ATen's kernel sets and the cpuinfo flags each needs (torch checks avx512 f/bw/vl/dq, avx2 with fma).
CAPABILITY_FLAGS = {"default": set(), "avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512bw", "avx512vl",
                                                                          "avx512dq", "fma"}}
MKL_FLAGS = {"AVX2": {"avx2", "fma"}, "AVX512": {"avx512f", "avx512bw", "avx512vl", "avx512dq"}}
THREADS, SEEDS = (1, 2), (0, 1, 2)
# Seconds per config at 2 threads on a quiet 2-core machine with the 1,800-step CPT, the 1-thread slowdown and
# the non-vectorised kernels' slowdown, from the timings in docs/architecture.md, measured facts. Estimates
# only (the studies part is a guess): re-measure.
EST_S = {"pipeline_r1zero.yaml": 380, "pipeline.yaml": 680, "studies.yaml": 1000}
ONE_THREAD_SLOWDOWN, DEFAULT_KERNELS_SLOWDOWN = 1.6, 1.33
# Issue 20's targets, used where a finding carries no `target` (today's report.json has none).
TARGETS = [("r1zero", "base", "reasoning", "accuracy_greedy", {"min_diff": 0.30})]
TARGETS += [(s, "r1zero", "reasoning", "accuracy_greedy", {"min_diff": -0.05})
            for s in ("cold_start", "reasoning_rl", "rejection_sft", "all_scenario_rl")]
TARGETS += [("distill", "student_grpo", "reasoning", "accuracy_greedy", {"min_diff": 0.15}),
            ("r1zero_lang", "r1zero", "reasoning", "language_consistency", {"min_diff": 0.0}),
            ("rejection_sft", "reasoning_rl", "general", "accuracy_greedy", {"min_diff": -0.05}),
            ("rejection_sft", "rejection_sft_nogeneral", "general", "accuracy_greedy", {"min_diff": 0.10}),
            ("base", None, "general", "accuracy_greedy", {"min_value": 0.8})]
HEADLINE = [tuple(h.split("/")) for h in (
    "base/reasoning/accuracy_greedy base/reasoning/pass@1 r1zero/reasoning/accuracy_greedy r1zero/reasoning/pass@1 "
    "r1zero/reasoning/format_rate base/general/accuracy_greedy r1zero/general/accuracy_greedy "
    "reasoning_rl/reasoning/accuracy_greedy rejection_sft/reasoning/accuracy_greedy rejection_sft/general/"
    "accuracy_greedy all_scenario_rl/reasoning/accuracy_greedy distill/reasoning/accuracy_greedy "
    "student_grpo/reasoning/accuracy_greedy").split()]
LEGACY_VERDICT = {True: "holds", False: "does not hold", None: "not measured"}
AXIS_VARS = ("ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS")
# What torch sees in a child, and a hash of the tiny policy's shape of Llama, forward + backward (logits and
# gradients): configurations with the same hash take the same float path.
PROBE = """import hashlib, json, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig(vocab_size=117, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                                     num_attention_heads=4, num_key_value_heads=2))
ids = torch.randint(0, 117, (32, 64))
out = model(input_ids=ids, labels=ids)
out.loss.backward()
grads = torch.cat([p.grad.flatten() for p in model.parameters()])
digest = hashlib.sha1(out.logits.detach().numpy().tobytes() + grads.numpy().tobytes()).hexdigest()[:10]
print(json.dumps({"threads": torch.get_num_threads(), "capability": torch.backends.cpu.get_cpu_capability(),
                  "float_path": digest}))"""


def cpu_flags(cpuinfo: str) -> set[str]:
    """The flags every core has (/proc/cpuinfo lists them per core)."""
    cores = [set(line.split(":", 1)[1].split()) for line in cpuinfo.splitlines() if line.startswith("flags")]
    return set.intersection(*cores) if cores else set()


def supported(table: dict[str, set[str]], flags: set[str]) -> list[str]:
    return [name for name, needs in table.items() if needs <= flags]


@dataclass(frozen=True)
class Config:
    capability: str
    threads: int
    seed: int
    mkl: str | None = None

    @property
    def name(self) -> str:
        return f"{self.capability}-t{self.threads}-s{self.seed}" + (f"-mkl{self.mkl.lower()}" if self.mkl else "")

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in base.items() if k not in AXIS_VARS}  # the caller's own settings must not leak in
        env.update(ATEN_CPU_CAPABILITY=self.capability, OMP_NUM_THREADS=str(self.threads),
                   MKL_NUM_THREADS=str(self.threads))
        if self.mkl:
            env["MKL_ENABLE_INSTRUCTIONS"] = self.mkl
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH")) if p)
        return env


def enumerate_configs(capabilities, threads=THREADS, seeds=SEEDS, mkl=(None,)) -> list[Config]:
    """1-thread configurations first, so they pair up on the cores."""
    return [Config(c, t, s, m) for t in threads for c in capabilities for s in seeds for m in mkl]


def subset(configs: list[Config]) -> list[Config]:
    """Every vectorised capability x seed at 1 thread, and at 2 threads with the first seed; the slow
    non-vectorised `default` kernels at 1 thread with the first seed only (so that it fits an hour)."""
    first = min(c.seed for c in configs)
    return [c for c in configs if c.seed == first and (c.threads == 1 or c.capability != "default")
            or c.capability != "default" and c.threads == 1]


def pick(configs: list[Config], names: list[str]) -> list[Config]:
    by_name = {c.name: c for c in configs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown config {unknown[0]}; this CPU has {', '.join(by_name)}")
    return [by_name[n] for n in names]


def estimate_s(config: Config, pipeline: str) -> float:
    seconds = EST_S.get(Path(pipeline).name, EST_S["pipeline_r1zero.yaml"])
    return (seconds * (ONE_THREAD_SLOWDOWN if config.threads == 1 else 1.0)
            * (DEFAULT_KERNELS_SLOWDOWN if config.capability == "default" else 1.0))


def plan_wall_s(configs: list[Config], pipeline: str, cores: int) -> float:
    """Core-seconds over the cores: configs are packed until their threads fill them."""
    return sum(estimate_s(c, pipeline) * min(c.threads, cores) for c in configs) / cores


def probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_env(config: Config, seen: dict) -> str | None:
    """Why torch did not take this configuration's settings, or None."""
    return (f"torch runs {seen['threads']} threads, not {config.threads}" if seen["threads"] != config.threads
            else f"torch uses the {seen['capability']} kernels, not {config.capability}"
            if seen["capability"].lower() != config.capability else None)


def smoke_pipeline(pipeline: str, out: Path) -> str:
    """A copy of the pipeline whose stages take a few steps each and evaluate 8 problems."""
    recipe = yaml.safe_load(Path(pipeline).read_text())
    for stage in recipe["stages"]:
        cpt = stage.get("stage", stage["name"]) == "cpt"  # 20 steps of 32 documents; building 27k takes minutes
        stage["args"] = [*stage.get("args", []), *(["--max_steps", "20", "--corpus_num_docs", "640"] if cpt else
                                                   ["--max_steps", "2"]), "--eval_num_problems", "8",
                         "--eval_num_samples", "2"]
    path = out / "smoke_pipeline.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return str(path)


def _get(evals: dict, ckpt: str | None, task: str, metric: str):
    return (evals.get(ckpt) or {}).get(task, {}).get(metric) if ckpt else None


def target_ok(row: dict) -> bool | None:
    """Whether one configuration's number reaches its target: diff >= min_diff (> 0 when the target is 0,
    "raises"), or value >= min_value."""
    target = row.get("target") or {}
    if "min_value" in target:
        return None if row.get("value_a") is None else row["value_a"] >= target["min_value"] - 1e-12
    if "min_diff" in target and row.get("diff") is not None:
        return row["diff"] > 0 if target["min_diff"] == 0 else row["diff"] >= target["min_diff"] - 1e-12
    return None


def effect_rows(report: dict) -> list[dict]:
    """The report's findings, normalised, plus issue 20's targets that no finding covers, computed from
    `evals` (a report written before findings had numbers carries only effect / holds / evidence)."""
    evals, rows, covered = report.get("evals") or {}, [], set()
    targets = {t[:4]: t[4] for t in TARGETS}
    for f in report.get("findings") or []:
        key = (f.get("a"), f.get("b"), f.get("task"), f.get("metric"))
        va, vb = f.get("value_a"), f.get("value_b")
        if va is None and key[0] and key[2]:
            va, vb = _get(evals, key[0], key[2], key[3]), _get(evals, key[1], key[2], key[3])
        diff = f.get("diff") if f.get("diff") is not None or va is None or vb is None else va - vb
        ci, target = f.get("ci95"), f.get("target") or targets.get(key)
        # a value target's interval is of value - threshold: shift it back onto the value the table shows
        ci_low = None if not ci else ci[0] + (va - diff if "min_value" in (target or {}) and diff is not None else 0)
        rows.append({"effect": f["effect"], "value_a": va, "diff": diff, "ci_low": ci_low,
                     "verdict": f.get("verdict") or LEGACY_VERDICT[f.get("holds")], "target": target})
        covered.add(key)
    for key, target in targets.items():
        if key in covered:
            continue
        a, b, task, metric = key
        va, vb = _get(evals, a, task, metric), _get(evals, b, task, metric)
        diff = (va - vb) if va is not None and vb is not None else None
        name = f"{a} - {b}" if b else a
        rows.append({"effect": f"target: {name} ({task} {metric})", "value_a": va, "diff": diff, "ci_low": None,
                     "verdict": None, "target": target})
    return rows


def _target_text(target: dict | None) -> str:
    return ("–" if not target else f"value >= {target['min_value']:g}" if "min_value" in target else
            "diff > 0" if target.get("min_diff") == 0 else f"diff >= {target['min_diff']:+g}")


def aggregate(reports: dict[str, dict]) -> list[dict]:
    """Per effect across configurations: spread of the difference (of the value for min_value targets),
    worst lower 95% bound, verdict counts, and whether every measured configuration reaches the target."""
    by_effect: dict[str, list[dict]] = {}
    for report in reports.values():
        for row in effect_rows(report):
            by_effect.setdefault(row["effect"], []).append(row)
    out = []
    for effect, rows in by_effect.items():
        target = next((r["target"] for r in rows if r["target"]), None)
        shown = "value_a" if target and "min_value" in target else "diff"
        values = [r[shown] for r in rows if r[shown] is not None]
        lows = [r["ci_low"] for r in rows if r["ci_low"] is not None]
        oks = [target_ok({**r, "target": target}) for r in rows]
        oks = [ok for ok in oks if ok is not None]
        counts = {v: sum(r["verdict"] == v for r in rows)
                  for v in ("holds", "does not hold", "inconclusive", "not measured")}
        out.append({"effect": effect, "target": target, "shown": shown, "measured": len(values),
                    "configs": len(rows), "min": min(values) if values else None,
                    "median": statistics.median(values) if values else None, "max": max(values) if values else None,
                    "worst_ci_low": min(lows) if lows else None, "verdicts": counts,
                    "configs_meeting_target": sum(oks) if oks else None,
                    "min_meets_target": all(oks) if oks else None})
    return out


def headline(reports: dict[str, dict]) -> tuple[list[str], list[dict]]:
    """Columns that some configuration measured, and one row per configuration."""
    cols = [h for h in HEADLINE if any(_get(r.get("evals") or {}, *h) is not None for r in reports.values())]
    names = [f"{c} {t} {m}".replace(" accuracy_greedy", " greedy").replace(" reasoning", "") for c, t, m in cols]
    rows = [{"config": name, **{n: _get(r.get("evals") or {}, *h) for n, h in zip(names, cols)}}
            for name, r in reports.items()]
    return names, rows


def _num(v, signed: bool = False) -> str:
    return "–" if v is None else (f"{v:+.3f}" if signed else f"{v:.3f}")


def markdown(effects: list[dict], columns: list[str], rows: list[dict], runs: dict[str, dict]) -> str:
    yes_no = {True: "yes", False: "**no**", None: "–"}
    lines = [f"Effects across {len(runs)} configurations (min / median / max of the difference, or of the value "
             "for a value target; verdicts holds / does not hold / inconclusive / not measured):", "",
             "| effect | target | min | median | max | worst CI low | verdicts h/n/i/nm | min meets target |",
             "|---|---|---|---|---|---|---|---|"]
    for e in effects:
        signed, v = e["shown"] == "diff", e["verdicts"]
        counts = "/".join(str(v[k]) for k in ("holds", "does not hold", "inconclusive", "not measured"))
        counts = counts if any(v.values()) else "–"  # rows computed from evals carry no verdict
        met = yes_no[e["min_meets_target"]]
        if e["configs_meeting_target"] is not None and e["measured"] < len(runs):
            met += f" ({e['measured']} of {len(runs)} measured)"
        lines.append(f"| {e['effect']} | {_target_text(e['target'])} | {_num(e['min'], signed)} | "
                     f"{_num(e['median'], signed)} | {_num(e['max'], signed)} | {_num(e['worst_ci_low'], signed)} | "
                     f"{counts} | {met} |")
    lines += ["", "| config | exit | wall s | float path | " + " | ".join(columns) + " |",
              "|---" * (len(columns) + 4) + "|"]
    for row in rows:
        run = runs[row["config"]]
        lines.append(f"| {row['config']} | {run.get('exit_code')} | {run.get('wall_s')} | {run.get('float_path')} | "
                     + " | ".join(_num(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _progress(done: int, total: int, config: Config, run: dict, report: dict | None) -> str:
    evals = (report or {}).get("evals") or {}
    parts = [f"{c} {t} {v:.3f}" for c, t in (("base", "reasoning"), ("r1zero", "reasoning"), ("distill", "reasoning"),
                                              ("base", "general")) if (v := _get(evals, c, t, "accuracy_greedy"))
             is not None]
    return (f"[robustness] {done}/{total} {config.name}: exit {run['exit_code']}, {run['wall_s']} s; greedy "
            + (", ".join(parts) or "no evals"))


def run_sweep(configs: list[Config], pipeline: str, out: Path, cores: int, rerun: bool) -> dict[str, dict]:
    """Run the configurations (resumable), `cores` threads' worth at a time; returns each one's run record."""
    runs, pending, running, total = {}, [], [], len(configs)
    for config in configs:
        record = out / config.name / "sweep_run.json"
        if not rerun and record.is_file():
            prev = json.loads(record.read_text())
            if prev.get("exit_code") == 0 and prev.get("pipeline") == pipeline and \
                    (out / config.name / "report.json").is_file():
                runs[config.name] = prev
                print(f"[robustness] {config.name}: finished before, report reused")
                continue
        pending.append(config)
    while pending or running:
        used = sum(c.threads for c, *_ in running)
        while pending and (not running or used + pending[0].threads <= cores):
            config = pending.pop(0)
            run_dir = out / config.name
            run_dir.mkdir(parents=True, exist_ok=True)
            env = config.env(dict(os.environ))
            try:
                seen = probe(env)
            except subprocess.CalledProcessError as err:
                seen = {"threads": None, "capability": f"none (the probe failed: {err.stderr.strip()[-200:]})"}
            problem = check_env(config, seen)
            if problem:
                runs[config.name] = {"exit_code": None, "error": problem, **seen}
                print(f"[robustness] {config.name}: not run: {problem}", file=sys.stderr)
                continue
            cmd = [sys.executable, "-m", "r1repro.cli", "pipeline", "--config", pipeline, "--run-dir",
                   str(run_dir), "--seed", str(config.seed)]
            print(f"[robustness] start {config.name}: ATEN_CPU_CAPABILITY={config.capability} threads "
                  f"{config.threads} seed {config.seed}" + (f" MKL {config.mkl}" if config.mkl else "")
                  + f" (float path {seen['float_path']}); log {run_dir / 'pipeline.log'}", flush=True)
            log = open(run_dir / "pipeline.log", "a")  # a resumed run adds to the log of the one before
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((config, proc, log, time.time(), seen))
            used += config.threads
        time.sleep(2)
        for item in [r for r in running if r[1].poll() is not None]:
            config, proc, log, started, seen = item
            running.remove(item)
            log.close()
            run = {"config": config.name, "pipeline": pipeline, "exit_code": proc.returncode,
                   "wall_s": round(time.time() - started), **seen}
            (out / config.name / "sweep_run.json").write_text(json.dumps(run, indent=1))
            runs[config.name] = run
            report_path = out / config.name / "report.json"
            report = json.loads(report_path.read_text()) if report_path.is_file() else None
            print(_progress(len(runs), total, config, run, report), flush=True)
    return runs


def summarise(out: Path, runs: dict[str, dict]) -> dict:
    """Tables from every finished configuration's report.json: printed, and written as JSON and markdown."""
    reports = {name: json.loads((out / name / "report.json").read_text()) for name, run in runs.items()
               if run.get("exit_code") in (0, 3) and (out / name / "report.json").is_file()}
    effects = aggregate(reports)
    columns, rows = headline(reports)
    summary = {"configs": runs, "effects": effects, "headline": rows}
    (out / "robustness.json").write_text(json.dumps(summary, indent=1))
    text = markdown(effects, columns, rows, {n: runs[n] for n in reports})
    (out / "robustness.md").write_text(text)
    print(text)
    failed = sorted(set(runs) - set(reports))
    if failed:
        print(f"[robustness] without a report (see their pipeline.log): {', '.join(failed)}", file=sys.stderr)
    return summary


def check_paths(capabilities: list[str], mkl: list[str]) -> None:
    """Which knobs change float results on this machine: one probe per setting, against all unset."""
    base = {k: v for k, v in os.environ.items() if k not in AXIS_VARS} | {"OMP_NUM_THREADS": "2",
                                                                          "MKL_NUM_THREADS": "2"}
    variants = [{"ATEN_CPU_CAPABILITY": c} for c in capabilities] + [{"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}]
    variants += [{"ONEDNN_MAX_CPU_ISA": isa} for isa in ("AVX2", "SSE41")]
    variants += [{"MKL_ENABLE_INSTRUCTIONS": isa} for isa in [*mkl, "SSE4_2"]]
    reference = probe(base)["float_path"]
    for variant in variants:
        seen = probe(base | variant)
        same = "same as" if seen["float_path"] == reference else "differs from"
        print(f"{' '.join(f'{k}={v}' for k, v in variant.items()):44} {seen['capability']:8} threads "
              f"{seen['threads']}  {seen['float_path']}  {same} unset", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="pipeline recipe each configuration runs")
    parser.add_argument("--out", default="runs/robustness", help="one run directory per configuration in here")
    parser.add_argument("--subset", action="store_true", help="the 60-minute subset (see the module docstring)")
    parser.add_argument("--configs", nargs="+", help="run these configurations (names as --dry-run lists)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--threads", nargs="+", type=int, default=list(THREADS))
    parser.add_argument("--mkl", nargs="+", default=[], choices=sorted(MKL_FLAGS),
                        help="MKL_ENABLE_INSTRUCTIONS values to add next to unset (MKL picks its path per CPU)")
    parser.add_argument("--jobs", type=int, default=2, help="cores to fill: a config takes as many as its threads")
    parser.add_argument("--rerun", action="store_true", help="call the pipeline again for finished configs too")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--report-only", action="store_true", help="only the tables, from finished configs")
    parser.add_argument("--check-paths", action="store_true", help="which env knobs change float results here")
    parser.add_argument("--smoke", action="store_true", help="3 configs of a few steps each (checks the script)")
    args = parser.parse_args(argv)
    flags = cpu_flags(Path("/proc/cpuinfo").read_text())
    capabilities = supported(CAPABILITY_FLAGS, flags)
    mkl = [m for m in args.mkl if MKL_FLAGS[m] <= flags]
    if args.check_paths:
        check_paths(capabilities, supported(MKL_FLAGS, flags))
        return 0
    configs = enumerate_configs(capabilities, args.threads, args.seeds, [None, *mkl])
    # stage recipes inside a pipeline are relative to the repository: the pipelines run from there
    out, pipeline = Path(args.out).resolve(), next((str(p.resolve()) for p in (Path(args.pipeline),
                                                    ROOT / args.pipeline) if p.is_file()), None)
    if pipeline is None:
        print(f"bench/robustness.py: error: pipeline {args.pipeline} not found", file=sys.stderr)
        return 2
    try:
        if args.smoke:
            configs = pick(configs, args.configs or [f"{capabilities[0]}-t1-s0", f"{capabilities[-1]}-t1-s1",
                                                     f"{capabilities[1 % len(capabilities)]}-t2-s2"])
        elif args.configs:
            configs = pick(configs, args.configs)
        elif args.subset:
            configs = subset(configs)
    except ValueError as err:
        print(f"bench/robustness.py: error: {err}", file=sys.stderr)
        return 2
    estimate = "" if args.smoke else f"; ~{math.ceil(plan_wall_s(configs, pipeline, args.jobs) / 60)} min estimated"
    print(f"[robustness] {len(configs)} configs of {args.pipeline} into {out}; CPU capabilities {capabilities}"
          + estimate, flush=True)
    if args.dry_run:
        for c in configs:
            print(f"  {c.name:24} ATEN_CPU_CAPABILITY={c.capability} OMP/MKL_NUM_THREADS={c.threads} --seed {c.seed}"
                  + (f" MKL_ENABLE_INSTRUCTIONS={c.mkl}" if c.mkl else "") + f"  ~{estimate_s(c, pipeline):.0f} s")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        pipeline = smoke_pipeline(pipeline, out)
    if args.report_only:
        runs = {c.name: json.loads(p.read_text()) for c in configs if (p := out / c.name / "sweep_run.json").is_file()}
    else:
        runs = run_sweep(configs, pipeline, out, args.jobs, args.rerun)
    summarise(out, runs)
    print(out / "robustness.json")
    return 0 if runs and all(r.get("exit_code") == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
