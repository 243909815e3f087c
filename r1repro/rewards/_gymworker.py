"""A reasoning-gym scoring worker: the math worker's protocol (`mathpool.MathPool`), with "gold" holding
a row's `gym` reference and "answer" the model's answer; writes {"score", "timeout"} lines.

Task verifiers run untrusted answers through parsers (sympy for some tasks): in a worker they are
bounded by a soft timer and, failing that, killed by the pool, as math-verify is.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the r1repro package this file belongs to

from r1repro.rewards._mathworker import SoftTimeout, _on_alarm, _watch_parent  # noqa: E402


def main() -> None:
    import threading

    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # verifiers that print go to stderr, not into the protocol
    memory_mb = int(os.environ.get("R1REPRO_MATH_WORKER_MEMORY_MB", "4096"))
    if memory_mb > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    from r1repro.gym import _import, entry_of

    _import()  # reasoning-gym missing: the pool reports this at start-up, with the install hint
    signal.signal(signal.SIGALRM, _on_alarm)
    out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        timed_out = False
        signal.setitimer(signal.ITIMER_REAL, max(0.05, float(task.get("timeout", 5.0))))
        try:
            try:
                dataset, entry = entry_of(task["gold"])
            except (ValueError, KeyError, TypeError, IndexError):
                result = None  # a malformed `gym` reference: does not apply
            else:
                try:
                    result = float(dataset.score_answer(task["answer"] or None, entry))
                except (Exception, RecursionError):  # the verifier choked on the answer: a wrong answer
                    result = 0.0
        except SoftTimeout:
            result, timed_out = 0.0, True
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        out.write(json.dumps({"score": result, "timeout": timed_out}) + "\n")


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
