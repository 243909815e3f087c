"""`r1repro check`: how many rows the stage will drop for length (r1repro/lengths.py), where the
model (its config and tokenizer) and the data are local. GRPO stages: prompts longer than the
model's context minus max_completion_length. Trace-SFT stages: examples longer than max_length."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from r1repro.check.inputs import Finding, note, run_dir_of, summary, where_is
from r1repro.data import load_rows
from r1repro.jsonl import read_jsonl
from r1repro.lengths import drop_long_prompts, drop_long_sft_examples, model_context, prompt_token_limit
from r1repro.stages import GRPO_STAGES, TRACE_SFT_STAGES
from r1repro.templates import render_prompt

MAX_ROWS = 20_000  # counting tokens of more rows than this is slow; say it was a sample


def _local_model(path) -> bool:
    return isinstance(path, str) and (Path(path) / "config.json").is_file()


def check_lengths(stage: str, config: dict, bad: set[str], inputs) -> Iterator[Finding]:
    """Over-long rows the stage will drop at load, counted with the model's tokenizer. Needs the stage's resolved
    config (`inputs` None: the recipe did not load, and its values are not known)."""
    model = config.get("model_name_or_path")
    if inputs is None or stage not in (*GRPO_STAGES, *TRACE_SFT_STAGES) or "model_name_or_path" in bad:
        return
    if not _local_model(model):
        yield note(None, "lengths: over-long rows are dropped at load; not counted here (the model is not a local "
                         "directory)")
        return
    try:
        if stage in GRPO_STAGES:
            found = _grpo_prompts(config, model, bad)
        else:
            found = _sft_examples(config, model, bad)
    except (OSError, ValueError, KeyError) as err:  # unreadable data is reported by the column checks
        found = note(None, f"lengths: not counted ({str(err).splitlines()[0]})")
    if found is not None:
        yield found


def _grpo_prompts(config: dict, model: str, bad: set[str]) -> Finding | None:
    dataset = str(config.get("dataset"))
    if "dataset" in bad or where_is(dataset, run_dir_of(config)) not in ("local", "tiny"):
        return None
    limit = prompt_token_limit(model_context(model), config.get("max_completion_length"),
                               config.get("vllm_max_model_length"))
    if limit is None:
        return None
    n = min(config.get("num_train_samples") or MAX_ROWS, MAX_ROWS)
    rows = load_rows(dataset, config.get("train_split"), n, int(config.get("seed") or 0),
                     config=config.get("dataset_config"), problem_column=config.get("problem_column"),
                     solution_column=config.get("solution_column"))
    tokenizer = _tokenizer(model)
    template, system = config.get("prompt_template"), config.get("system_prompt")
    prompts = [{"prompt": render_prompt(template, r["problem"], system_prompt=system)} for r in rows]
    _, dropped = drop_long_prompts(prompts, tokenizer, limit)
    return summary(f"lengths: {dropped} of {len(rows)} training prompts over {limit} tokens (context - "
                   f"max_completion_length) will be dropped at load")


def _sft_examples(config: dict, model: str, bad: set[str]) -> Finding | None:
    source = config.get("source_dataset")
    max_length = config.get("max_length")
    if "source_dataset" in bad or not source or not Path(source).is_file() or not max_length:
        return None
    rows = read_jsonl(source, required=("problem", "response"))[:MAX_ROWS]
    tokenizer = _tokenizer(model)
    template, system = config.get("prompt_template"), config.get("system_prompt")
    examples = [{"prompt": render_prompt(template, r["problem"], system_prompt=system), "completion": r["response"]}
                for r in rows]
    _, dropped = drop_long_sft_examples(examples, tokenizer, max_length)
    return summary(f"lengths: {dropped} of {len(rows)} SFT examples over max_length {max_length} tokens "
                   f"will be dropped at load")


def _tokenizer(model: str):
    # transformers is imported here, not at the top: r1repro.check.cli imports this module, and `r1repro check` of
    # a pipeline or an accelerate config (and the CLI that dispatches to it) must not pay for torch.
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model)
