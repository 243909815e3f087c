"""Stage 2, `reasoning_rl`: GRPO from the cold-start model on reasoning prompts.

Rewards: accuracy + format + language consistency (R1 adds the last one to stop the language
mixing R1-Zero showed, at a small cost in accuracy), plus code tests where prompts are code
(`{path: rewards/code_tests.py:code_tests, tasks: [code]}`).
"""

from __future__ import annotations

from r1repro.stages.grpo import dataclass_types, run_grpo

STAGE = "reasoning_rl"


def run(instances, config) -> dict:
    return run_grpo(STAGE, instances, config)


def main(argv=None) -> int:
    from r1repro.stages.common import run_stage_main

    return run_stage_main(STAGE, dataclass_types(), run, argv)
