"""The summary of `r1repro check` for a stage recipe that parsed: the cluster layout, the batch (as TRL
derived it at the cluster's process count), the run length, the learning-rate schedule in words and the
folder the stage writes."""

from __future__ import annotations

import math
from pathlib import Path

from r1repro.check.inputs import Finding, note, summary
from r1repro.rundir import resolved_config
from r1repro.slurm.plan import Plan
from r1repro.stages import GRPO_STAGES
from r1repro.stages.args import parts
from r1repro.trainers.dynamic_sampling import cost_line, parse_spec
from r1repro.trainers.inputs import StageInputs


def summarise(stage: str, args, inputs: StageInputs, plan: Plan, num_samples: int | None) -> list[Finding]:
    """The summary lines of a stage whose args loaded: cluster, batch, generation, run length, learning rate,
    where it writes."""
    out: list[Finding] = []
    cfg = resolved_config(*parts(args))
    b = plan.batch  # TRL's numbers at the plan's process count (r1repro.slurm.plan.trl_batch)
    where = f"{len(plan.nodes)} node(s) x {plan.gpus_per_node} GPU(s)" if plan.gpus_per_node else "CPU, 1 process"
    server = (f"; vLLM server on {plan.vllm_node} (tensor parallel {plan.vllm_tensor_parallel_size})"
              if plan.vllm_node else "")
    accel = f", {plan.accelerate_config}" if plan.accelerate_config else ""
    out.append(summary(f"cluster: {where}: {plan.num_processes} training process(es) on {len(plan.train_nodes)} "
                       f"node(s){accel}{server}"))
    unit = "completions" if stage in GRPO_STAGES else "pairs" if stage == "dpo" else "sequences"
    line = (f"batch: {b['per_device_train_batch_size']} per device x {b['num_processes']} processes x "
            f"{b['gradient_accumulation_steps']} accumulation = {b['global_batch']} {unit} per optimizer step")
    per_item = 1
    if stage in GRPO_STAGES:
        per_item = b["num_generations"]
        line += f" ({b['global_batch'] / per_item:g} prompts x {per_item} generations)"
        out.append(summary(line))
        out.append(summary(f"generation: {b['generation_batch_size']} completions ({b['prompts_per_generation']} "
                           f"prompts) per round, {cfg.get('num_iterations', 1)} update(s) each; max "
                           f"{cfg.get('max_completion_length')} tokens"))
        dynamic = parse_spec(cfg.get("dynamic_sampling"))
        if dynamic:
            out.append(summary(cost_line(dynamic, b["prompts_per_generation"], per_item,
                                         cfg.get("max_completion_length") or 0)))
    else:
        out.append(summary(line))
    n = num_samples or cfg.get("num_train_samples") or _count_rows(cfg, inputs)
    epochs, max_steps = cfg.get("num_train_epochs"), cfg.get("max_steps") or -1
    total = None
    if max_steps > 0:
        total = max_steps
        out.append(summary(f"length: max_steps {max_steps} (num_train_epochs ignored)"))
    elif n:
        per_epoch = math.ceil(n * per_item / b["global_batch"])
        if n * per_item < b["global_batch"]:
            out.append(note(None, f"only {n} training rows: less than one optimizer step "
                                  f"({b['global_batch'] // per_item} rows per step)"))
        total = math.ceil(per_epoch * epochs)
        out.append(summary(f"length: {epochs:g} epoch(s) x {per_epoch} steps ({n} training rows) = {total} "
                           "optimizer steps"))
    else:
        out.append(summary(f"length: {epochs:g} epoch(s) of ceil(rows x {per_item} / {b['global_batch']}) steps "
                           "(pass --num-samples N for step counts)"))
    out.append(summary("learning rate: " + describe_schedule(cfg, total)))
    out.append(summary(f"writes: {cfg.get('output_dir')} (run_dir {cfg.get('run_dir')})"))
    return out


def _count_rows(config: dict, inputs: StageInputs) -> int | None:
    """Rows of the first local .jsonl the stage trains on (its first input: the traces, prompts or pairs)."""
    for name in list(inputs.columns)[:1]:
        value = config.get(name)
        if isinstance(value, str) and value.endswith(".jsonl") and Path(value).is_file():
            with open(value) as f:
                return sum(1 for line in f if line.strip())
    return None


def describe_schedule(cfg: dict, total: int | None) -> str:
    """The learning-rate schedule in words, with step counts when the run length is known."""
    lr = cfg.get("learning_rate")
    kind = str(cfg.get("lr_scheduler_type") or "linear").split(".")[-1].lower()
    kwargs = cfg.get("lr_scheduler_kwargs") or {}
    warmup = cfg.get("warmup_steps") or 0
    if 0 < warmup < 1:
        steps = f" = {math.ceil(warmup * total)} steps" if total else ""
        warm = f"linear warmup over the first {warmup:.0%} of steps{steps}, then "
    elif warmup >= 1:
        warm = f"linear warmup over {int(warmup)} steps, then "
    else:
        warm = ""
    if kind == "constant":
        return f"{lr:g} constant" + (" (warmup_steps ignored: use constant_with_warmup)" if warmup else "")
    if kind == "constant_with_warmup":
        return f"{lr:g}, " + (warm + "constant" if warm else "constant (no warmup)")
    if kind == "cosine_with_min_lr":
        floor = kwargs.get("min_lr", lr * kwargs["min_lr_rate"] if "min_lr_rate" in kwargs else None)
        if floor is None:
            return f"{lr:g} peak, {warm}cosine decay"
        return f"{lr:g} peak, {warm}cosine decay to {floor:g}"
    if kind == "cosine":
        return f"{lr:g} peak, {warm}cosine decay to 0"
    if kind == "linear":
        return f"{lr:g} peak, {warm}linear decay to 0"
    return f"{lr:g} peak, {warm}{kind} schedule {kwargs or ''}".rstrip()
