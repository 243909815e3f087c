"""`code_tests`: run the completion's program against the row's tests in the sandbox (`r1repro/sandbox/box.py`).

The program is the last fenced code block of the answer part (the last `<answer>` block, else what
follows `</think>`, else the whole completion); without a fence, the answer part itself when it is
valid Python (a model asked for code often writes just the code). A row carries one kind of tests:
- stdin/stdout: `tests` = a list of `{"input": stdin, "output": expected stdout}` (or its JSON string,
  or APPS's `{"inputs": [...], "outputs": [...]}`); one run per test;
- HumanEval / MBPP: `test` (Python defining `check(candidate)`, or plain asserts) and `entry_point`,
  optionally `code_prompt` (the signature + docstring the model completed); one run;
- LiveCodeBench / APPS call-based: `fn_name` with `tests`/`input_output` holding inputs and outputs;
  one run per call (see `codecall.py`).
Reward = fraction of runs passed, or 1/0 with `binary=True` (which also stops at the first failure).
Rows without tests score None; a completion without a program scores 0.
"""

from __future__ import annotations

import ast
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from r1repro.sandbox.box import Limits, Sandbox, SandboxUnavailable

from .codecall import Case, call_cases, call_spec, check_cases, stdin_shape
from .registry import note_timeouts, register
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
                limits=Limits(timeout_s=float(timeout), memory_mb=memory_mb, max_procs=max_procs,
                              max_output_bytes=max_output_bytes),
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


_CODE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom, ast.Assign,
               ast.AugAssign, ast.For, ast.While, ast.If, ast.Call)  # fmt: skip


def _is_python(text: str) -> bool:
    """Valid Python that does something (a lone word or number parses too, but is an answer, not code)."""
    if not text.strip() or len(text) > 100_000:
        return False
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(node, _CODE_NODES) for node in ast.walk(tree))


def extract_program(completion) -> str | None:
    text = completion_text(completion)
    answer = answer_part(text)
    program = last_code_block(answer) or last_code_block(text)
    if program is None and _is_python(answer):
        program = answer  # the completion is just the code, as a model asked for code writes it
    return program


def _column(value, i: int):
    return value[i] if isinstance(value, (list, tuple)) else value


def row_cases(program: str, tests=None, test=None, entry_point=None, fn_name=None,
              code_prompt=None) -> list[Case] | None:
    """The runs that judge `program` on one row; None when the row has no tests. Malformed -> ValueError."""
    if isinstance(test, str) and test.strip():
        if not entry_point:
            raise ValueError("test: a HumanEval/MBPP-style `test` needs an `entry_point` column naming the function")
        return check_cases(program, test, str(entry_point), code_prompt or "")
    spec = call_spec(tests, fn_name)
    if spec is not None:
        return call_cases(program, *spec) or None
    rows = parse_tests(stdin_shape(tests))
    if rows is None:
        return None
    return [Case(program, str(t["input"]), lambda out, expected=t["output"]: outputs_match(out, expected))
            for t in rows]


@register("code_tests")
def code_tests(
    completions,
    tests=None,
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
    test=None,
    entry_point=None,
    fn_name=None,
    input_output=None,
    code_prompt=None,
    **kwargs,
) -> list[float | None]:
    """Fraction of the row's tests the completion's program passes, run in the sandbox.

    Columns: `tests` (stdin/stdout, or call-based with `fn_name`), `input_output` (APPS), `test` +
    `entry_point` (+ `code_prompt`) (HumanEval/MBPP). A row may fill any one of them.
    sandbox: "bwrap" (isolated; refuses to start without working bubblewrap) or "rlimits" (explicit
    opt-in: limits, unprivileged uid and scrubbed environment only, no filesystem/network isolation).
    interpreter: command that runs the program file. timeout: wall seconds per run. parallel: runs at
    once, across tests and samples. binary: 1.0 only if all pass (stops at the first failure).
    max_tests: use only the first N tests of a row.
    """
    box = get_sandbox(sandbox, interpreter, timeout, memory_mb, max_procs, max_output_bytes, parallel,
                      tuple(ro_paths or ()))
    n = len(completions)
    programs = [extract_program(c) for c in completions]
    cases: list[list[Case] | None] = []
    for i in range(n):
        row_tests = _column(tests, i)
        if row_tests is None:
            row_tests = _column(input_output, i)
        cases.append(row_cases(programs[i] or "", row_tests, _column(test, i), _column(entry_point, i),
                               _column(fn_name, i), _column(code_prompt, i)))  # fmt: skip
    jobs = []  # (sample, case)
    for i, (program, row) in enumerate(zip(programs, cases)):
        if row is not None and program:
            jobs += [(i, case) for case in (row[:max_tests] if max_tests else row)]
    failed = [False] * n  # binary mode: skip the rest of a sample once one run fails

    def run_one(i: int, case: Case) -> tuple[bool, bool]:
        if binary and failed[i]:
            return False, False
        result = box.run(case.program, case.stdin)
        ok = result.returncode == 0 and not result.output_truncated and case.passed(result.stdout)
        if not ok:
            failed[i] = True
        return ok, result.timed_out

    futures = [(i, _executor(parallel).submit(run_one, i, case)) for i, case in jobs]
    passed, total, timeouts = [0] * n, [0] * n, 0
    for i, future in futures:
        ok, timed_out = future.result()
        passed[i] += ok
        total[i] += 1
        timeouts += timed_out
    note_timeouts(timeouts)
    out = []
    for i, row in enumerate(cases):
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
            f"sandbox must be 'bwrap' (isolated) or 'rlimits' (explicit opt-in to rlimits-only, no isolation), "
            f"got {sandbox!r}"
        )
    for name, value in (("timeout", timeout), ("memory_mb", memory_mb), ("max_procs", max_procs),
                        ("parallel", parallel)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        get_sandbox(sandbox, interpreter, timeout, memory_mb, max_procs, max_output_bytes, parallel,
                    tuple(ro_paths or ()))
    except SandboxUnavailable as e:
        hint = (" (or set sandbox: rlimits to accept running untrusted code without isolation)"
                if sandbox == "bwrap" else "")
        raise ValueError(f"code sandbox unavailable: {e}{hint}") from e
    if sandbox == "rlimits" and not _WARNED_RLIMITS:
        logger.warning("code_tests runs untrusted code with rlimits only: "
                       "it can read world-readable files and use the network")
        _WARNED_RLIMITS = True


code_tests.validate = _validate
# `r1repro check`: a dataset for code_tests needs at least one of these (stdin/call-based, APPS, HumanEval).
code_tests.columns_one_of = ("tests", "input_output", "test")
