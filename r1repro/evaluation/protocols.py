"""Evaluation protocols: the settings published numbers were produced with, as one named preset.

`r1repro eval --protocol deepseek-r1` (or `protocol: deepseek-r1` in the eval YAML) sets what
DeepSeek-R1's README states for its evaluation:
- sampling: temperature 0.6, top-p 0.95, up to 32,768 new tokens, 64 samples per query; pass@1 is the
  mean correctness over the 64, reported with its standard error over problems, and cons@64;
- prompt: the model's chat template, no system prompt, "Please reason step by step, and put your final
  answer within \\boxed{}." in the user turn (for math: benchmarks scored with `accuracy`);
- the response forced to start with "<think>\\n" (unless the chat template already opens it, as
  R1-Distill's does).
`--protocol open-r1` is the same with open-r1's (lighteval's) samples per benchmark: AIME 64, MATH-500
4, GPQA Diamond 8, LiveCodeBench 16.

A setting given in the YAML or on the command line wins over the protocol's (a CPU smoke run with
`--max-new-tokens 64`), and is listed under `overrides` in the `protocol` block that results.json and
each evals/<checkpoint>.json carry, so every number can be traced to the settings that produced it.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from r1repro.evaluation.core import EvalTask, engine_for, evaluate_model
from r1repro.evaluation.settings import EvalSettings
from r1repro.jsonl import read_jsonl, write_jsonl
from r1repro.rewards.text import THINK_OPEN

R1_MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
R1_README = "https://github.com/deepseek-ai/DeepSeek-R1#usage-recommendations"
OPEN_R1_README = "https://github.com/huggingface/open-r1#evaluating-models"


# What DeepSeek-R1's README states for its evaluation, as EvalSettings fields.
R1_SETTINGS = {"template": "chat", "system_prompt": None, "temperature": 0.6, "top_p": 0.95,
               "max_new_tokens": 32768, "num_samples": 64}


@dataclass(frozen=True)
class Protocol:
    name: str
    source: str
    settings: dict = field(default_factory=lambda: dict(R1_SETTINGS))  # the EvalSettings fields it fixes
    samples_per_benchmark: dict[str, int] = field(default_factory=dict)  # registry name -> n
    math_instruction: str = R1_MATH_INSTRUCTION  # appended to the user turn of `accuracy`-scored tasks
    response_prefix: str = THINK_OPEN + "\n"

    def __post_init__(self):
        EvalSettings(**self.settings)  # the one schema's names and rules

    def samples_for(self, benchmark: str, default: int) -> int:
        return self.samples_per_benchmark.get(benchmark, default)


PROTOCOLS = {
    p.name: p
    for p in [
        Protocol("deepseek-r1", R1_README),
        Protocol("open-r1", OPEN_R1_README,
                 samples_per_benchmark={"aime24": 64, "aime25": 64, "math500": 4, "gpqa_diamond": 8,
                                        "livecodebench": 16}),
    ]
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"protocol {name!r}: expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def _benchmark_name(spec) -> str:
    return spec if isinstance(spec, str) else str(spec.get("name"))


@dataclass
class ProtocolRun:
    """A protocol applied to one `r1repro eval` run: the settings it fixed, what the user overrode, and
    the samples per task."""

    protocol: Protocol
    overrides: dict  # setting -> the value used instead of the protocol's
    samples: dict[str, int] = field(default_factory=dict)  # task name -> n

    @classmethod
    def start(cls, name: str, explicit: dict) -> tuple[ProtocolRun, dict]:
        """(the run, the settings to build EvalSettings from): the protocol's, then `explicit` on top."""
        protocol = get_protocol(name)
        fixed = protocol.settings
        overrides = {k: v for k, v in explicit.items() if k in fixed and v != fixed[k]}
        return cls(protocol, overrides), {**fixed, **explicit}

    def prepare(self, specs: list, tasks: list[EvalTask], settings: EvalSettings) -> list[EvalTask]:
        """Tasks with the math instruction in their problems; the samples per task recorded."""
        out = []
        for spec, task in zip(specs, tasks, strict=True):
            n = settings.num_samples if "num_samples" in self.overrides else \
                self.protocol.samples_for(_benchmark_name(spec), settings.num_samples)
            self.samples[task.name] = n
            if task.answer_reward == "accuracy" and self.protocol.math_instruction:
                rows = [{**row, "problem": f"{str(row['problem']).rstrip()}\n{self.protocol.math_instruction}"}
                        for row in task.rows]
                task = dataclasses.replace(task, rows=rows)
            out.append(task)
        return out

    def block(self, settings: EvalSettings) -> dict:
        """What results.json says about the protocol: enough to rerun it and to read its numbers."""
        p = self.protocol
        return {"name": p.name, "source": p.source, "temperature": settings.temperature, "top_p": settings.top_p,
                "max_new_tokens": settings.max_new_tokens, "template": settings.template,
                "system_prompt": settings.system_prompt, "user_instruction": p.math_instruction,
                "instruction_applies_to": "tasks scored with accuracy (math)", "response_prefix": p.response_prefix,
                "samples_per_task": dict(self.samples), "pass@1": "mean over the samples, then over problems; "
                "pass@1_stderr: standard error of that mean over problems", "overrides": dict(self.overrides)}

    def evaluate(self, model_path: str, tasks: list[EvalTask], settings: EvalSettings,
                 samples_path: str | None = None) -> dict[str, dict]:
        """evaluate_model per task (each with its own n), through one engine whose responses start with
        the protocol's prefix; adds pass@1_stderr and num_samples to each task's metrics."""
        engine = ForcedStart(engine_for(model_path, settings), self.protocol.response_prefix)
        results, records = {}, []
        with tempfile.TemporaryDirectory() as tmp:
            for task in tasks:
                n = self.samples[task.name]
                task_settings = dataclasses.replace(
                    settings, num_samples=n, pass_k=tuple(k for k in settings.pass_k if k <= n) or (1,))
                part = str(Path(tmp) / "samples.jsonl")
                metrics = evaluate_model(model_path, [task], task_settings, part, engine=engine)[task.name]
                task_records = read_jsonl(part)
                metrics["num_samples"] = n
                metrics["pass@1_stderr"] = pass1_stderr(task_records)
                results[task.name] = metrics
                records += task_records
        if samples_path:
            write_jsonl(samples_path, records)
        return results


class ForcedStart:
    """An engine whose responses start with `prefix` ("<think>\\n"): the prompt ends with it, and the
    returned text carries it back, so the rewards read the response as the protocol defines it. A prompt
    that already ends with the prefix's tag (a chat template that opens <think> itself) is left alone:
    the prompt builder then knows the think block is open."""

    def __init__(self, engine, prefix: str):
        self.engine, self.prefix = engine, prefix

    def generate(self, prompts: list[str], params):
        forced = [bool(self.prefix) and not p.rstrip().endswith(self.prefix.strip()) for p in prompts]
        out = self.engine.generate([p + self.prefix if f else p for p, f in zip(prompts, forced)], params)
        return [[dataclasses.replace(s, text=self.prefix + s.text) if f else s for s in row]
                for row, f in zip(out, forced)]


def pass1_stderr(records: list[dict]) -> float | None:
    """Standard error of pass@1 over problems: each problem's pass@1 is the mean correctness of its
    samples; the error is the sample standard deviation of those values over sqrt(#problems)."""
    per_problem: dict = {}
    for r in records:
        if r.get("mode") == "sampled":
            per_problem.setdefault(r["prompt_id"], []).append(float(bool(r.get("correct"))))
    values = [sum(v) / len(v) for v in per_problem.values()]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance / len(values))
