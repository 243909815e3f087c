"""`accuracy` on the answers users actually produce, the gold forms datasets use, and hostile inputs
that must be cut off by the per-sample timeout (real math-verify in real worker processes)."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from r1repro.rewards import STATS, resolve_reward
from r1repro.rewards.accuracy import score_answers
from r1repro.rewards.mathtext import brace_arguments, clean_math_text, is_prose
from r1repro.sandbox import mathpool
from r1repro.sandbox.mathpool import MathPool

accuracy = resolve_reward("accuracy")


def r1(answer: str) -> str:
    return f" <think> working </think> <answer> {answer} </answer>"


CASES = [
    # fractions vs decimals, \dfrac
    (r"\frac{1}{2}", "0.5", 1.0),
    ("0.5", r"\dfrac{1}{2}", 1.0),
    (r"\frac{3}{4}", r"\dfrac{3}{4}", 1.0),
    (r"\frac{1}{3}", "0.333", 0.0),
    ("1/2", r"\frac{1}{2}", 1.0),
    # sqrt forms
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", 1.0),
    (r"2\sqrt{2}", r"\sqrt{8}", 1.0),
    (r"\sqrt{2}", r"\sqrt{3}", 0.0),
    # intervals
    ("(1, 2]", "(1,2]", 1.0),
    ("(1, 2]", "[1, 2]", 0.0),
    (r"(-\infty, 3)", r"(-\infty,3)", 1.0),
    # sets
    (r"\{1, 2\}", r"\{2, 1\}", 1.0),
    (r"\{1, 2\}", r"\{1, 3\}", 0.0),
    # matrices
    (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", 1.0),
    (r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{pmatrix} 1 & 2 \\ 4 & 3 \end{pmatrix}", 0.0),
    # equations
    ("7", "x = 7", 1.0),
    ("7", "x=8", 0.0),
    # thousands separators
    ("1000", "1,000", 1.0),
    ("1234567", "1,234,567", 1.0),
    ("1000", "1 000", 1.0),  # blanks between thousands (TeX ignores them; math-verify read 1·000 = 0)
    ("1234567", "1 234 567", 1.0),
    ("1000", "1 001", 0.0),
    # degrees
    (r"30^\circ", "30", 1.0),
    ("30", r"30^{\circ}", 1.0),
    # scientific notation
    ("1500", "1.5e3", 1.0),
    ("1500", r"1.5 \times 10^3", 1.0),
    ("0.00012", "1.2e-4", 1.0),
    ("1500", "1.6e3", 0.0),
    # wrong signs
    ("-3", "3", 0.0),
    ("3", "-3", 0.0),
    (r"-\frac{1}{2}", r"\frac{-1}{2}", 1.0),
    # tuple order
    ("(1, 2, 3)", "(1,2,3)", 1.0),
    ("(1, 2, 3)", "(3, 2, 1)", 0.0),
    # answers with their own delimiters, percent, pi
    ("12", r"$12$", 1.0),
    ("12", r"\boxed{12}", 1.0),
    ("0.1", r"10\%", 1.0),
    (r"\frac{\pi}{4}", r"\pi/4", 1.0),
    # plain integers (the tiny recipe: fast path)
    ("579", "579", 1.0),
    ("579", "0579", 1.0),
    ("579", "578", 0.0),
    ("579", "", 0.0),
]


def test_answer_forms():
    golds = [g for g, _, _ in CASES]
    completions = [r1(a) for _, a, _ in CASES]
    got = accuracy(completions, solution=golds)
    wrong = [(g, a, e, s) for (g, a, e), s in zip(CASES, got) if s != e]
    assert not wrong, f"(gold, answer, expected, got): {wrong}"


# Answers as real models write them (issue 14): each class next to its neighbours, and a wrong answer of
# the same shape beside every right one, so that a verifier that says yes to everything fails here.
MODEL_ANSWERS = [
    # escaped dollar, in \boxed{} and in <answer>
    ("18", r"\boxed{\$18}", 1.0),
    ("18", r"\$18", 1.0),
    ("18", r"\boxed{\$19}", 0.0),
    ("18", r"\$17", 0.0),
    ("18", r"$\$18$", 1.0),
    ("18", r"\text{\$}18", 1.0),
    ("18", r"\mathrm{\$}18", 1.0),
    ("18", r"\text{\$18}", 1.0),
    ("18", "$18", 1.0),  # a plain-text dollar sign (an unpaired `$`)
    # ... with \, and \! spacing
    ("18", r"\$\,18", 1.0),
    ("18", r"\$\!18", 1.0),
    ("18", r"\$\, 19", 0.0),
    # negative and decimal money
    ("-5", r"-\$5", 1.0),
    ("-5", r"\$-5", 1.0),
    ("-5", r"\$5", 0.0),
    ("18.50", r"\$18.50", 1.0),
    ("18.5", r"\$18.50", 1.0),
    ("18.5", r"\$18.05", 0.0),
    ("0.5", r"\$0.50", 1.0),
    ("-1234.56", r"-\$1,234.56", 1.0),
    ("5", r"\$5.", 1.0),
    # thousands separators (with money, braces, thin spaces)
    ("1200", r"\$1,200", 1.0),
    ("1200", r"\$1{,}200", 1.0),
    ("1234", r"1\,234", 1.0),
    ("1234", "1{,}234", 1.0),
    ("1234.5", "1,234.5", 1.0),
    ("1200", r"\$1,300", 0.0),
    # MATH's `,\!` thousands separator, with the blank its solutions leave after `\!` (issue 23)
    ("32349", r"32,\! 349", 1.0),
    ("32349", r"32,\!349", 1.0),
    ("32349", r"32,\! 394", 0.0),
    ("11111111100", r"11,\! 111,\! 111,\! 100", 1.0),
    ("11111111100", r"11,\! 111,\! 111,\! 000", 0.0),
    ("10000", r"10,\!000", 1.0),
    ("10000", r"10,\! 001", 0.0),
    (r"32,\! 349", "32349", 1.0),
    ("18", r"18\, \text{dollars}", 1.0),
    ("(1, 2)", r"(1,\! 2)", 1.0),  # `\!` in a pair is spacing too: the pair stays a pair
    # percent
    ("25", r"25\%", 1.0),
    (r"25\%", "25", 1.0),
    (r"25\%", "0.25", 1.0),
    ("25", "25%", 1.0),
    ("0.5", "50 percent", 1.0),
    ("25", r"26\%", 0.0),
    # units, bare and in \text{} / \mathrm{}
    ("18", r"18 \text{ dollars}", 1.0),
    ("18", "18 dollars", 1.0),
    ("18", "19 dollars", 0.0),
    ("12", "12 apples", 1.0),
    ("5", r"5\text{ cm}", 1.0),
    ("5", r"5 \mathrm{cm}", 1.0),
    ("10", r"10\ \text{m}", 1.0),
    ("2", "2 pi", 0.0),  # a math word is not a unit
    ("2", r"2\pi", 0.0),
    # \text{} (and \textbf{}) around the answer
    ("18", r"\text{18}", 1.0),
    ("18", r"\textbf{18}", 1.0),
    ("18", r"\text{18 dollars}", 1.0),
    ("18", r"\text{19}", 0.0),
    (r"\text{Monday}", r"\text{Monday}", 1.0),
    (r"\text{Monday}", r"\text{Tuesday}", 0.0),
    # a gold sympy cannot compare (`12:00` is zoo, equal to nothing): matched by its string, as in TRL
    ("$12:00$", "$12:00$", 1.0),
    ("$12:00$", "$1:00$", 0.0),
    # `#### N` endings (GSM8K style) on either side
    ("#### 1,234", "1234", 1.0),
    ("72", "#### 72", 1.0),
    ("72", "#### 27", 0.0),
    # unbraced LaTeX as an answer
    ("0.75", r"\frac34", 1.0),
    ("0.75", r"\dfrac34", 1.0),
    ("0.75", r"\frac43", 0.0),
    ("0.5", r"\tfrac12", 1.0),
    (r"\sqrt{3}", r"\sqrt3", 1.0),
    (r"\sqrt{2}", r"\sqrt 2", 1.0),
    (r"\sqrt{2}", r"\sqrt 3", 0.0),
    (r"\frac{9}{4}\pi", r"\frac94\pi", 1.0),
    (r"\frac{9}{4}\pi", r"\frac49\pi", 0.0),
    (r"\frac{\pi}{4}", r"\frac\pi4", 1.0),
    ("2", r"\sqrt[3]8", 1.0),
    (r"\frac{1}{2}\cdot 3", r"\frac123", 1.0),  # TeX reads one token per argument: \frac{1}{2}3
    # unbraced LaTeX as a gold (was None: unparseable)
    (r"\frac34", "0.75", 1.0),
    (r"\tfrac12", "0.5", 1.0),
    (r"\sqrt3", r"\sqrt{3}", 1.0),
    (r"\sqrt 2", r"\sqrt{2}", 1.0),
    (r"\frac94\pi", r"\frac{9\pi}{4}", 1.0),
    (r"\frac34", "0.7", 0.0),
    (r"The answer is $\boxed{\frac34}$.", r"\frac{3}{4}", 1.0),
    # prose golds: no math in it -> does not apply; a number in it -> that number
    ("Answer is forty two.", "42", None),
    ("forty two", "42", None),
    ("The answer is 42.", "42", 1.0),
    ("The answer is 42.", "41", 0.0),
]


def test_answers_as_models_write_them():
    golds = [g for g, _, _ in MODEL_ANSWERS]
    got = accuracy([r1(a) for _, a, _ in MODEL_ANSWERS], solution=golds)
    wrong = [(g, a, e, s) for (g, a, e), s in zip(MODEL_ANSWERS, got) if s != e]
    assert not wrong, f"(gold, answer, expected, got): {wrong}"


def test_escaped_dollar_in_a_whole_completion():
    """The way models end GSM8K answers, without <answer> tags: the box, else a final `#### N` line."""
    completions = [
        r"She pays 3 \times \$6 = \$18 in total, so the answer is \boxed{\$18}.",
        "So the total is 18 dollars.\n#### 18",
        r"She pays \$18 in total. \boxed{\$\,19}",
    ]
    assert accuracy(completions, solution=["18"] * 3) == [1.0, 1.0, 0.0]


def test_math_thousands_in_a_boxed_completion():
    """Issue 23's regression as MATH-trained models write it: a boxed `32,\\! 349` with the blank."""
    completions = [r"So the count is \boxed{32,\! 349}.", r"Total: \boxed{11,\! 111,\! 111,\! 100}",
                   r"So the count is \boxed{32,\! 348}."]
    assert accuracy(completions, solution=["32349", "11111111100", "32349"]) == [1.0, 1.0, 0.0]
    # the gold as a MATH solution writes it; `32, 349` without `\\!` is a pair, not a number (as math-verify's
    # own suite has it)
    golds = [r"is $\boxed{11,\! 111,\! 111,\! 100}$", r"is $\boxed{32,\! 349}$", r"is $\boxed{32, 349}$"]
    answers = [r"\[ \boxed{11111111100} \]", r"\[ \boxed{32349} \]", r"\[ \boxed{32349} \]"]
    assert accuracy(answers, solution=golds) == [1.0, 1.0, 0.0]


