"""A math-verify worker process: reads JSON lines {"gold", "answer", "timeout"} on stdin, writes
{"score": 1.0 | 0.0 | null, "timeout": bool} lines on stdout.

Run as a script by `mathpool.MathPool` (not imported by the library). It exists because math-verify's
own timeouts use SIGALRM, which only works on a main thread: here we *are* a main thread, so a soft
per-sample timer interrupts slow parses cheaply, and the parent still kills us if that is not enough.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import sys
import threading
import time
from functools import lru_cache


class SoftTimeout(BaseException):
    """Raised by our timer. A BaseException, so math-verify's and sympy's `except Exception` handlers
    cannot swallow it and turn a timeout into a silent wrong answer."""


def _on_alarm(signum, frame):
    raise SoftTimeout()


def _watch_parent(parent: int) -> None:
    # If the trainer dies without closing our stdin (SIGKILL, OOM), do not linger: exit within a second.
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def start_worker():
    """The setup every scoring worker shares; returns the protocol's output stream."""
    # The protocol owns the real stdout; anything the libraries print goes to stderr.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    memory_mb = int(os.environ.get("R1REPRO_MATH_WORKER_MEMORY_MB", "4096"))
    if memory_mb > 0:  # a 10^10^10 expansion becomes a MemoryError here, not an OOM kill of the machine
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    signal.signal(signal.SIGALRM, _on_alarm)
    return out


def serve(out, score, soft: bool = True) -> None:
    """The pool protocol (`mathpool.MathPool`): announce readiness, then one {"gold", "answer",
    "timeout"} line in, one {"score", "timeout"} line out. `score(gold, answer)` runs under the soft
    timer; an exception it raises is a wrong answer (0.0)."""
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        timed_out = False
        if soft:
            signal.setitimer(signal.ITIMER_REAL, max(0.05, float(task.get("timeout", 5.0))))
        try:
            result = score(task["gold"], task["answer"])
        except SoftTimeout:
            result, timed_out = 0.0, True
        except (Exception, RecursionError):  # an answer the verifier cannot handle is a wrong answer
            result = 0.0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps({"score": result, "timeout": timed_out}) + "\n")


def main() -> None:
    out = start_worker()
    sys.setrecursionlimit(10_000)

    # After start_worker: what the import prints goes to stderr, under the memory limit; and the other
    # workers that share start_worker do not import math-verify.
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # Our timer replaces math-verify's; silence its "timeout is disabled" warnings.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    # malformed_operators: math-verify's repair of `\\sqrt(2)`, `2^(3)`, `\\frac{1}2`, `1/2` (off in TRL and open-r1).
    normalization = NormalizationConfig(units=True, malformed_operators=True)
    config = [LatexExtractionConfig(normalization_config=normalization), ExprExtractionConfig()]

    @lru_cache(maxsize=4096)
    def parse_cached(text: str, fallback: str = "first_match"):
        return parse(text, extraction_config=config, fallback_mode=fallback, parsing_timeout=None)

    # GRPO samples several completions per prompt and they often agree: remember whole verdicts too.
    # (A timeout raises through the cache, so it is never remembered.)
    @lru_cache(maxsize=8192)
    def score(gold_text: str, answer_text: str) -> float | None:
        # A gold that does not become a math expression is "unparseable" (None), not a string to match.
        if not parse_cached(gold_text, "no_fallback"):
            return None
        # Compared in full, with the string math-verify keeps beside the expression (as TRL's parse(sol)):
        # `$12:00$` becomes sympy's zoo, which equals nothing, so only the string can match `$12:00$`.
        gold = parse_cached(gold_text)
        answer = parse_cached(answer_text)
        if not answer:
            return 0.0
        return float(verify(gold, answer, timeout_seconds=None))

    # The soft timer can be switched off (the pool's hard kill then does all the work); tests use this
    # to exercise the kill-and-replace path on real inputs.
    serve(out, score, soft=os.environ.get("R1REPRO_MATH_SOFT_TIMEOUT", "1") != "0")


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
