"""`multiple_choice` (GPQA's letter) on answers as R1-style models write them, each beside a wrong
neighbour, plus the cases where no option was chosen."""

import pytest

from r1repro.rewards import resolve_reward
from r1repro.rewards.choice import chosen_letter

T = "<think>\nOption C fits the data; A does not.\n</think>\n\n"
CASES = [
    (T + "\\boxed{C}", "C"),
    (T + "\\boxed{\\text{C}}", "C"),
    (T + "\\boxed{(C)}", "C"),
    (T + "Answer: C", "C"),
    (T + "**Answer: C**", "C"),
    (T + "The correct answer is (C).", "C"),
    (T + "The answer is option C.", "C"),
    (T + "After weighing them, I pick **C**.", "C"),
    (T + "C", "C"),
    ("<think> x </think> <answer> (C) </answer>", "C"),
    (T + "Answer: \\boxed{D}", "D"),  # the box wins over a letter stated before it
    (T + "The answer is a bit unclear without more data.", None),  # a word, not an option
    ("<think>\nThe answer is C, let me verify", None),  # truncated: still thinking
    (T + "\\boxed{42}", None),
    (T + "", None),
]


@pytest.mark.parametrize("text,letter", CASES)
def test_chosen_letter(text, letter):
    assert chosen_letter(text) == letter


def test_multiple_choice_scores_the_letter():
    reward = resolve_reward("multiple_choice")
    completions = [T + "Answer: C", T + "Answer: B", T + "answer is (c)", "<think>\nC it is", T + "\\boxed{C}"]
    assert reward(completions, solution=["C", "C", "C", "C", None]) == [1.0, 0.0, 0.0, 0.0, None]
    # a chat template that opened <think> itself: the response starts inside it
    opened = ["C is likely", "C is likely</think> Answer: C"]
    assert reward(opened, solution=["C", "C"], think_opened=True) == [0.0, 1.0]
