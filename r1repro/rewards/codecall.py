"""Function-call code tests: what `code_tests` runs for a row that is not stdin/stdout.

Two row shapes, next to the stdin/stdout `tests` of `code.py`:
- HumanEval / MBPP: a `test` column of Python that defines `check(candidate)` (or is a list of plain
  `assert f(x) == y` lines) and an `entry_point` column naming the function; optionally `code_prompt`
  (HumanEval's signature + docstring, whose imports and helpers the tests may use). One run per sample;
  it passes when `check(<the completion's function>)` returns.
- LiveCodeBench / APPS call-based: a function name (`fn_name` column, or the `fn_name` key of an APPS
  `input_output` / `tests` mapping) and lists of inputs and outputs: `{"fn_name": "f", "inputs": [[1, 2],
  ...], "outputs": [3, ...]}`, or `tests: [{"input": "1\\n2", "output": "3"}]` with JSON lines as the
  arguments (LiveCodeBench). A top-level function or a method of `class Solution`. One run per call;
  reward = fraction of calls whose result equals the output (compared here, outside the sandbox).

Each run is one Python file: a small harness with the completion's code and the tests inside it as
string literals. What the harness guards against (reward hacks that real policies find):
- exiting early (`sys.exit(0)`, `os._exit(0)`) : a run passes only if the harness prints a marker that
  comes in on stdin (never in the file), which is then replaced by /dev/null;
- results that claim equality with anything (`__eq__` always True): a return value must be built from
  plain builtin types only (exact types, so no subclass of int either);
- shadowing what the tests use (`abs = lambda x: 0`, a `check` of its own): the tests run, as in
  HumanEval's harness, in the program's namespace (its helpers such as `poly` are there), but in a copy
  without the program's `check` and without names that shadow builtins; the trusted `code_prompt` is
  run again on top, so its helpers win over the completion's. Without a `code_prompt` the program's own
  helpers are trusted, as HumanEval's harness trusts them.
Not guarded: code that walks the interpreter's frames to find the marker. The sandbox bounds what it can
harm, not what it can claim; that needs a verdict computed outside the process (as call-based tests do).
"""

from __future__ import annotations

import ast
import json
import secrets
from dataclasses import dataclass
from typing import Callable

HARNESS = r'''
import json, os, sys
_PLAIN = (int, float, str, bool, type(None), complex, bytes)
def _plain(v, depth=0):
    t = type(v)
    if t in _PLAIN:
        return True
    if t in (list, tuple, set, frozenset) and depth < 50:
        return all(_plain(x, depth + 1) for x in v)
    if t is dict and depth < 50:
        return all(_plain(k, depth + 1) and _plain(x, depth + 1) for k, x in v.items())
    return False
def _jsonable(v):
    if type(v) in (tuple, list):
        return [_jsonable(x) for x in v]
    if type(v) in (set, frozenset):
        return sorted((_jsonable(x) for x in v), key=repr)
    if type(v) is dict:
        return {str(k): _jsonable(x) for k, x in v.items()}
    if type(v) in (complex, bytes):
        return repr(v)
    return v
def _guard(fn):
    def candidate(*args, **kwargs):
        result = fn(*args, **kwargs)
        if not _plain(result):
            raise TypeError("the function returned a %s, not a plain value" % type(result).__name__)
        return result
    return candidate
def _run():
    import builtins as real_builtins  # locals (this, the marker), not globals of __main__ the code could swap
    mark = sys.stdin.readline().strip()
    calls = sys.stdin.read()
    null = os.open(os.devnull, os.O_RDONLY); os.dup2(null, 0); os.close(null)  # no second read of stdin
    ns = {"__name__": "solution"}
    try:
        if PROMPT_FIRST:
            exec(compile(CODE_PROMPT, "prompt.py", "exec"), ns)
        exec(compile(SOURCE, "solution.py", "exec"), ns)
        fn = ns.get(ENTRY)
        if fn is None and isinstance(ns.get("Solution"), type):
            fn = getattr(ns["Solution"](), ENTRY, None)
        if not callable(fn):
            raise NameError("the code defines no function %r" % ENTRY)
        if MODE == "check":
            # HumanEval's harness runs the test in the program's namespace: `check` may call helpers the
            # program defines (poly, encode_cyclic). A copy of it, without the program's `check` and
            # without names that shadow builtins; the trusted code_prompt's helpers go back on top.
            tests = {k: v for k, v in ns.items() if k.startswith("__") or not hasattr(real_builtins, k)}
            tests.pop("check", None)
            tests.update(__name__="tests", __builtins__=real_builtins)
            if CODE_PROMPT:
                exec(compile(CODE_PROMPT, "prompt.py", "exec"), tests)
            tests[ENTRY] = _guard(fn)
            exec(compile(TEST, "tests.py", "exec"), tests)
            if callable(tests.get("check")):
                tests["check"](tests[ENTRY])
            verdict = "ok"
        else:
            verdict = json.dumps(_jsonable(_guard(fn)(*json.loads(calls))))
    except BaseException as e:  # SystemExit included: exiting is not passing
        sys.stdout.flush()
        print("%s: %s" % (type(e).__name__, str(e)[:500]), file=sys.stderr)
        os._exit(1)
    sys.stdout.flush()
    print()
    print(mark, verdict)
    sys.stdout.flush()
    os._exit(0)
_run()
'''


