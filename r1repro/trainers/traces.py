"""Sample, verify, filter: turn a model's outputs into SFT traces and preference pairs.

The sampling itself runs outside the training process (r1repro/trainers/trace_steps.py, through
`r1repro sample`); this module scores and filters what it wrote.

Used by stage 1 (cold start from R1-Zero samples) and stage 3 (rejection sampling). The R1 paper's
filters: keep correct answers only, drop mixed-language chains of thought, long paragraphs and
repetition, keep a few correct samples per prompt, and rewrite what is kept into a readable pattern.

Where a trace-SFT stage's traces come from is one rule, `trace_source`, next to the fields it reads: the
trainer, its inputs for `r1repro check`, `r1repro traces`, the pipeline and the Slurm plan all ask it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from r1repro.config import ConfigError
from r1repro.rewards import resolve_reward
from r1repro.rewards.text import with_think_opened

THINK_ANSWER = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.S)


@dataclass
class TraceArgs:
    source_model: str | None = field(default=None, metadata={
        "help": "Model (stage directory) to sample traces from. Set this or source_dataset, not both."})
    source_dataset: str | None = field(default=None, metadata={
        "help": "Or: ready traces (`problem` and `response`, or `messages` rows), trained on as they are."})
    num_prompts: int = field(default=500, metadata={"help": "Training prompts to sample for."})
    samples_per_prompt: int = field(default=4, metadata={"help": "k: samples drawn per prompt."})
    keep_per_prompt: int = field(default=1, metadata={"help": "m: at most this many correct samples kept per prompt."})
    sample_temperature: float = 0.8
    sample_top_p: float = 1.0
    sample_max_new_tokens: int = 128
    sample_backend: str = field(default="hf", metadata={"help": "hf | vllm | server (r1repro.generation)."})
    answer_reward: str = field(default="accuracy", metadata={
        "help": "Reward that verifies the answer (1.0 = correct)."})
    trace_language: str = field(default="en", metadata={"help": "Target language of the chain of thought."})
    min_language_consistency: float = field(default=1.0, metadata={
        "help": "Drop traces whose CoT has fewer target-language words than this."})
    max_response_chars: int = field(default=1000, metadata={"help": "Drop over-long traces."})
    max_repetition: float = field(default=0.3, metadata={
        "help": "Drop traces whose repeated 3-gram fraction exceeds this."})
    general_dataset: str | None = field(default=None, metadata={
        "help": "Non-reasoning rows (with `response`) mixed into the SFT set."})
    general_fraction: float = field(default=0.0, metadata={
        "help": "General rows as a fraction of the reasoning traces kept."})


def trace_source(args: TraceArgs) -> str:
    """The field a trace-SFT stage's traces come from: "source_dataset" (ready traces, trained on as they
    are) or "source_model" (sampled, scored and filtered first, in steps of their own: r1repro/trainers/
    trace_steps.py). Exactly one must be set; an empty string is unset (`--source_dataset ''` clears a
    recipe's). Both set would sample a model only to train on the dataset, so it is refused, not ranked."""
    if args.source_model and args.source_dataset:
        raise ConfigError("fields 'source_model' and 'source_dataset' are both set: keep one, source_dataset to "
                          "train on its ready traces or source_model to sample new ones (`--source_dataset ''` "
                          "unsets a recipe's)", "source_model")
    if args.source_dataset:
        return "source_dataset"
    if args.source_model:
        return "source_model"
    raise ConfigError("fields 'source_model' and 'source_dataset' are both unset: set source_model (a model to "
                      "sample traces from) or source_dataset (ready traces)", "source_model")


def samples_traces(stage_args) -> bool:
    """Whether a stage, by its loaded args, samples its traces from source_model before training (the
    `r1repro traces STAGE` steps, which the pipeline and the Slurm scripts run first): a trace-SFT stage (its
    args hold TraceArgs) whose trace_source is source_model."""
    traces = getattr(stage_args, "traces", None)
    return isinstance(traces, TraceArgs) and trace_source(traces) == "source_model"


def canonical_response(text: str, think_opened: bool = False) -> str | None:
    """The readable pattern: ` <think> reasoning </think> <answer> answer </answer>`, whitespace
    normalised. None when the text does not have exactly that structure. `think_opened`: the prompt
    pre-filled `<think>` (PromptBuilder.think_opened), so the sample starts inside the think block."""
    match = THINK_ANSWER.match(with_think_opened(text, think_opened))
    if not match or "<think>" in match.group(1) or "<answer>" in match.group(2):
        return None
    think, answer = (" ".join(part.split()) for part in match.groups())
    return f" <think> {think} </think> <answer> {answer} </answer>"


def repetition_fraction(text: str, n: int = 3) -> float:
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def score_samples(rows: list[dict], texts: list[list[str]], args: TraceArgs, think_opened: bool = False) -> list[dict]:
    """One record per sample: the row, the text, correct / language / repetition / length verdicts.
    `think_opened`: the sampling prompt pre-filled `<think>` (see r1repro.prompts)."""
    verify = resolve_reward(args.answer_reward)
    language = resolve_reward({"name": "language_consistency", "language": args.trace_language,
                               "think_opened": think_opened})
    flat_rows = [row for row, samples in zip(rows, texts) for _ in samples]
    flat = [t for samples in texts for t in samples]
    columns = {k: [r.get(k) for r in flat_rows] for k in ("solution", "task", "lang")}
    correct = verify(completions=flat, **columns)
    lang = language(completions=flat, **columns)
    records = []
    for row, text, ok, lc in zip(flat_rows, flat, correct, lang):
        canonical = canonical_response(text, think_opened)
        records.append({
            "row": row,
            "text": text,
            "response": canonical,
            "correct": ok == 1.0,
            "language_consistency": lc,
            "repetition": repetition_fraction(text),
            "chars": len(text),
        })
    return records


def keep_reason(record: dict, args: TraceArgs) -> str | None:
    """Why a sample is dropped (None = kept)."""
    if not record["correct"]:
        return "incorrect"
    if record["response"] is None:
        return "format"
    if record["language_consistency"] is not None and record["language_consistency"] < args.min_language_consistency:
        return "mixed_language"
    if record["repetition"] > args.max_repetition:
        return "repetition"
    if record["chars"] > args.max_response_chars:
        return "too_long"
    return None


def select_traces(records: list[dict], args: TraceArgs) -> tuple[list[dict], dict]:
    """At most `keep_per_prompt` distinct kept responses per prompt, plus counts of every verdict."""
    kept, counts, per_prompt = [], {}, {}
    for record in records:
        reason = keep_reason(record, args) or "kept"
        key = record["row"]["problem"]
        seen = per_prompt.setdefault(key, set())
        if reason == "kept" and (record["response"] in seen or len(seen) >= args.keep_per_prompt):
            reason = "duplicate" if record["response"] in seen else "over_quota"
        counts[reason] = counts.get(reason, 0) + 1
        if reason == "kept":
            seen.add(record["response"])
            kept.append({**record["row"], "response": record["response"]})
    return kept, counts


def preference_pairs(records: list[dict]) -> list[dict]:
    """DPO pairs: for each prompt with both, one correct well-formed response vs one incorrect one."""
    by_prompt: dict[str, dict] = {}
    for record in records:
        slot = by_prompt.setdefault(record["row"]["problem"], {"row": record["row"], "chosen": None, "rejected": None})
        if record["correct"] and record["response"] and slot["chosen"] is None:
            slot["chosen"] = record["response"]
        elif not record["correct"] and slot["rejected"] is None:
            slot["rejected"] = record["text"]
    return [
        {"problem": s["row"]["problem"], "solution": s["row"].get("solution"), "task": s["row"].get("task"),
         "chosen": s["chosen"], "rejected": s["rejected"]}
        for s in by_prompt.values() if s["chosen"] and s["rejected"]
    ]