def test_cleaning_helpers():
    assert brace_arguments(r"\frac34") == r"\frac{3}{4}"
    assert brace_arguments(r"\tfrac12 + \dfrac{1}{2}") == r"\frac{1}{2} + \frac{1}{2}"
    assert brace_arguments(r"\frac\pi4") == r"\frac{\pi}{4}"
    assert brace_arguments(r"\frac{\sqrt{2}}{2}") == r"\frac{\sqrt{2}}{2}"  # nested: left alone
    assert brace_arguments(r"\sqrt 2 + \sqrt[3]8 + \sqrt{5}") == r"\sqrt{2} + \sqrt[3]{8} + \sqrt{5}"
    assert clean_math_text(r"\$\,1{,}200") == "1{,}200"
    assert clean_math_text(r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}") == r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"
    assert clean_math_text("$x$") == "$x$"  # paired dollars are delimiters, not money
    for text in ["18", r"\$18", r"\frac34", "18 dollars", r"\text{\$18}", "Answer is forty two."]:
        once = clean_math_text(text)
        assert clean_math_text(once) == once
    assert is_prose("Answer is forty two.") and is_prose("New York")
    assert not any(is_prose(t) for t in ["x = 7", r"\text{New York}", r"\sin x + \cos x", "(1, 2]", "ab + cd",
                                         "Monday"])


