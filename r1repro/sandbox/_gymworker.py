"""A reasoning-gym scoring worker: the math worker's protocol (`mathpool.MathPool`), with "gold" holding
a row's `gym` reference and "answer" the model's answer; writes {"score", "timeout"} lines.

Task verifiers run untrusted answers through parsers (sympy for some tasks): in a worker they are
bounded by a soft timer and, failing that, killed by the pool, as math-verify is.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the r1repro package this file belongs to

from r1repro.gym import _import, entry_of  # noqa: E402
from r1repro.sandbox._mathworker import serve, start_worker  # noqa: E402


def main() -> None:
    out = start_worker()
    _import()  # reasoning-gym missing: the pool reports this at start-up, with the install hint

    def score(gold, answer) -> float | None:
        try:
            dataset, entry = entry_of(gold)
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # a malformed `gym` reference: does not apply
        return float(dataset.score_answer(answer or None, entry))  # a verifier that raises: 0.0 (serve)

    serve(out, score)


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
