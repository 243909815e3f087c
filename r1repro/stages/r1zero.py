"""Stage 0, `r1zero`: GRPO straight from a *base* model (DeepSeek-R1-Zero).

Plain-text R1-Zero template (no chat template), rule rewards only: the strict anchored format
reward (think, then answer) and accuracy on the `<answer>` content. No SFT data, no reward model.
"""

from __future__ import annotations

from r1repro.stages.grpo import dataclass_types, run_grpo

STAGE = "r1zero"


def run(instances, config) -> dict:
    return run_grpo(STAGE, instances, config)


def main(argv=None) -> int:
    from r1repro.stages.common import run_stage_main

    return run_stage_main(STAGE, dataclass_types(), run, argv)
