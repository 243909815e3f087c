"""reasoning-gym tasks as datasets: `gym:<task>` (optionally `gym:<task>?key=value&...`) generates rows
locally from a seed, and the `reasoning_gym` reward (rewards/gym_reward.py) scores with the task's own
verifier.

    dataset: gym:basic_arithmetic?min_terms=2&max_terms=2&max_digits=2

Each row carries a `gym` column (a JSON string: task, config, seed, size, index) from which the
reward rebuilds the exact entry, metadata included, so nothing the verifier needs is lost on the way
through Arrow. Splits get different seeds, so a test split never repeats the training problems.
Needs the optional dependency: pip install 'r1repro[gym]' (reasoning-gym).
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache

PREFIX = "gym:"
COLUMNS = frozenset({"id", "problem", "solution", "task", "gym"})  # what every gym row has


def _scalar(text: str):
    """`3` -> 3, `0.5` -> 0.5, `true` -> True; anything else stays a string (`+`, `-`, `simple`)."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """`gym:countdown?min_numbers=3` -> ("countdown", {"min_numbers": 3}); numbers and booleans are
    converted, comma lists become lists (`operators=+,-`), everything else stays a string."""
    body = spec.removeprefix(PREFIX)
    task, _, query = body.partition("?")
    if not task:
        raise ValueError(f"dataset {spec!r}: expected gym:<task>, e.g. gym:basic_arithmetic")
    config = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"dataset {spec!r}: expected key=value after '?', got {part!r}")
        config[key] = [_scalar(v) for v in value.split(",")] if "," in value else _scalar(value)
    return task, config


def _import():
    try:
        import reasoning_gym  # optional dependency (the `gym` extra)
    except ImportError as e:
        raise ValueError(f"gym datasets need reasoning-gym (pip install 'r1repro[gym]'): {e}") from None
    return reasoning_gym


@lru_cache(maxsize=64)
def _dataset(task: str, config_json: str, seed: int, size: int):
    reasoning_gym = _import()
    config = json.loads(config_json)
    if task not in reasoning_gym.factory.DATASETS:
        known = ", ".join(sorted(reasoning_gym.factory.DATASETS))
        raise ValueError(f"dataset gym:{task}: unknown reasoning-gym task; known tasks: {known}")
    try:
        return reasoning_gym.create_dataset(task, **config, seed=seed, size=size)
    except (TypeError, ValueError, AssertionError) as e:
        raise ValueError(f"dataset gym:{task}: bad task config {config}: {e}") from None


def split_seed(seed: int, split: str) -> int:
    """Train and test rows come from different seeds (same seed, same split: the same rows)."""
    return (seed * 1_000_003 + zlib.crc32(split.encode())) % (2**31)


def gym_rows(spec: str, split: str, n: int, seed: int) -> list[dict]:
    task, config = parse_spec(spec)
    config_json = json.dumps(config, sort_keys=True)
    size, split_s = max(1, n), split_seed(seed, split)
    dataset = _dataset(task, config_json, split_s, size)
    rows = []
    for i in range(size):
        entry = dataset[i]
        ref = {"task": task, "config": config, "seed": split_s, "size": size, "index": i}
        rows.append({"id": f"gym-{task}-{split}-{i}", "problem": entry["question"], "solution": str(entry["answer"]),
                     "task": "reasoning", "gym": json.dumps(ref, sort_keys=True)})  # fmt: skip
    return rows


def entry_of(ref: str | dict) -> tuple[object, dict]:
    """(the dataset, the entry) a row's `gym` column points to."""
    ref = json.loads(ref) if isinstance(ref, str) else ref
    dataset = _dataset(ref["task"], json.dumps(ref.get("config") or {}, sort_keys=True), int(ref["seed"]),
                       int(ref["size"]))
    return dataset, dataset[int(ref["index"])]


def score(ref: str | dict, answer: str | None) -> float:
    """The task's own verifier on one answer (None: no answer, scores 0)."""
    dataset, entry = entry_of(ref)
    return float(dataset.score_answer(answer, entry))


@lru_cache(maxsize=16)
def spec_error(spec: str) -> str | None:
    """What is wrong with a `gym:` spec (missing package, unknown task, bad config), or None."""
    try:
        gym_rows(spec, "train", 1, 0)
    except ValueError as e:
        return str(e)
    return None
