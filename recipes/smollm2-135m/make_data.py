"""GSM8K-shaped word problems for the SmolLM2 recipes, generated locally (no downloads).

Rows look like GSM8K's: `question` (renamed to `problem` by the recipes' problem_column), `answer` with
worked steps and the final `#### N` (read by the accuracy reward). distill_messages.jsonl holds the
same problems as open-r1 distillation rows: `messages` with a user turn and an assistant turn
`<think> steps </think> <answer> N </answer>`. arith_train.jsonl / arith_test.jsonl hold small sums,
differences and products for the real R1-Zero run (r1zero_arith.yaml). Deterministic; the committed files
come from

    python recipes/smollm2-135m/make_data.py
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

NAMES = ["Natalia", "Weng", "Betty", "James", "Mark", "Julie", "Tina", "Albert", "Ken", "Alexis"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "books", "cookies", "cards", "shells"]


def problem(rng: random.Random) -> tuple[str, list[str], int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    kind = rng.randrange(4)
    if kind == 0:
        a, b = rng.randint(5, 60), rng.randint(5, 60)
        return (f"{name} has {a} {item}. {name} buys {b} more {item}. How many {item} does {name} have now?",
                [f"{name} has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} {item} now."], a + b)
    if kind == 1:
        a = 2 * rng.randint(5, 40)
        return (f"{name} sold {a} {item} in April, and then sold half as many {item} in May. "
                f"How many {item} did {name} sell altogether in April and May?",
                [f"{name} sold {a}/2 = <<{a}/2={a // 2}>>{a // 2} {item} in May.",
                 f"{name} sold {a} + {a // 2} = <<{a}+{a // 2}={a + a // 2}>>{a + a // 2} {item} altogether."],
                a + a // 2)
    if kind == 2:
        a, b = rng.randint(2, 12), rng.randint(2, 9)
        return (f"A box holds {a} {item}. How many {item} are in {b} boxes?",
                [f"{b} boxes hold {b} * {a} = <<{b}*{a}={a * b}>>{a * b} {item}."], a * b)
    a, b = rng.randint(30, 99), rng.randint(1, 29)
    return (f"{name} had ${a} and spent ${b} on {item}. How many dollars does {name} have left?",
            [f"{name} has {a} - {b} = <<{a}-{b}={a - b}>>{a - b} dollars left."], a - b)


def rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        question, steps, answer = problem(rng)
        out.append({"id": f"gsm8k-shaped-{seed}-{i}", "question": question,
                    "answer": "\n".join(steps) + f"\n#### {answer}"})
    return out


# Small arithmetic for the real R1-Zero run (recipes/smollm2-135m/r1zero_arith.yaml): every sum, difference
# and product in these ranges, once each, split into disjoint train and held-out sets. SmolLM2-135M solves
# some of them (greedy ~0.4 on single-digit sums with the r1zero_1shot template), so GRPO's groups differ.
ARITH_TEST = 210  # >= 200 held-out problems (issue 21): an interval of about +-0.09 on a difference


def arithmetic_rows() -> tuple[list[dict], list[dict]]:
    problems = [(f"What is {a} + {b}?", a + b) for a in range(13) for b in range(13)]
    problems += [(f"What is {a} minus {b}?", a - b) for b in range(10) for a in range(b, 19)]
    problems += [(f"What is {a} times {b}?", a * b) for a in range(1, 11) for b in range(1, 11)]
    random.Random(0).shuffle(problems)
    rows = [{"id": f"arith-{i}", "problem": q, "solution": str(n)} for i, (q, n) in enumerate(problems)]
    return rows[ARITH_TEST:], rows[:ARITH_TEST]


def messages_row(row: dict) -> dict:
    steps, final = row["answer"].rsplit("####", 1)
    thinking = re.sub(r"<<[^>]*>>", "", steps).strip()
    return {"messages": [{"role": "user", "content": row["question"]},
                         {"role": "assistant",
                          "content": f"<think>\n{thinking}\n</think>\n<answer> {final.strip()} </answer>"}]}


def write(path: Path, data: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in data))


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "train.jsonl", rows(200, seed=1))
    write(out / "test.jsonl", rows(50, seed=2))
    arith_train, arith_test = arithmetic_rows()
    write(out / "arith_train.jsonl", arith_train)
    write(out / "arith_test.jsonl", arith_test)
    write(out / "distill_messages.jsonl", [messages_row(r) for r in rows(64, seed=3)])
    # General (non-reasoning) rows for rejection_sft / all_scenario_rl: a question and a short answer.
    general = [{"id": f"general-{i}", "problem": f"Repeat the word {w}.", "solution": w,
                "response": f" <think> </think> <answer> {w} </answer>"}
               for i, w in enumerate(["apple", "river", "cloud", "stone", "maple", "tiger", "piano", "lemon"] * 4)]
    write(out / "general.jsonl", general)
    # Reward-model preferences for all_scenario_rl: each general answer beats the same answer naming
    # another word (a known right vs a known wrong answer; a real run uses human scores, e.g. HelpSteer2).
    words = sorted({row["solution"] for row in general})
    pairs = [{"problem": row["problem"], "chosen": row["response"],
              "rejected": row["response"].replace(row["solution"],
                                                  words[(words.index(row["solution"]) + 1) % len(words)])}
             for row in general]
    write(out / "rm_pairs.jsonl", pairs)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "data"))
