"""The fixed (gold, completion) sets the lighteval parity test scores with both tools.

Deterministic (no randomness): 44 math golds x 8 completion shapes = 352 math pairs, written the way
R1-style models write them (a `<think>` block, then the answer boxed or not, LaTeX variants of the gold,
wrong answers, a wrong candidate boxed inside the reasoning), and 12 GPQA questions x 8 ways to state
the letter = 96 letter pairs. `python tests/data/parity_pairs.py` prints them as JSON.
"""

from __future__ import annotations

import json

# (gold as a dataset writes it, an equivalent form a model may write, a wrong answer of the same shape)
MATH = [
    ("5", "5", "6"),
    ("-3", "-3", "3"),
    ("0", "0", "1"),
    ("42", "42.0", "24"),
    ("1000", "1,000", "100"),
    ("32349", "32,\\! 349", "32,\\! 394"),
    ("11111111100", "11,\\! 111,\\! 111,\\! 100", "11,\\! 111,\\! 111,\\! 000"),
    ("10000", "10{,}000", "1{,}000"),
    ("0.5", "\\frac{1}{2}", "\\frac{1}{3}"),
    ("\\frac{3}{4}", "\\dfrac{3}{4}", "\\frac{4}{3}"),
    ("\\frac{7}{2}", "3.5", "2.5"),
    ("-\\frac{1}{2}", "\\frac{-1}{2}", "\\frac{1}{2}"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", "\\frac{\\sqrt{2}}{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}", "2\\sqrt{3}"),
    ("\\sqrt{5}", "\\sqrt{5}", "\\sqrt{6}"),
    ("3\\sqrt{13}", "3\\sqrt{13}", "13\\sqrt{3}"),
    ("\\pi", "\\pi", "2\\pi"),
    ("\\frac{\\pi}{4}", "\\frac{\\pi}{4}", "\\frac{\\pi}{2}"),
    ("4\\pi", "4\\pi", "8\\pi"),
    ("\\frac{9\\pi}{4}", "\\frac{9}{4}\\pi", "\\frac{4}{9}\\pi"),
    ("(1, 2)", "(1,2)", "(2, 1)"),
    ("(3, -4)", "(3,-4)", "(-3, 4)"),
    ("[2, 5)", "[2,5)", "(2, 5]"),
    ("(-\\infty, 0)", "(-\\infty,0)", "(0, \\infty)"),
    ("x^2 + 2x + 1", "(x+1)^2", "x^2 + 1"),
    ("2x - 3", "2x-3", "3x - 2"),
    ("y = 2x + 1", "y=2x+1", "y = x + 2"),
    ("\\frac{1}{x}", "x^{-1}", "x"),
    ("120^\\circ", "120", "60^\\circ"),
    ("30\\%", "30\\%", "40\\%"),
    ("\\$18", "18", "\\$19"),
    ("2.25", "\\frac{9}{4}", "2.5"),
    ("0.125", "\\frac{1}{8}", "0.25"),
    ("1.5", "\\frac{3}{2}", "\\frac{2}{3}"),
    ("e^2", "e^{2}", "2e"),
    ("\\log_2 3", "\\log_{2}3", "\\log_3 2"),
    ("a+b", "b+a", "a-b"),
    ("8", "8", "9"),
    ("17", "17", "71"),
    ("204", "204", "240"),
    ("1/3", "\\frac{1}{3}", "\\frac{1}{4}"),
    ("2^{10}", "1024", "2^{11}"),
    ("-7", "-7", "7"),
    ("\\text{(C)}", "\\text{(C)}", "\\text{(D)}"),
]

THINK = "<think>\nLet me work through this carefully. First I set up the equations, then I simplify.\n"


def math_completions(gold: str, alt: str, wrong: str) -> list[tuple[str, str]]:
    """(shape, completion) for one gold: 4 right, 4 wrong; the shape names what the pair tests."""
    return [
        ("boxed gold form", f"{THINK}So the result is {gold}.\n</think>\n\nThe answer is $\\boxed{{{gold}}}$."),
        ("boxed other form", f"{THINK}</think>\n\n**Final Answer**\n\\[\n\\boxed{{{alt}}}\n\\]"),
        ("boxed after wrong draft", f"{THINK}At first I got \\boxed{{{wrong}}}, but that was a slip.\n</think>\n\n"
                                    f"The final answer is $\\boxed{{{alt}}}$."),
        ("no think, boxed", f"We compute step by step.\n\nTherefore, the final answer is: $\\boxed{{{gold}}}$. "
                            "I hope it is correct."),
        ("boxed wrong", f"{THINK}</think>\n\nThe answer is $\\boxed{{{wrong}}}$."),
        ("boxed wrong after right draft", f"{THINK}I first thought {gold}, but no.\n</think>\n\n"
                                          f"The final answer is $\\boxed{{{wrong}}}$."),
        ("unboxed wrong", f"{THINK}</think>\n\nThe answer is ${wrong}$."),
        ("truncated in think", f"{THINK}Maybe it is {gold}? Let me check again and again"),
    ]


def math_pairs() -> list[dict]:
    return [{"gold": gold, "shape": shape, "completion": text}
            for gold, alt, wrong in MATH for shape, text in math_completions(gold, alt, wrong)]


LETTERS = "ABCD"


def gpqa_completions(letter: str, wrong: str) -> list[tuple[str, str]]:
    return [
        ("boxed letter", f"{THINK}Option {letter} fits.\n</think>\n\n\\boxed{{{letter}}}"),
        ("Answer: X", f"{THINK}</think>\n\nAnswer: {letter}"),
        ("answer is (X)", f"{THINK}</think>\n\nThe correct answer is ({letter})."),
        ("bold letter", f"{THINK}</think>\n\n**Answer: {letter}**"),
        ("boxed wrong", f"{THINK}Option {letter} looked good but is not.\n</think>\n\n\\boxed{{{wrong}}}"),
        ("Answer: wrong", f"{THINK}</think>\n\nAnswer: {wrong}"),
        ("answer is (wrong)", f"{THINK}</think>\n\nThe correct answer is ({wrong})."),
        ("truncated in think", f"{THINK}Option {letter} might be right, checking"),
    ]


def gpqa_pairs() -> list[dict]:
    out = []
    for i in range(12):
        letter, wrong = LETTERS[i % 4], LETTERS[(i + 1 + i // 4) % 4]
        out += [{"gold": letter, "shape": shape, "completion": text}
                for shape, text in gpqa_completions(letter, wrong)]
    return out


if __name__ == "__main__":
    print(json.dumps({"math": math_pairs(), "gpqa": gpqa_pairs()}, indent=1))
