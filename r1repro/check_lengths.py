"""`r1repro check`: how many rows the stage will drop for length (r1repro/lengths.py), where the
model (its config and tokenizer) and the data are local. GRPO stages: prompts longer than the
model's context minus max_completion_length. Trace-SFT stages: examples longer than max_length."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from r1repro.check_inputs import Finding, note, run_dir_of, summary, where_is
from r1repro.data import load_rows
from r1repro.jsonl import read_jsonl
from r1repro.lengths import drop_long_prompts, drop_long_sft_examples, model_context, prompt_token_limit
from r1repro.stages import GRPO_STAGES, STAGES, TRACE_SFT_STAGES
from r1repro.templates import render_prompt

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


def check_lengths(stage: str, config: dict, bad: set[str]) -> Iterator[Finding]:
    model = config.get("model_name_or_path")
    if stage not in (*GRPO_STAGES, *TRACE_SFT_STAGES) or "model_name_or_path" in bad:
        return
    if not _local_model(model):
        yield note(None, "lengths: over-long rows are dropped at load; not counted here (the model is not a local "
                         "directory)")
        return
    try:
        if stage in GRPO_STAGES:
            found = _grpo_prompts(stage, config, model, bad)
        else:
            found = _sft_examples(stage, config, model, bad)
    except (OSError, ValueError, KeyError) as err:  # unreadable data is reported by the column checks
        found = note(None, f"lengths: not counted ({str(err).splitlines()[0]})")
    if found is not None:
        yield found


def _grpo_prompts(stage: str, config: dict, model: str, bad: set[str]) -> Finding | None:
    dataset = str(_value(config, stage, "dataset"))
    if "dataset" in bad or where_is(dataset, run_dir_of(config)) not in ("local", "tiny"):
        return None
    limit = prompt_token_limit(model_context(model), _value(config, stage, "max_completion_length"),
                               _value(config, stage, "vllm_max_model_length"))
    if limit is None:
        return None
    n = min(_value(config, stage, "num_train_samples") or MAX_ROWS, MAX_ROWS)
    rows = load_rows(dataset, _value(config, stage, "train_split"), n, int(_value(config, stage, "seed") or 0),
                     config=config.get("dataset_config"), problem_column=_value(config, stage, "problem_column"),
                     solution_column=_value(config, stage, "solution_column"))
    tokenizer = _tokenizer(model)
    template, system = _value(config, stage, "prompt_template"), config.get("system_prompt")
    prompts = [{"prompt": render_prompt(template, r["problem"], system_prompt=system)} for r in rows]
    _, dropped = drop_long_prompts(prompts, tokenizer, limit)
    return summary(f"lengths: {dropped} of {len(rows)} training prompts over {limit} tokens (context - "
                   f"max_completion_length) will be dropped at load")


def _sft_examples(stage: str, config: dict, model: str, bad: set[str]) -> Finding | None:
    source = config.get("source_dataset")
    max_length = _value(config, stage, "max_length")
    if "source_dataset" in bad or not source or not Path(source).is_file() or not max_length:
        return None
    rows = read_jsonl(source, required=("problem", "response"))[:MAX_ROWS]
    tokenizer = _tokenizer(model)
    template, system = _value(config, stage, "prompt_template"), config.get("system_prompt")
    examples = [{"prompt": render_prompt(template, r["problem"], system_prompt=system), "completion": r["response"]}
                for r in rows]
    _, dropped = drop_long_sft_examples(examples, tokenizer, max_length)
    return summary(f"lengths: {dropped} of {len(rows)} SFT examples over max_length {max_length} tokens "
                   f"will be dropped at load")


def _tokenizer(model: str):
    # transformers is imported here, not at the top: r1repro.check imports this module, and `r1repro check` of
    # a pipeline or an accelerate config (and the CLI that dispatches to it) must not pay for torch.
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)
