"""SFT on reasoning traces with TRL's SFTTrainer: the trainer of cold_start, rejection_sft and distill.

The three stages differ only in where their traces come from:
- cold_start: sample the R1-Zero model, keep correct, readable, single-language traces;
- rejection_sft: sample the reasoning-RL model (k per prompt, keep <= m), mix in general data;
- distill: the traces rejection_sft kept, used to train a smaller student.
Training data is TRL's prompt-completion format, so the loss covers the completion only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import datasets
from trl import ModelConfig, SFTConfig, SFTTrainer

from r1repro.config import ConfigError, DataArgs, RunArgs
from r1repro.data import LOCAL_SUFFIXES, load_rows
from r1repro.evaluation.settings import EvalArgs
from r1repro.jsonl import iter_jsonl, write_jsonl
from r1repro.lengths import drop_long_sft_examples, report_dropped
from r1repro.prompts import builder_for, trace_row
from r1repro.rundir import is_main_process, require_stage_output
from r1repro.trainers.inputs import StageInputs, prompt_columns
from r1repro.trainers.trace_steps import ensure_traces
from r1repro.trainers.traces import TraceArgs, trace_source
from r1repro.trainers.training import load_policy, train_and_save


@dataclass
class TraceSFTStageArgs:
    run: RunArgs
    data: DataArgs
    eval: EvalArgs
    traces: TraceArgs
    train: SFTConfig
    model: ModelConfig

    def __post_init__(self):
        # Every loader (the stage, `r1repro check`, `r1repro traces`, the pipeline, the Slurm plan) builds the
        # args here: a recipe naming both trace sources, or neither, fails with one line before anything runs.
        trace_source(self.traces)


ARGS = TraceSFTStageArgs


def inputs(args: TraceSFTStageArgs) -> StageInputs:
    """Ready traces (source_dataset), or the prompts and gold answers source_model is sampled on, with the
    answer reward that verifies the samples and the model that renders them (trace_source decides, as for
    collect_traces); general rows mixed in when general_fraction asks for them."""
    found = StageInputs()
    if trace_source(args.traces) == "source_dataset":
        found.columns["source_dataset"] = ["problem", "response"]
    else:
        found.columns["dataset"] = prompt_columns(args.data, ["solution"])
        found.answer_reward = args.traces.answer_reward
        found.template_models.append("source_model")  # the sampled model renders the prompts too
    if args.traces.general_dataset and args.traces.general_fraction > 0:
        found.columns["general_dataset"] = ["problem", "response"]
    return found


def collect_traces(trace_args: TraceArgs, data_args: DataArgs, output_dir: str,
                   seed: int) -> tuple[list[dict], dict]:
    """The SFT rows (`problem`, `response`, ...) and a summary of what was kept and dropped.
    Writes traces.jsonl (kept) and dpo_pairs.jsonl (correct vs incorrect) into output_dir."""
    if trace_source(trace_args) == "source_dataset":
        rows = read_trace_rows(trace_args.source_dataset, data_args.train_split)
        summary = {"source": trace_args.source_dataset, "kept": len(rows)}
    else:
        require_stage_output(trace_args.source_model, "source_model")
        # Sampled in steps of their own (never in this training process): r1repro/trainers/trace_steps.py.
        rows, summary = ensure_traces(trace_args, data_args, output_dir, seed)
    if trace_args.general_dataset and trace_args.general_fraction > 0:
        n = int(len(rows) * trace_args.general_fraction)
        general = load_rows(trace_args.general_dataset, data_args.train_split, n, seed,
                            required=("problem", "response"))
        rows = rows + general
        summary["general"] = len(general)
    if not rows:
        raise ConfigError(f"no training traces survived the filters ({summary}); sample more or relax them")
    if is_main_process():
        write_jsonl(Path(output_dir) / "traces.jsonl", rows)
    print(f"[traces] {summary}")
    return rows, summary


def read_trace_rows(spec: str, split: str) -> list[dict]:
    """Ready SFT traces: a local .jsonl (errors name file:line) or any dataset load_rows reads (a hub id
    on a cluster), with `problem`/`response` or `messages` rows (r1repro.prompts.trace_row)."""
    path = Path(spec)
    if path.suffix == ".jsonl" or (path.suffix in LOCAL_SUFFIXES and not path.exists()):
        if not path.is_file():
            raise ConfigError(f"source_dataset: {spec} not found (run the stage that writes it first)")
        try:
            numbered = [(f"{spec}:{n}", row) for n, row in iter_jsonl(path)]
        except ValueError as err:
            raise ConfigError(f"source_dataset: {err}") from None
    else:
        try:
            numbered = [(f"{spec} row {i}", row) for i, row in enumerate(load_rows(spec, split, required=()))]
        except ValueError as err:
            raise ConfigError(f"source_dataset: {err}") from None
    rows = []
    for where, row in numbered:
        if not isinstance(row, dict):
            raise ConfigError(f"source_dataset: {where}: expected a JSON object")
        rows.append(trace_row(row, f"source_dataset: {where}"))
    return rows


def run(stage: str, args: TraceSFTStageArgs) -> dict:
    # The student's template decides the training form; fail on a missing chat template before sampling.
    builder = builder_for(args.data.prompt_template, args.data.system_prompt, args.model.model_name_or_path)
    rows, summary = collect_traces(args.traces, args.data, args.train.output_dir, args.train.seed)
    examples = [builder.sft_example(r["problem"], r["response"]) for r in rows]
    model, tokenizer, peft_config = load_policy(args.model)
    # Over-long traces are dropped, not truncated: truncation cuts the answer and the EOS off.
    examples, summary["dropped_over_max_length"] = drop_long_sft_examples(examples, tokenizer, args.train.max_length)
    report_dropped("SFT examples", summary["dropped_over_max_length"], len(rows), args.train.max_length)
    if not examples:
        raise ConfigError(f"max_length: every SFT example is longer than {args.train.max_length} tokens")
    dataset = datasets.Dataset.from_list(examples)
    build_trainer = partial(SFTTrainer, model=model, args=args.train, train_dataset=dataset,
                            processing_class=tokenizer, peft_config=peft_config)
    train_and_save(build_trainer, args.train, args.run, stage, tokenizer, args.data.prompt_template)
    return {"traces": summary}