@pytest.mark.parametrize(
    "gold, completion, expected",
    [
        # GSM8K gold: the number after ####
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72", r1("72"), 1.0),
        ("so 1,000 + 5 = 1,005\n#### 1,005", r1("1005"), 1.0),
        ("#### 72", r1("27"), 0.0),
        # MATH-style gold: the last \boxed{}
        (r"We get $x = \frac{2}{4}$, so the answer is $\boxed{\frac{1}{2}}$.", r1("0.5"), 1.0),
        # raw LaTeX gold without $
        (r"\frac{1}{2}", r1(r"\frac{2}{4}"), 1.0),
        # numbers as golds (non-string columns)
        (12, r1("12"), 1.0),
        # no <answer>: the last \boxed{} of the completion
        ("42", r"Thinking \boxed{41} ... final \boxed{42}", 1.0),
        ("42", "the answer is 42", 0.0),
        # the last <answer> block wins
        ("6", "<answer>5</answer> wait <answer>6</answer>", 1.0),
        # chat-message completions
        ("7", [{"role": "assistant", "content": r1("7")}], 1.0),
        # unparseable gold: does not apply
        ("", r1("1"), None),
        (None, r1("1"), None),
        (r"\frac{1}{2", r1("1"), None),
    ],
)
def test_gold_forms(gold, completion, expected):
    assert accuracy([completion], solution=[gold]) == [expected]