@dataclass
class Case:
    """One sandbox run: the file to run, its stdin, and how to judge what it printed."""

    program: str
    stdin: str
    passed: Callable[[str], bool]  # stdout -> pass (the run also had to exit 0 within its limits)


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name in (name, "Solution")
               for n in tree.body)  # fmt: skip


def _program(source: str, entry: str, mode: str, test: str = "", code_prompt: str = "") -> str:
    # A completion that only writes the body of the prompt's function (as HumanEval completions do) is
    # appended to the prompt; a whole function runs after the prompt, so the prompt's imports/helpers exist.
    prompt_first = bool(code_prompt) and _defines(source, entry)
    if code_prompt and not prompt_first:
        source = code_prompt + source
    header = (f"SOURCE = {source!r}\nCODE_PROMPT = {code_prompt!r}\nPROMPT_FIRST = {prompt_first!r}\n"
              f"ENTRY = {entry!r}\nMODE = {mode!r}\nTEST = {test!r}\n")  # fmt: skip
    return header + HARNESS


def _marker_line(stdout: str, mark: str) -> str | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(mark + " "):
            return line[len(mark) + 1 :]
    return None


def _same(got, expected) -> bool:
    if got == expected:
        return True
    # APPS wraps each call's output in a list: [[result]] for a result, or the result itself
    return isinstance(expected, list) and len(expected) == 1 and got == expected[0]


def _as_value(v):
    """An output as written in a dataset: a JSON string (LiveCodeBench) or the value itself (APPS)."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return json.loads(json.dumps(v))  # tuples -> lists, as the harness reports them


def _as_args(v) -> list:
    """Call arguments: a list (APPS), or a string of one JSON value per line (LiveCodeBench)."""
    if isinstance(v, str):
        return [json.loads(line) for line in v.split("\n") if line.strip()]
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


def check_cases(source: str, test: str, entry_point: str, code_prompt: str = "") -> list[Case]:
    mark = secrets.token_hex(16)
    return [Case(_program(source, entry_point, "check", test, code_prompt or ""), mark + "\n",
                 lambda out, mark=mark: _marker_line(out, mark) == "ok")]  # fmt: skip


def call_cases(source: str, fn_name: str, inputs: list, outputs: list) -> list[Case]:
    program = _program(source, fn_name, "call")
    cases = []
    for args, expected in zip(inputs, outputs, strict=True):
        mark = secrets.token_hex(16)
        expected_value = _as_value(expected)

        def passed(out, mark=mark, expected_value=expected_value) -> bool:
            line = _marker_line(out, mark)
            return line is not None and _same(json.loads(line), expected_value)

        cases.append(Case(program, mark + "\n" + json.dumps(_as_args(args)), passed))
    return cases


def call_spec(tests, fn_name) -> tuple[str, list, list] | None:
    """(fn_name, inputs, outputs) when the row is call-based, else None."""
    if isinstance(tests, str):
        try:
            tests = json.loads(tests) if tests.strip() else None
        except ValueError as e:
            raise ValueError(f"tests: not valid JSON ({e})") from None
    if isinstance(tests, dict) and "inputs" in tests and "outputs" in tests:
        name = tests.get("fn_name") or fn_name
        if not name:
            return None  # APPS stdin problems use the same mapping without fn_name
        return str(name), list(tests["inputs"]), list(tests["outputs"])
    if fn_name and isinstance(tests, list):
        for t in tests:
            if not isinstance(t, dict) or "input" not in t or "output" not in t:
                raise ValueError(f"tests: each test needs 'input' and 'output', got {t!r:.80}")
        return str(fn_name), [t["input"] for t in tests], [t["output"] for t in tests]
    return None


def stdin_shape(tests):
    """APPS's stdin problems: {"inputs": [...], "outputs": [...]} without fn_name -> the list form."""
    if isinstance(tests, str) and tests.strip().startswith("{"):
        tests = json.loads(tests)
    if isinstance(tests, dict) and "inputs" in tests and "outputs" in tests:
        return [{"input": i, "output": o} for i, o in zip(tests["inputs"], tests["outputs"], strict=True)]
    return tests
