"""Scores (gold, completion) pairs with lighteval's own metrics; run by tests/test_lighteval_parity.py with
.venv-lighteval's Python (lighteval pins its own math-verify, so it does not share the main venv).

stdin: {"math": [{"gold", "completion"}, ...], "gpqa": [...]}; stdout: {"math": [score, ...], "gpqa": [...]}.

What lighteval does for open-r1's tasks, step by step:
- the response goes through the pipeline's post-processing: `<think>...</think>` removed
  (`remove_reasoning_tags`, on by default), which is what the metrics read (`final_text`);
- math: the metric of lighteval's math_500 task (`Metrics.pass_at_k_math`, one sample: extractive match,
  expression + LaTeX extraction on both sides, precision 6), the gold written as MATH-500's solutions
  write it, `\\boxed{...}`;
- GPQA: `Metrics.gpqa_instruct_metric` (letter extraction, NativeLetters), choices A-D, gold by index.
"""

from __future__ import annotations

import json
import logging
import sys

from lighteval.metrics.metrics import Metrics
from lighteval.models.model_output import ModelResponse
from lighteval.tasks.requests import Doc
from lighteval.utils.utils import remove_reasoning_tags

THINK_TAGS = [("<think>", "</think>")]


def response(completion: str) -> ModelResponse:
    return ModelResponse(text=[completion], text_post_processed=[remove_reasoning_tags(completion, THINK_TAGS)])


def math_scores(pairs: list[dict]) -> list[float]:
    score = Metrics.pass_at_k_math.value.sample_level_fn.compute_score  # the per-sample extractive match
    return [float(score(Doc(query="", choices=[f"\\boxed{{{p['gold']}}}"], gold_index=0),
                            response(p["completion"]))) for p in pairs]


def gpqa_scores(pairs: list[dict]) -> list[float]:
    metric = Metrics.gpqa_instruct_metric.value.sample_level_fn
    return [float(metric.compute(Doc(query="", choices=list("ABCD"), gold_index="ABCD".index(p["gold"])),
                                 response(p["completion"]))) for p in pairs]


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # lighteval warns on every answer it cannot extract
    data = json.load(sys.stdin)
    json.dump({"math": math_scores(data["math"]), "gpqa": gpqa_scores(data["gpqa"])}, sys.stdout)
