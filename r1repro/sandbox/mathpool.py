"""A persistent pool of math-verify worker processes with a hard per-sample timeout.

Why processes: math-verify can take unbounded time on adversarial answers (towers of exponents, huge
expressions), and its timeouts rely on SIGALRM, which does not work off the main thread (TRL may call
rewards from other threads). Each worker interrupts itself softly (`_mathworker.py`); if a sample
still runs past its deadline plus a grace period, the worker is killed and replaced, the sample scores
0 and counts as a timeout. The pool is created once per process and reused by every batch: starting a
worker costs ~1 s of imports, scoring a sample a few milliseconds.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

WORKER = Path(__file__).with_name("_mathworker.py")
GYM_WORKER = Path(__file__).with_name("_gymworker.py")  # the reasoning_gym reward's worker
STARTUP_TIMEOUT_S = 120.0  # importing sympy on a loaded 2-core machine can be slow
KILL_GRACE_S = 1.0  # the soft timer gets this long to work before we kill


class _Worker:
    def __init__(self, env_overrides: dict | None = None, worker: Path = WORKER):
        self.log = tempfile.TemporaryFile()  # stderr: read only to explain a crash
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_overrides or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-s", str(worker)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            close_fds=True,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = b""
        self.ready = False
        self.started = time.monotonic()
        self.task: int | None = None  # index of the sample in flight
        self.deadline = 0.0

    def send(self, index: int, gold: str, answer: str, timeout: float) -> None:
        self.task = index
        self.deadline = time.monotonic() + timeout + KILL_GRACE_S
        self.proc.stdin.write((json.dumps({"gold": gold, "answer": answer, "timeout": timeout}) + "\n").encode())
        self.proc.stdin.flush()

    def read_lines(self) -> list[dict] | None:
        """Complete messages available now; None at end of file (the worker died)."""
        try:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def stderr_tail(self) -> str:
        try:
            self.log.seek(0)
            return self.log.read()[-600:].decode(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout, self.log):
            try:
                f.close()
            except OSError:
                pass


class MathPool:
    """`score(pairs, timeout)` -> one (score, timed_out, crashed) triple per (gold, answer) pair."""

    def __init__(self, size: int, env: dict | None = None, worker: Path = WORKER):
        self.size = max(1, size)
        self.env = env
        self.worker = worker  # the script speaking the protocol (`_gymworker.py` reuses this pool)
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()
        self.restarts = 0

    def close(self) -> None:
        with self.lock:
            for w in self.workers:
                w.kill()
            self.workers = []

    def start(self) -> None:
        """Start every worker and wait until all are ready (optional: `score` starts them lazily). A
        trainer can call this at start-up so the first batch does not pay for the imports."""
        self.score([(f"${i}/7$", f"${i}/7$") for i in range(self.size * 2)], STARTUP_TIMEOUT_S)
        with self.lock:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            for w in self.workers:
                while not w.ready and time.monotonic() < deadline:
                    messages = w.read_lines() if w.proc.poll() is None else None
                    if messages is None:
                        break
                    w.ready = any(m.get("ready") for m in messages)
                    time.sleep(0.01)

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers.remove(worker)
        self.workers.append(_Worker(self.env, self.worker))
        self.restarts += 1

    def score(self, pairs: list[tuple[str, str]], timeout: float) -> list[tuple[float | None, bool, bool]]:
        if not pairs:
            return []
        with self.lock:
            while len(self.workers) < self.size:
                self.workers.append(_Worker(self.env, self.worker))
            return self._run(pairs, timeout)

    def _run(self, pairs, timeout):
        results: list[tuple[float | None, bool, bool] | None] = [None] * len(pairs)
        # Samples of one problem share a gold (GRPO: several completions per prompt), and workers cache
        # parsed golds and verdicts: send the same gold to the same worker slot, stealing when idle.
        queues = [deque() for _ in range(self.size)]
        for i, (gold, _answer) in enumerate(pairs):
            queues[hash(gold) % self.size].append(i)
        done = 0
        with selectors.DefaultSelector() as selector:
            registered: dict[int, _Worker] = {}
            while done < len(pairs):
                # Keep the selector in step with the worker list (workers are replaced when killed).
                live = {w.proc.stdout.fileno(): w for w in self.workers}
                for fd in list(registered):
                    if fd not in live or registered[fd] is not live[fd]:
                        selector.unregister(fd)
                        del registered[fd]
                for fd, w in live.items():
                    if fd not in registered:
                        selector.register(fd, selectors.EVENT_READ, w)
                        registered[fd] = w
                for slot, w in enumerate(self.workers):
                    if not (w.ready and w.task is None):
                        continue
                    own = queues[slot % self.size]
                    source = own if own else max(queues, key=len)
                    if not source:
                        continue
                    i = source.popleft()
                    try:
                        w.send(i, pairs[i][0], pairs[i][1], timeout)
                    except (BrokenPipeError, OSError):
                        source.appendleft(i)  # it died idle: replaced below when its EOF is read
                        w.task = None
                now = time.monotonic()
                deadlines = [w.deadline for w in self.workers if w.task is not None]
                deadlines += [w.started + STARTUP_TIMEOUT_S for w in self.workers if not w.ready]
                wait = max(0.0, min(deadlines) - now) if deadlines else 0.05
                for key, _ in selector.select(timeout=wait):
                    w = key.data
                    if w not in self.workers:
                        continue
                    messages = w.read_lines()
                    if messages is None:  # crashed (segfault, MemoryError at import, ...)
                        if not w.ready:
                            tail = w.stderr_tail()
                            self._replace(w)
                            raise RuntimeError(f"math-verify worker failed to start: {tail or 'no output'}")
                        if w.task is not None:
                            results[w.task] = (None, False, True)
                            done += 1
                        self._replace(w)
                        continue
                    for message in messages:
                        if message.get("ready"):
                            w.ready = True
                        elif w.task is not None:
                            results[w.task] = (message["score"], bool(message["timeout"]), False)
                            w.task = None
                            done += 1
                now = time.monotonic()
                for w in list(self.workers):
                    if w.task is not None and now > w.deadline:  # the soft timer failed: kill and replace
                        results[w.task] = (0.0, True, False)
                        done += 1
                        self._replace(w)
                    elif not w.ready and now > w.started + STARTUP_TIMEOUT_S:
                        self._replace(w)
                        raise RuntimeError(f"math-verify worker did not start within {STARTUP_TIMEOUT_S:.0f} s")
        return results


_POOLS: dict[Path, MathPool] = {}
_POOL_LOCK = threading.Lock()


def shared_pool(worker: Path = WORKER, size_env: str = "R1REPRO_MATH_WORKERS", max_size: int = 8) -> MathPool:
    """The process-wide pool of one worker script, created on first use and closed at exit.
    Size: $size_env, else the CPU count (at most max_size)."""
    with _POOL_LOCK:
        if worker not in _POOLS:
            size = int(os.environ.get(size_env, "0")) or min(max_size, os.cpu_count() or 1)
            _POOLS[worker] = MathPool(size, worker=worker)
            atexit.register(_POOLS[worker].close)
        return _POOLS[worker]


def get_pool() -> MathPool:
    """The math-verify pool. Size: $R1REPRO_MATH_WORKERS, else the CPU count (max 8)."""
    return shared_pool()
