"""`r1repro rewards list` and `r1repro rewards score`: the registry, and a reward run on real samples.

    r1repro rewards score --reward accuracy --input samples.jsonl --output scored.jsonl
    r1repro rewards score --reward rewards/code_tests.py:code_tests --param timeout=2 --input ... --output ...

Each input line has `completion` (a string or a list of chat messages) plus dataset columns; each
output line keeps the input fields, in order, and adds `"reward": float or null`. The output is
written to a temporary file next to it and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from r1repro.jsonl import iter_jsonl, write_jsonl

from . import REWARDS, STATS, resolve_reward


def _first_line(func) -> str:
    doc = (getattr(func, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def cmd_list() -> int:
    width = max(len(name) for name in REWARDS)
    for name in sorted(REWARDS):
        print(f"{name:<{width}}  {_first_line(REWARDS[name])}")
    return 0


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--param {text!r}: expected key=value (value in YAML, e.g. timeout=2 or tasks=[code])")
    return key.strip(), yaml.safe_load(value)


def read_rows(path: str) -> list[dict]:
    rows = []
    for number, row in iter_jsonl(path):
        if not isinstance(row, dict) or "completion" not in row:
            raise ValueError(f"{path}:{number}: expected a JSON object with a 'completion' field")
        if not isinstance(row["completion"], (str, list)):
            raise ValueError(f"{path}:{number}: 'completion' must be a string or a list of chat messages")
        rows.append(row)
    return rows


def score_rows(reward, rows: list[dict], batch_size: int) -> list[float | None]:
    columns = sorted({key for row in rows for key in row if key not in ("completion", "reward")})
    out: list[float | None] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        kwargs = {key: [row.get(key) for row in batch] for key in columns}
        kwargs.setdefault("prompts", [row.get("prompt") for row in batch])
        out += reward([row["completion"] for row in batch], **kwargs)
    return out


def cmd_score(args) -> int:
    spec = {"name" if ":" not in args.reward else "path": args.reward}
    for text in args.param or []:
        key, value = _parse_param(text)
        spec[key] = value
    reward = resolve_reward(spec if len(spec) > 1 else args.reward)
    if not os.path.isfile(args.input):
        raise ValueError(f"--input {args.input}: file not found")
    rows = read_rows(args.input)
    scores = score_rows(reward, rows, args.batch_size)
    write_jsonl(args.output, [{**row, "reward": score} for row, score in zip(rows, scores)])
    valid = [s for s in scores if s is not None]
    stats = STATS.get(reward.__name__, {})
    mean = f"{sum(valid) / len(valid):.4f}" if valid else "n/a"
    print(
        f"{reward.__name__}: {len(rows)} rows, mean {mean} over {len(valid)} scored, {len(rows) - len(valid)} null, "
        f"{stats.get('errors', 0)} errors, {stats.get('timeouts', 0)} timeouts -> {args.output}",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="r1repro rewards",
                                     description="list rewards, or score a JSONL file with one")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the registered rewards")
    score = sub.add_parser("score", help="score each line of a JSONL file")
    score.add_argument("--reward", required=True,
                       help="a registered name, path/to/file.py:function or module:function")
    score.add_argument("--input", required=True, help="JSONL with 'completion' and the dataset columns")
    score.add_argument("--output", required=True, help="JSONL: the input fields plus 'reward'")
    score.add_argument("--param", action="append", metavar="KEY=VALUE", help="a reward parameter (repeatable)")
    score.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    try:
        return cmd_list() if args.command == "list" else cmd_score(args)
    except ValueError as e:
        print(f"r1repro rewards: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
