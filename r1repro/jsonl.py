"""JSONL files, read with line-numbered errors and written atomically (temp file, then rename), so a
killed run never leaves half a file behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from r1repro.files import atomic_path


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for every non-empty line; ValueError naming `file:line` on bad JSON."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno})") from None


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> list[dict]:
    """Every non-empty line as a dict holding the `required` columns."""
    rows = []
    for number, row in iter_jsonl(path):
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        missing = [c for c in required if c not in row]
        if missing:
            raise ValueError(f"{path}:{number}: missing column '{missing[0]}'")
        rows.append(row)
    return rows


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
