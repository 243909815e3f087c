"""Synthetic tasks for the tiny recipe, generated deterministically from a seed.

- `addition` (task `reasoning`): add two 2-digit numbers (fixed width keeps the digit positions learnable
  for a tiny model). A digit-by-digit trace with carries makes the answer reliable for a tiny model;
  answering directly is much less so.
- `general` (task `general`): say or repeat a 2-digit number ("Repeat 47" -> "47 47"), answered
  directly, without thinking or tags: the tiny world's everyday requests. The base learns them in
  pre-training; used to measure forgetting, as stage 3's non-reasoning data and for stage 4's reward
  model. Graded by `exact_match` with `tags_required: false` (the visible answer, tagged or not).

Every row has the columns the rest of the project expects: `id`, `problem`, `solution`, `task`,
`lang`, plus `response`, the reference completion an SFT stage can use (R1-style think-then-answer for
addition, the direct answer for general).
Train and test are disjoint: a problem's split is a function of the problem itself, not of the seed.
"""

from __future__ import annotations

import random
import zlib

# Why these two, digits and no tags: the tiny base copies digits it has seen in addition problems, and
# only over a short distance; words, letter strings and tagged answers it barely learned. Reversing a
# number ("Reverse 47" -> "74") was learned less well and is left out: it asks for the digit-order skill
# R1-Zero uses to read the sum off the units-first trace (docs/architecture.md, measured facts).
GENERAL_KINDS = ("say", "repeat")
GENERAL_TEST_FRACTION = 0.3

# Words of the addition trace, in English and Korean. The tiny corpus mixes them, as R1-Zero's
# outputs mixed languages; the language-consistency reward (stage 2) is meant to remove the mixing.
TRACE_WORDS = {"en": {"carry": "carry", "so": "so"}, "ko": {"carry": "올림", "so": "따라서"}}


def _split_of(key: str, test_fraction: float = 0.1) -> str:
    return "test" if zlib.crc32(key.encode()) % 1000 < test_fraction * 1000 else "train"


def _trace_word(key: str, rng: random.Random | None, korean_rate: float) -> str:
    lang = "ko" if rng is not None and rng.random() < korean_rate else "en"
    return TRACE_WORDS[lang][key]


def addition_steps(a: int, b: int, rng: random.Random | None = None, korean_rate: float = 0.0) -> str:
    """Digit-by-digit addition from the least significant digit, e.g. for 47+82:
    `7+2=9. 4+8=12 carry 1.` (the answer, 129, is read off the steps)."""

    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x, y = int(da[i]) if i < len(da) else 0, int(db[i]) if i < len(db) else 0
        total = x + y + carry
        step = f"{x}+{y}+{carry}={total}" if carry else f"{x}+{y}={total}"
        carry = total // 10
        steps.append(f"{step} {_trace_word('carry', rng, korean_rate)} 1" if carry else step)
    return ". ".join(steps) + "."


def addition_trace(a: int, b: int, rng: random.Random | None = None, korean_rate: float = 0.0) -> str:
    """The steps as untagged text ending in the answer: `7+2=9. 4+8=12 carry 1. so 129`."""
    steps = addition_steps(a, b, rng, korean_rate)
    return f"{steps} {_trace_word('so', rng, korean_rate)} {a + b}"


def r1_response(trace: str, answer: str) -> str:
    """The completion format R1-Zero rewards: think (the trace, ending `so N`), then answer (leading space
    follows `Assistant:`). Every reasoning format with steps reads the sum off the steps the same way, after
    `so`, so the arithmetic the base learns from its most common (untagged) format carries over to the
    tagged ones; putting the answer in the tags is then a short copy. With the tagged formats ending
    `</think> N` instead, the base added worse inside them than in the untagged trace, and how much worse
    depended on the float path (docs/architecture.md, measured facts)."""
    return f" <think> {trace} </think> <answer> {answer} </answer>"


def addition_rows(split: str, n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(f"addition-{split}-{seed}")
    rows, seen = [], set()
    while len(rows) < n:
        a, b = rng.randrange(10, 100), rng.randrange(10, 100)
        key = f"{a}+{b}"
        if key in seen or _split_of(key) != split:
            continue
        seen.add(key)
        rows.append(
            {
                "id": f"addition-{split}-{len(rows)}",
                "problem": f"{a}+{b}",
                "solution": str(a + b),
                "task": "reasoning",
                "lang": "en",
                "response": r1_response(addition_trace(a, b), str(a + b)),
            }
        )
    return rows


def general_answer(kind: str, number: str) -> str:
    return {"say": number, "repeat": f"{number} {number}"}[kind]


def general_rows(split: str, n: int, seed: int = 0) -> list[dict]:
    """`n` rows cycling through the split's (kind, number) problems: 3-digit numbers, 1,800 in all, 30% of
    them test (~540, enough for evals of 500 distinct held-out problems). 2-digit numbers were left out: as a
    minority beside 3-digit ones the base answered them poorly (docs/architecture.md, measured facts)."""
    problems = [(kind, str(x)) for kind in GENERAL_KINDS for x in range(100, 1000)
                if _split_of(f"{kind}:{x}", GENERAL_TEST_FRACTION) == split]
    random.Random(f"general-{split}-{seed}").shuffle(problems)
    rows = []
    for i in range(n):
        kind, number = problems[i % len(problems)]  # the general set is small: cycle through it
        answer = general_answer(kind, number)
        rows.append(
            {
                "id": f"general-{split}-{i}",
                "problem": f"{kind.capitalize()} {number}",
                "solution": answer,
                "task": "general",
                "lang": "en",
                "response": f" {answer}",
            }
        )
    return rows


TASKS = {"addition": addition_rows, "general": general_rows}


def task_rows(name: str, split: str, n: int, seed: int = 0) -> list[dict]:
    if name not in TASKS:
        raise ValueError(f"unknown tiny task {name!r}: expected one of {sorted(TASKS)}")
    if split not in ("train", "test"):
        raise ValueError(f"tiny task split {split!r}: expected 'train' or 'test'")
    return TASKS[name](split, n, seed)