def test_fast_path_agrees_with_math_verify():
    """Plain integers are compared in-process; math-verify (run here, in the test) must agree."""
    from math_verify import parse, verify

    rng = random.Random(0)
    golds, answers = [], []
    for _ in range(60):
        g = rng.randrange(-2000, 2000)
        a = rng.choice([g, g + 1, -g, g * 10])
        text = rng.choice(["{}", "0{}", "+{}", "{:,}"]).format(a) if a >= 0 else str(a)
        golds.append(str(g))
        answers.append(text)
    fast, _ = score_answers(golds, answers)
    slow = [float(verify(parse(f"${g}$"), parse(f"${a}$"))) for g, a in zip(golds, answers)]
    assert fast == slow


def test_skip_boxed_fallback():
    strict = resolve_reward({"name": "accuracy", "boxed_fallback": False})
    assert strict([r"\boxed{42}"], solution=["42"]) == [0.0]


PATHOLOGICAL = {
    "tower of exponents": "9^{9^{9^{9^{9^{9^9}}}}}",
    "huge factorial": "(10^{10})!",
    "100k-character expression": "+".join(["x"] * 50_000),
    "thousands of nested braces": "{" * 3000 + "1" + "}" * 3000,
    "nested fractions": "\\frac{" * 500 + "1" + "}{2}" * 500,
}


def test_pathological_answers_are_bounded():
    """Each hostile answer scores 0 within its timeout; the ordinary answers in the same batch still score."""
    timeout = 1.0
    reward = resolve_reward({"name": "accuracy", "timeout": timeout, "max_answer_chars": 10**6})
    completions = [r1(a) for a in PATHOLOGICAL.values()] + [r1(r"\frac{1}{2}"), r1("0.25")]
    golds = [r"\frac{1}{2}"] * len(PATHOLOGICAL) + [r"\frac{1}{2}", "0.5"]
    before = STATS["accuracy"]["timeouts"]
    start = time.monotonic()
    scores = reward(completions, solution=golds)
    elapsed = time.monotonic() - start
    assert scores == [0.0] * len(PATHOLOGICAL) + [1.0, 0.0]
    timeouts = STATS["accuracy"]["timeouts"] - before
    assert 1 <= timeouts <= len(PATHOLOGICAL)
    # at most one timeout (+ the kill grace) per worker round; the pool has >= 1 worker
    assert elapsed < len(PATHOLOGICAL) * (timeout + 1.0) + 5


def test_long_answers_capped_without_parsing():
    start = time.monotonic()
    assert accuracy([r1("1+" * 100_000 + "1")], solution=[r"\frac{1}{2}"]) == [0.0]
    assert time.monotonic() - start < 1.0


def test_hung_worker_is_killed_and_replaced():
    """With the worker's own timer off, only the pool's hard kill can stop a runaway parse."""
    pool = MathPool(1, env={"R1REPRO_MATH_SOFT_TIMEOUT": "0"})
    try:
        pool.score([("$1$", "$1$")], 5.0)  # start the worker
        old_pid = pool.workers[0].proc.pid
        start = time.monotonic()
        out = pool.score([("$1/2$", "$9^{9^{9^{9^{9^9}}}}$"), ("$2$", "$2$")], 1.0)
        assert out[0] == (0.0, True, False)
        assert out[1] == (1.0, False, False)  # scored by the replacement worker
        assert pool.restarts == 1 and pool.workers[0].proc.pid != old_pid
        assert time.monotonic() - start < 60  # kill after 2 s + the replacement's start-up
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)  # the hung worker is gone, not orphaned
    finally:
        pool.close()


def test_works_off_the_main_thread():
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("v", accuracy([r1(r"\dfrac{1}{2}")], solution=["0.5"])))
    thread.start()
    thread.join(60)
    assert result["v"] == [1.0]


def test_plain_integer_batches_never_reach_the_math_pool(monkeypatch):
    """The overhead guarantee, checked structurally (a timing bound would fail on a loaded machine):
    integer golds against integer answers are compared in-process; math-verify's pool is not used."""
    rng = random.Random(1)
    golds = [str(rng.randrange(100, 2000)) for _ in range(64)]
    completions = [r1(g if rng.random() < 0.5 else str(int(g) + 1)) for g in golds]
    expected = [1.0 if completion == r1(gold) else 0.0 for completion, gold in zip(completions, golds)]

    def no_pool(self, pairs, *args, **kwargs):
        if pairs:
            raise AssertionError(f"a plain-integer batch sent {len(pairs)} pairs to the math-verify pool")
        return []

    monkeypatch.setattr(mathpool.MathPool, "score", no_pool)
    assert accuracy(completions, solution=golds) == expected
