"""`code_tests`: run the completion's program against the row's `tests` in the sandbox (`sandbox.py`).

The program is the last fenced code block of the answer part (the last `<answer>` block, else what
follows `</think>`, else the whole completion). `tests` is a list of `{"input": stdin, "output":
expected stdout}` (a JSON string of that list is accepted too). Reward = fraction of tests passed, or
1/0 with `binary=True` (which also stops at the first failure). Rows without tests score None.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from .registry import note_timeouts, register
from .sandbox import Limits, Sandbox, SandboxUnavailable
from .text import answer_part, completion_text, last_code_block

logger = logging.getLogger(__name__)

_SANDBOXES: dict[tuple, Sandbox] = {}
_EXECUTORS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()
_WARNED_RLIMITS = False


def get_sandbox(
    sandbox: str = "bwrap",
    interpreter: str | list[str] = "/usr/bin/python3 -I",
    timeout: float = 5.0,
    memory_mb: int = 512,
    max_procs: int = 32,
    max_output_bytes: int = 1 << 16,
    parallel: int = 4,
    ro_paths: tuple[str, ...] = (),
) -> Sandbox:
    """One Sandbox per configuration, created and checked once per process (the check runs a real
    program, so a machine that cannot sandbox fails at start-up, not mid-training)."""
    argv = tuple(interpreter.split() if isinstance(interpreter, str) else interpreter)
    key = (sandbox, argv, float(timeout), memory_mb, max_procs, max_output_bytes, parallel, tuple(ro_paths))
    with _LOCK:
        if key not in _SANDBOXES:
            box = Sandbox(
                backend=sandbox,
                interpreter=argv,
                limits=Limits(timeout_s=float(timeout), memory_mb=memory_mb, max_procs=max_procs, max_output_bytes=max_output_bytes),
                slots=parallel,
                ro_paths=tuple(ro_paths),
            )
            box.check()
            _SANDBOXES[key] = box
        return _SANDBOXES[key]


def _executor(parallel: int) -> ThreadPoolExecutor:
    with _LOCK:
        if parallel not in _EXECUTORS:
            _EXECUTORS[parallel] = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="code_tests")
        return _EXECUTORS[parallel]


def parse_tests(value) -> list[dict] | None:
    """The `tests` cell -> a list of {"input", "output"}; None if the row has none. Malformed -> ValueError
    (the wrapper scores that row None and counts an error)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else None
        if value is None:
            return None
    if isinstance(value, dict) and "input" in value and isinstance(value["input"], list):  # columnar form
        value = [{"input": i, "output": o} for i, o in zip(value["input"], value["output"], strict=True)]
    if not isinstance(value, list):
        raise ValueError(f"tests: expected a list of {{'input', 'output'}}, got {type(value).__name__}")
    for t in value:
        if not isinstance(t, dict) or "input" not in t or "output" not in t:
            raise ValueError(f"tests: each test needs 'input' and 'output', got {t!r:.80}")
    return value or None


def outputs_match(got: str, expected: str) -> bool:
    """Judge-style comparison: trailing whitespace on each line and trailing blank lines do not count."""

    def norm(s: str) -> list[str]:
        lines = [line.rstrip() for line in s.replace("\r\n", "\n").split("\n")]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    return norm(got) == norm(str(expected))


def extract_program(completion) -> str | None:
    text = completion_text(completion)
    return last_code_block(answer_part(text)) or last_code_block(text)


@register("code_tests")
def code_tests(
    completions,
    tests,
    sandbox: str = "bwrap",
    interpreter: str | list[str] = "/usr/bin/python3 -I",
    timeout: float = 5.0,
    memory_mb: int = 512,
    max_procs: int = 32,
    max_output_bytes: int = 1 << 16,
    parallel: int = 4,
    binary: bool = False,
    max_tests: int | None = None,
    ro_paths: list[str] | None = None,
    **kwargs,
) -> list[float | None]:
    """Fraction of `tests` the completion's last code block passes, run in the sandbox.

    sandbox: "bwrap" (isolated; refuses to start without working bubblewrap) or "rlimits" (explicit
    opt-in: limits, unprivileged uid and scrubbed environment only, no filesystem/network isolation).
    interpreter: command that runs the program file. timeout: wall seconds per test. parallel: runs at
    once, across tests and samples. binary: 1.0 only if all pass (stops at the first failure).
    max_tests: use only the first N tests of a row.
    """
    box = get_sandbox(sandbox, interpreter, timeout, memory_mb, max_procs, max_output_bytes, parallel, tuple(ro_paths or ()))
    rows = [parse_tests(t) for t in tests]
    programs = [extract_program(c) for c in completions]
    jobs = []  # (sample, test)
    for i, (program, row) in enumerate(zip(programs, rows, strict=True)):
        if row is not None and program:
            jobs += [(i, t) for t in (row[:max_tests] if max_tests else row)]
    failed = [False] * len(completions)  # binary mode: skip the rest of a sample once one test fails

    def run_one(i: int, test: dict) -> tuple[bool, bool]:
        if binary and failed[i]:
            return False, False
        result = box.run(programs[i], str(test["input"]))
        ok = result.returncode == 0 and not result.output_truncated and outputs_match(result.stdout, test["output"])
        if not ok:
            failed[i] = True
        return ok, result.timed_out

    futures = [(i, _executor(parallel).submit(run_one, i, t)) for i, t in jobs]
    passed, total, timeouts = [0] * len(completions), [0] * len(completions), 0
    for i, future in futures:
        ok, timed_out = future.result()
        passed[i] += ok
        total[i] += 1
        timeouts += timed_out
    note_timeouts(timeouts)
    out = []
    for i, row in enumerate(rows):
        if row is None:
            out.append(None)
        elif not programs[i]:
            out.append(0.0)  # no program: fails every test
        elif binary:
            out.append(float(passed[i] == total[i]))
        else:
            out.append(passed[i] / total[i])
    return out


def _validate(sandbox: str = "bwrap", interpreter="/usr/bin/python3 -I", timeout: float = 5.0, memory_mb: int = 512,
              max_procs: int = 32, max_output_bytes: int = 1 << 16, parallel: int = 4, binary: bool = False,
              max_tests=None, ro_paths=None, **_):  # fmt: skip
    global _WARNED_RLIMITS
    if sandbox not in ("bwrap", "rlimits"):
        raise ValueError(
            f"sandbox must be 'bwrap' (isolated) or 'rlimits' (explicit opt-in to rlimits-only, no isolation), got {sandbox!r}"
        )
    for name, value in (("timeout", timeout), ("memory_mb", memory_mb), ("max_procs", max_procs), ("parallel", parallel)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        get_sandbox(sandbox, interpreter, timeout, memory_mb, max_procs, max_output_bytes, parallel, tuple(ro_paths or ()))
    except SandboxUnavailable as e:
        hint = " (or set sandbox: rlimits to accept running untrusted code without isolation)" if sandbox == "bwrap" else ""
        raise ValueError(f"code sandbox unavailable: {e}{hint}") from e
    if sandbox == "rlimits" and not _WARNED_RLIMITS:
        logger.warning("code_tests runs untrusted code with rlimits only: it can read world-readable files and use the network")
        _WARNED_RLIMITS = True


code_tests.validate = _validate
