"""The SmolLM2 recipes' local data (recipes/smollm2-135m/make_data.py): the committed files are what the
script writes, and the arithmetic set of the real R1-Zero run keeps its held-out problems out of training."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from r1repro.jsonl import read_jsonl

DATA = Path(__file__).resolve().parents[1] / "recipes" / "smollm2-135m"
SPEC = importlib.util.spec_from_file_location("make_data", DATA / "make_data.py")
make_data = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_data)
OPS = {"+": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b}


def test_committed_arithmetic_files_are_what_make_data_writes():
    train, test = make_data.arithmetic_rows()
    assert list(read_jsonl(DATA / "data" / "arith_train.jsonl")) == train
    assert list(read_jsonl(DATA / "data" / "arith_test.jsonl")) == test


def test_arithmetic_split_is_disjoint_and_every_answer_is_right():
    train, test = make_data.arithmetic_rows()
    assert len(test) >= 200  # issue 21: >= 200 held-out problems
    assert not {r["problem"] for r in train} & {r["problem"] for r in test}
    for row in train + test:
        a, op, b = re.fullmatch(r"What is (\d+) (\+|minus|times) (\d+)\?", row["problem"]).groups()
        assert row["solution"] == str(OPS[op](int(a), int(b)))
