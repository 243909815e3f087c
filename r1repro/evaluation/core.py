"""Evaluate one checkpoint on several tasks with the R1 protocol.

Per task: one greedy completion per problem (`accuracy_greedy`) and `num_samples` sampled ones at
temperature 0.6 / top-p 0.95 (DeepSeek-R1 README). pass@1 is the mean correctness over the samples,
pass@k the unbiased estimator, cons@k the majority vote over parsed answers. Correctness, format and
language consistency come from the project's rewards (`r1repro.rewards`), so eval and training
agree on what "correct" means.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from r1repro.evaluation.metrics import cons_at_k, mean, pass_at_k
from r1repro.evaluation.settings import EvalSettings
from r1repro.generation import SamplingParams, get_engine
from r1repro.jsonl import write_jsonl
from r1repro.prompts import builder_for
from r1repro.rewards import resolve_reward
from r1repro.rewards.accuracy import answer_target
from r1repro.rewards.text import answer_part

logger = logging.getLogger(__name__)

# A sample counts as correct when its answer reward reaches this (rewards give 1.0 for correct;
# code_tests gives the fraction of tests passed, and only passing all of them is a solve).
CORRECT_THRESHOLD = 1.0 - 1e-6


@dataclass
class EvalTask:
    name: str
    rows: list[dict]  # at least `problem` and `solution` (code tasks: `tests`); other columns reach the rewards
    answer_reward: str | dict = "accuracy"  # the reward spec that checks an answer (exact_match for general)


def evaluate_model(model_path: str, tasks: list[EvalTask], settings: EvalSettings, samples_path: str | None = None,
                   engine=None) -> dict[str, dict[str, float]]:
    """Metrics per task name. `engine`: reuse an engine already built for `model_path`."""
    for task in tasks:
        _check_rows(task)
    if engine is None:
        engine = engine_for(model_path, settings)
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=settings.max_new_tokens, seed=settings.seed)
    sampled = SamplingParams(n=settings.num_samples, temperature=settings.temperature, top_p=settings.top_p,
                             max_tokens=settings.max_new_tokens, seed=settings.seed)
    builder = _prompt_builder(model_path, settings)

    results, records = {}, []
    for task in tasks:
        prompts = [builder.sample_text(row["problem"]) for row in task.rows]
        logger.info("eval %s: %d problems, greedy + %d samples", task.name, len(prompts), settings.num_samples)
        greedy_out = [s[0] for s in engine.generate(prompts, greedy)]
        sampled_out = engine.generate(prompts, sampled)
        metrics, task_records = _score_task(task, settings, prompts, greedy_out, sampled_out, builder)
        results[task.name] = metrics
        records += task_records
    if samples_path:
        write_jsonl(samples_path, records)
    return results


def engine_for(model_path: str, settings: EvalSettings):
    """The engine `settings` ask for: their backend and engine_options (hf: batched by batch_size)."""
    options = dict(settings.engine_options)
    if settings.backend == "hf":
        options.setdefault("batch_size", settings.batch_size)
    return get_engine(settings.backend, model_path, **options)


def _check_rows(task: EvalTask) -> None:
    if not task.rows:
        raise ValueError(f"eval task {task.name!r}: no rows")
    needed = ("problem", "tests") if task.answer_reward == "code_tests" else ("problem", "solution")
    for i, row in enumerate(task.rows):
        for column in needed:
            if column not in row:
                raise ValueError(f"eval task {task.name!r}: row {i} has no column {column!r} "
                                 f"(columns: {', '.join(sorted(row))})")


def _prompt_builder(model_path: str, settings: EvalSettings):
    """The same prompt path the training stages use (r1repro.prompts): chat template with generation
    prompt and system prompt for `chat`, think-prefill detection for the format metrics."""
    return builder_for(settings.template, settings.system_prompt, model_path)


def _rewards(answer_reward: str | dict, builder):
    """(answer, format, language consistency or None). language_consistency is optional: without it
    the metric is left out of the results. Format and language know when the prompt opened <think>."""
    format_spec, language_spec = builder.reward_specs(["format", "language_consistency"])
    try:
        language = resolve_reward(language_spec)
    except ValueError:
        language = None
    return resolve_reward(answer_reward), resolve_reward(format_spec), language


def _columns(rows: list[dict], repeat: int, prompts: list[str], settings: EvalSettings) -> dict[str, list]:
    """Dataset columns, one entry per completion (TRL's reward calling convention)."""
    keys = sorted({k for row in rows for k in row})
    columns = {k: [row.get(k) for row in rows for _ in range(repeat)] for k in keys}
    if "lang" not in columns:
        columns["lang"] = [settings.language] * (len(rows) * repeat)
    columns["prompts"] = [p for p in prompts for _ in range(repeat)]
    return columns


def _answer_reader(answer_reward: str | dict):
    """How a completion's answer is read for cons@k votes and the sample records: as the task's answer
    reward reads it (a task graded with `tags_required: false` by its visible answer, tagged or not)."""
    untagged = isinstance(answer_reward, dict) and answer_reward.get("tags_required") is False
    return answer_part if untagged else answer_target


def _score(reward, completions: list, columns: dict) -> list[float | None]:
    if reward is None:
        return [None] * len(completions)
    return reward(completions, **columns)


def _score_task(task, settings, prompts, greedy_out, sampled_out, builder):
    answer_reward, format_reward, language_reward = _rewards(task.answer_reward, builder)
    k = settings.num_samples
    wrap = (lambda t: [{"role": "assistant", "content": t}]) if builder.is_chat else (lambda t: t)
    greedy_texts = [wrap(s.text) for s in greedy_out]
    sampled_flat = [s for row in sampled_out for s in row]
    sampled_texts = [wrap(s.text) for s in sampled_flat]

    greedy_cols = _columns(task.rows, 1, prompts, settings)
    sampled_cols = _columns(task.rows, k, prompts, settings)
    greedy_acc = _score(answer_reward, greedy_texts, greedy_cols)
    acc = _score(answer_reward, sampled_texts, sampled_cols)
    fmt = _score(format_reward, sampled_texts, sampled_cols)
    lang = _score(language_reward, sampled_texts, sampled_cols)
    correct = [a is not None and a >= CORRECT_THRESHOLD for a in acc]
    parse_answer = _answer_reader(task.answer_reward)
    answers = [parse_answer(s.text) for s in sampled_flat]

    pass_ks = [p for p in settings.pass_k if p <= k]
    per_k = {p: [] for p in pass_ks}
    pass1, cons = [], []
    for i in range(len(task.rows)):
        c = sum(correct[i * k : (i + 1) * k])
        pass1.append(c / k)
        for p in pass_ks:
            per_k[p].append(pass_at_k(k, c, p))
        cons.append(cons_at_k(answers[i * k : (i + 1) * k], correct[i * k : (i + 1) * k]))

    metrics = {
        "accuracy_greedy": mean([float(a is not None and a >= CORRECT_THRESHOLD) for a in greedy_acc]),
        "pass@1": mean(pass1),
        **{f"pass@{p}": mean(v) for p, v in per_k.items()},
        f"cons@{k}": mean(cons),
        "format_rate": mean(fmt),
        "mean_length": mean([s.num_tokens for s in sampled_flat]),
        "truncated_rate": mean([float(s.finish_reason == "length") for s in sampled_flat]),
    }
    if language_reward is not None:
        metrics["language_consistency"] = mean(lang)
    metrics = {key: (None if isinstance(v, float) and math.isnan(v) else v) for key, v in metrics.items()}
    metrics["n"] = len(task.rows)

    records = []
    for i, row in enumerate(task.rows):
        # `problem`: what the report pairs two checkpoints' records by (r1repro.evaluation.stats)
        base = {"task": task.name, "prompt_id": row.get("id", i), "problem": row["problem"], "prompt": prompts[i],
                "solution": row.get("solution")}
        g = greedy_out[i]
        records.append({**base, "mode": "greedy", "sample_index": 0, "text": g.text, "num_tokens": g.num_tokens,
                        "finish_reason": g.finish_reason, "answer": parse_answer(g.text), "reward": greedy_acc[i]})
        for j in range(k):
            n = i * k + j
            s = sampled_flat[n]
            records.append({**base, "mode": "sampled", "sample_index": j, "text": s.text, "num_tokens": s.num_tokens,
                            "finish_reason": s.finish_reason, "answer": answers[n], "reward": acc[n],
                            "correct": correct[n], "format": fmt[n], "language_consistency": lang[n]})
    return metrics, records
