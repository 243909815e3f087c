"""The example plug-ins in rewards/, loaded by path exactly as a recipe does."""

from __future__ import annotations

import os

import pytest

from r1repro.rewards import build_rewards, resolve_reward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plugin(name: str) -> str:
    return os.path.join(ROOT, "rewards", name)


def test_regex_answer():
    reward = resolve_reward({"path": plugin("regex_answer.py") + ":regex_answer",
                             "pattern": r"(?i)final answer:\s*(\S+)"})
    out = reward(["... Final answer: B", "final answer: A then final answer: C", "no idea", "x"],
                 solution=["B", "B", "B", None])
    assert out == [1.0, 0.0, 0.0, None]
    with pytest.raises(ValueError, match="not a valid regular expression"):
        resolve_reward({"path": plugin("regex_answer.py") + ":regex_answer", "pattern": "(unclosed"})


def test_countdown_plugin_policies():
    spec = plugin("countdown.py") + ":countdown"
    strict = resolve_reward({"path": spec})
    loose = resolve_reward({"path": spec, "allow_unused": True, "format_score": 0.2})
    completions = ["<answer>25 + 15</answer>", "<answer>(25 - 5) * 2</answer>", "<answer>open('x')</answer>"]
    cols = dict(target=[40, 40, 40], nums=[[25, 15, 3], [25, 5, 2], [1, 2]])
    assert strict(completions, **cols) == [0.1, 1.0, 0.0]
    assert loose(completions, **cols) == [1.0, 1.0, 0.0]


@pytest.mark.sandbox
def test_code_tests_plugin_options():
    funcs, weights = build_rewards([{"path": plugin("code_tests.py") + ":code_tests", "weight": 2, "timeout": 3,
                                     "no_code_penalty": -0.5, "all_or_nothing_above": 0.5}])  # fmt: skip
    reward = funcs[0]
    assert weights == [2.0] and reward.__name__ == "code_tests"
    tests = [{"input": "2\n", "output": "4"}, {"input": "3\n", "output": "9"}, {"input": "-1\n", "output": "1"}]
    completions = [
        "<answer>\n```python\nn = int(input()); print(n * n)\n```\n</answer>",
        "<answer>\n```python\nn = int(input()); print(n + n if n == 2 else n * n)\n```\n</answer>",
        "<answer>\n```python\nprint(4)\n```\n</answer>",  # 1 of 3 < 0.5: kept
        "<answer>just prose</answer>",
    ]
    assert reward(completions, tests=[tests] * 4) == [1.0, 1.0, pytest.approx(1 / 3), -0.5]
    # HumanEval-style rows (test + entry_point) reach the same sandbox through the plug-in
    check = "def check(candidate):\n    assert candidate(3) == 9\n"
    square = ["<answer>\n```python\ndef sq(n):\n    return n * n\n```\n</answer>",
              "<answer>\n```python\ndef sq(n):\n    return n\n```\n</answer>",
              "<answer>just prose</answer>"]  # fmt: skip
    assert reward(square, test=[check] * 3, entry_point=["sq"] * 3) == [1.0, 0.0, -0.5]
    assert reward(square[:1], tests=[None]) == [None]  # no tests of any kind: does not apply
