"""Stage 5, `distill`: SFT a smaller student on the traces rejection_sft kept (R1 distilled with
SFT only, no RL). `source_dataset` points at `${run_dir}/rejection_sft/traces.jsonl`;
`model_name_or_path` at the student's own base model.
"""

from __future__ import annotations

from r1repro.stages.sft import dataclass_types, run_trace_sft

STAGE = "distill"


def run(instances, config) -> dict:
    return run_trace_sft(STAGE, instances, config)


def main(argv=None) -> int:
    from r1repro.stages.common import run_stage_main

    return run_stage_main(STAGE, dataclass_types(), run, argv)
