"""`r1repro check`: how many rows the stage will drop for length (r1repro/lengths.py), where the
model (its config and tokenizer) and the data are local. GRPO stages: prompts longer than the
model's context minus max_completion_length. Trace-SFT stages: examples longer than max_length."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from r1repro.stages import STAGES

if TYPE_CHECKING:
    from r1repro.check import Report

SFT_STAGES = ("cold_start", "rejection_sft", "distill")
MAX_ROWS = 20_000  # counting tokens of more rows than this is slow; say it was a sample


def _value(config: dict, stage: str, name: str):
    """The recipe's value, else the stage dataclasses' default (check's config holds only ours)."""
    if name in config:
        return config[name]
    for dc in STAGES[stage].dataclass_types():
        for f in dataclasses.fields(dc):
            if f.name == name:
                return f.default if f.default is not dataclasses.MISSING else None
    return None


def _local_model(path) -> bool:
    return isinstance(path, str) and (Path(path) / "config.json").is_file()


def check_lengths(report: Report, stage: str, config: dict, bad: set[str]) -> None:
    from r1repro.slurm.plan import GRPO_STAGES

    model = config.get("model_name_or_path")
    if stage not in (*GRPO_STAGES, *SFT_STAGES) or "model_name_or_path" in bad:
        return
    if not _local_model(model):
        report.notes.append("lengths: over-long rows are dropped at load; not counted here (the model is not a local directory)")
        return
    try:
        if stage in GRPO_STAGES:
            _grpo_prompts(report, stage, config, model, bad)
        else:
            _sft_examples(report, stage, config, model, bad)
    except (OSError, ValueError, KeyError) as err:  # unreadable data is reported by the column checks
        report.notes.append(f"lengths: not counted ({str(err).splitlines()[0]})")


def _grpo_prompts(report: Report, stage: str, config: dict, model: str, bad: set[str]) -> None:
    from transformers import AutoTokenizer

    from r1repro.check_inputs import _where
    from r1repro.data import load_rows
    from r1repro.lengths import drop_long_prompts, model_context, prompt_token_limit
    from r1repro.templates import render_prompt

    dataset = str(_value(config, stage, "dataset"))
    if "dataset" in bad or _where(dataset, str(config.get("run_dir") or "runs/tiny")) not in ("local", "tiny"):
        return
    limit = prompt_token_limit(model_context(model), _value(config, stage, "max_completion_length"),
                               _value(config, stage, "vllm_max_model_length"))
    if limit is None:
        return
    n = min(_value(config, stage, "num_train_samples") or MAX_ROWS, MAX_ROWS)
    rows = load_rows(dataset, _value(config, stage, "train_split"), n, int(_value(config, stage, "seed") or 0),
                     config=config.get("dataset_config"), problem_column=_value(config, stage, "problem_column"),
                     solution_column=_value(config, stage, "solution_column"))
    tokenizer = AutoTokenizer.from_pretrained(model)
    template, system = _value(config, stage, "prompt_template"), config.get("system_prompt")
    prompts = [{"prompt": render_prompt(template, r["problem"], system_prompt=system)} for r in rows]
    _, dropped = drop_long_prompts(prompts, tokenizer, limit)
    report.summary.append(f"lengths: {dropped} of {len(rows)} training prompts over {limit} tokens (context - "
                          f"max_completion_length) will be dropped at load")


def _sft_examples(report: Report, stage: str, config: dict, model: str, bad: set[str]) -> None:
    from transformers import AutoTokenizer

    from r1repro.jsonl import read_jsonl
    from r1repro.lengths import drop_long_sft_examples
    from r1repro.templates import render_prompt

    source = config.get("source_dataset")
    max_length = _value(config, stage, "max_length")
    if "source_dataset" in bad or not source or not Path(source).is_file() or not max_length:
        return
    rows = read_jsonl(source, required=("problem", "response"))[:MAX_ROWS]
    tokenizer = AutoTokenizer.from_pretrained(model)
    template, system = _value(config, stage, "prompt_template"), config.get("system_prompt")
    examples = [{"prompt": render_prompt(template, r["problem"], system_prompt=system), "completion": r["response"]}
                for r in rows]
    _, dropped = drop_long_sft_examples(examples, tokenizer, max_length)
    report.summary.append(f"lengths: {dropped} of {len(rows)} SFT examples over max_length {max_length} tokens "
                          f"will be dropped at load")
