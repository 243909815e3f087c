"""Stage 3, `rejection_sft`: rejection sampling from the reasoning-RL model, then SFT of the base.

k samples per prompt (`samples_per_prompt`), verified by the rule rewards, filtered (mixed language,
repetition, over-long), at most m correct kept per prompt (`keep_per_prompt`), deduplicated, mixed
with non-reasoning data (`general_dataset`, `general_fraction`). Also writes dpo_pairs.jsonl (a
correct and an incorrect answer to the same prompt) for the optional `dpo` stage, and traces.jsonl,
which `distill` trains a student on.
"""

from __future__ import annotations

from r1repro.stages.sft import dataclass_types, run_trace_sft

STAGE = "rejection_sft"


def run(instances, config) -> dict:
    return run_trace_sft(STAGE, instances, config)


def main(argv=None) -> int:
    from r1repro.stages.common import run_stage_main

    return run_stage_main(STAGE, dataclass_types(), run, argv)
