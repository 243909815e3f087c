"""Code tests with your own scoring policy, on top of r1repro's sandbox.

    rewards: [{path: rewards/code_tests.py:code_tests, timeout: 2, no_code_penalty: -0.5, all_or_nothing_above: 0.8}]

The sandbox (bubblewrap: no network, read-only system files, unprivileged uid, rlimits, PID namespace)
and the test running come from `r1repro.rewards.code`; this file decides what a result is worth:
- a completion with no code block gets `no_code_penalty` instead of 0 (discourages prose-only answers);
- a pass rate at or above `all_or_nothing_above` is rounded up to 1.0, below it is kept as is;
- `interpreter` picks the language runtime (it must live under /usr, e.g. "/usr/bin/python3 -I").
"""

from __future__ import annotations

from r1repro.rewards.code import code_tests as run_code_tests
from r1repro.rewards.code import extract_program


def code_tests(
    completions,
    tests=None,
    timeout: float = 5.0,
    interpreter: str = "/usr/bin/python3 -I",
    no_code_penalty: float = 0.0,
    all_or_nothing_above: float | None = None,
    parallel: int = 4,
    **kwargs,
) -> list[float | None]:
    # every test column (stdin `tests`, HumanEval `test` + `entry_point`, call-based `fn_name`) passes through
    rates = run_code_tests(completions, tests, timeout=timeout, interpreter=interpreter, parallel=parallel, **kwargs)
    out = []
    for completion, rate in zip(completions, rates):
        if rate is None:  # the row has no tests
            out.append(None)
        elif extract_program(completion) is None:
            out.append(no_code_penalty)
        elif all_or_nothing_above is not None and rate >= all_or_nothing_above:
            out.append(1.0)
        else:
            out.append(rate)
    return out


code_tests.columns_one_of = ("tests", "input_output", "test")  # what `r1repro check` looks for in the dataset
