"""Parity with lighteval, the tool open-r1 publishes with: the same (gold, completion) pairs scored by
lighteval's metrics (math: the extractive match of its math_500 task; GPQA: its letter extraction) and by
ours (`accuracy`, `multiple_choice`). The pairs are tests/data/parity_pairs.py (352 math, 96 GPQA).

lighteval pins ~145 packages of its own (its math metric parses with latex2sympy2_extended), so it runs in
.venv-lighteval (`bash .ci/setup-lighteval-venv.sh`, or R1REPRO_LIGHTEVAL_PYTHON=/path/to/python); without it
this test skips, except under `make test` (R1REPRO_REQUIRE_LIGHTEVAL=1), where it fails.
Every disagreement must be of a kind listed in KNOWN_DIFFERENCES, with why ours is right.
Measured (2026-12-03, lighteval 0.13.0, 398 s here): math 332/352 agree (94.3%), GPQA 84/96 (87.5%);
every difference is a response cut off inside <think>; on all other pairs 308/308 and 84/84 (100%).
The same counts on an AMD EPYC (avx2, 2026-12-04; 43 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1repro.rewards import resolve_reward

sys.path.insert(0, str(Path(__file__).parent / "data"))
from parity_pairs import gpqa_pairs, math_pairs  # noqa: E402

pytestmark = pytest.mark.lighteval

REPO = Path(__file__).resolve().parents[1]

# (benchmark, shape) -> why our verdict differs and is the right one
KNOWN_DIFFERENCES = {
    ("math", "truncated in think"): (
        "the response was cut off inside <think> (no </think>, no box): it never answered. lighteval removes "
        "only closed <think> blocks, then its extraction falls back to a number in the unfinished reasoning "
        "('Maybe it is 5?') and credits it; we score 0, as a response without a final answer is wrong"),
    ("gpqa", "truncated in think"): (
        "cut off inside <think>: lighteval's letter extraction (try_extract_without_anchor) takes a letter "
        "from the unfinished reasoning ('Option C might be right'); no option was chosen, so we score 0"),
}


def lighteval_python() -> str:
    # `make test` sets R1REPRO_REQUIRE_LIGHTEVAL=1: there a missing lighteval fails instead of skipping
    missing = pytest.fail if os.environ.get("R1REPRO_REQUIRE_LIGHTEVAL") == "1" else pytest.skip
    python = os.environ.get("R1REPRO_LIGHTEVAL_PYTHON") or str(REPO / ".venv-lighteval" / "bin" / "python")
    if not Path(python).is_file():
        missing(f"lighteval is not installed: {python} missing (bash .ci/setup-lighteval-venv.sh)")
    probe = subprocess.run([python, "-c", "import lighteval"], capture_output=True, text=True)
    if probe.returncode != 0:
        missing(f"lighteval is not importable by {python}: {probe.stderr.strip().splitlines()[-1:]}")
    return python


def test_scores_agree_with_lighteval():
    python = lighteval_python()
    pairs = {"math": math_pairs(), "gpqa": gpqa_pairs()}
    assert len(pairs["math"]) >= 300
    run = subprocess.run([python, str(REPO / "tests" / "lighteval_scorer.py")], input=json.dumps(pairs),
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = json.loads(run.stdout)
    accuracy = resolve_reward({"name": "accuracy", "timeout": 60})  # verdicts, not speed: loaded machines
    ours = {
        "math": accuracy([p["completion"] for p in pairs["math"]], solution=[p["gold"] for p in pairs["math"]]),
        "gpqa": resolve_reward("multiple_choice")([p["completion"] for p in pairs["gpqa"]],
                                                  solution=[p["gold"] for p in pairs["gpqa"]]),
    }
    for bench in ("math", "gpqa"):
        rows = list(zip(pairs[bench], ours[bench], theirs[bench], strict=True))
        differ = [(p["gold"], p["shape"], o, t) for p, o, t in rows if (o or 0.0) != t]
        unexplained = [d for d in differ if (bench, d[1]) not in KNOWN_DIFFERENCES]
        assert not unexplained, f"{bench}: (gold, shape, ours, lighteval) not in KNOWN_DIFFERENCES: {unexplained}"
        finished = [(o or 0.0) == t for p, o, t in rows if (bench, p["shape"]) not in KNOWN_DIFFERENCES]
        print(f"{bench}: {len(rows) - len(differ)}/{len(rows)} agree; outside the listed kinds "
              f"{sum(finished)}/{len(finished)}")
        assert sum(finished) >= 0.98 * len(finished)
