"""Stage 1, `cold_start`: a small, readable long-CoT set, then SFT of the base model.

The traces come from the R1-Zero model (sampled, verified, filtered to correct, single-language,
non-repetitive, length-bounded ones, rewritten into `<think> reasoning </think> <answer> answer
</answer>`) or from a given dataset (`source_dataset`). R1 fixes R1-Zero's poor readability and
language mixing this way before its reasoning RL.
"""

from __future__ import annotations

from r1repro.stages.sft import dataclass_types, run_trace_sft

STAGE = "cold_start"


def run(instances, config) -> dict:
    return run_trace_sft(STAGE, instances, config)


def main(argv=None) -> int:
    from r1repro.stages.common import run_stage_main

    return run_stage_main(STAGE, dataclass_types(), run, argv)
