"""format, tag_count, exact_match and the text helpers."""

from __future__ import annotations

import time

import pytest

from r1repro.rewards import resolve_reward
from r1repro.rewards.text import completion_text, extract_answer, extract_think, last_boxed, last_code_block

fmt = resolve_reward("format")
fmt_opened = resolve_reward({"name": "format", "think_opened": True})


@pytest.mark.parametrize(
    "text, expected",
    [
        (" <think> 7+5=12 carry 1 </think> <answer> 636 </answer>", 1.0),
        ("<think>a</think><answer>b</answer>", 1.0),
        ("\n<think>\na\n</think>\n\n<answer>\nb\n</answer>\n", 1.0),
        (" <think> </think> <answer> APPLE </answer>", 1.0),  # the tiny general task: empty thought is fine
        ("<think>a</think> text <answer>b</answer>", 0.0),  # anything between the blocks
        ("<think>a</think><answer>b</answer> trailing", 0.0),
        ("leading <think>a</think><answer>b</answer>", 0.0),
        ("<think>a</think><answer>b</answer><answer>c</answer>", 0.0),
        ("<think>a<think>b</think><answer>c</answer>", 0.0),
        ("<answer>b</answer><think>a</think>", 0.0),
        ("<think>a</think>", 0.0),
        ("a</think><answer>b</answer>", 0.0),  # template did not open <think>: strict
        ("", 0.0),
    ],
)
def test_format(text, expected):
    assert fmt([text]) == [expected]
    assert fmt([[{"role": "assistant", "content": text}]]) == [expected]  # chat-message form


def test_format_think_opened():
    assert fmt_opened([" 7+5=12 </think> <answer> 12 </answer>"]) == [1.0]
    assert fmt_opened(["<think> 7+5=12 </think> <answer> 12 </answer>"]) == [1.0]  # re-opened: tolerated
    assert fmt_opened([" 7+5=12 </think> 12"]) == [0.0]
    assert fmt(["7+5=12 </think> <answer> 12 </answer>"]) == [0.0]


def test_format_is_linear_on_hostile_input():
    text = "<think>" + "</think> <answer>" * 20000 + "x" * 200000
    start = time.perf_counter()
    assert fmt([text]) == [0.0]
    assert time.perf_counter() - start < 0.5


def test_tag_count():
    tc = resolve_reward("tag_count")
    assert tc(["<think>a</think><answer>b</answer>", "<think>a</think>", "<think><think></think>", "x"]) == \
        [1.0, 0.5, 0.25, 0.0]
    assert resolve_reward({"name": "tag_count", "think_opened": True})(["a</think><answer>b</answer>"]) == [1.0]


def test_exact_match():
    em = resolve_reward("exact_match")
    completions = [
        " <think> </think> <answer>  apple   apple </answer>",
        " <think> </think> <answer> APPLE </answer>",
        " <think> </think> <answer> elppa </answer>",
        "apple",  # no answer block
        " <answer> x </answer>",
    ]
    solution = ["apple apple", "apple", "elppa", "apple", None]
    assert em(completions, solution=solution) == [1.0, 0.0, 1.0, 0.0, None]
    em_ci = resolve_reward({"name": "exact_match", "ignore_case": True})
    assert em_ci(completions[:2], solution=solution[:2]) == [1.0, 1.0]
    untagged = resolve_reward({"name": "exact_match", "tags_required": False})
    assert untagged(completions, solution=solution) == [1.0, 0.0, 1.0, 1.0, None]  # "apple" counts now
    assert untagged([" 47 47", " <think> 47 </think> 74", " <think> 47", "47 47 </answer>"],
                    solution=["47 47", "74", "47", "47 47"]) == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="tags_required must be true or false"):
        resolve_reward({"name": "exact_match", "tags_required": "no"})


def test_text_helpers():
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert extract_answer("<answer>1</answer> <answer> 2 </answer>") == "2"
    assert extract_answer("<answer>1") is None
    assert extract_think(" <think> a b </think> <answer>c</answer>") == "a b"
    assert extract_think(" a b </think> <answer>c</answer>", think_opened=True) == "a b"
    assert extract_think("a b <answer>c</answer>") == "a b"
    assert last_boxed(r"\boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed{\frac{1}{2}") is None
    assert last_boxed(r"\boxed 5") == "5"
    assert last_code_block("```python\nprint(1)\n```\n```py\nprint(2)\n```") == "print(2)\n"
