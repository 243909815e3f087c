"""Sampling many prompts to JSONL: resumable, shardable, crash-safe.

Each output line is one sample: the input record's columns plus `prompt_id`, `sample_index`, `text`,
`prompt_tokens`, `completion_tokens`, `finish_reason`. Lines are appended one chunk of prompts at a
time and fsynced, so a killed job loses at most the chunk in flight. On restart the file is read
back, the lines of prompts that do not have all n samples (and a torn last line) are dropped by an
atomic rewrite, and only the missing prompts are generated. A lock file keeps two processes from
appending to the same output.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from r1repro.files import atomic_path
from r1repro.generation import SamplingParams


def slurm_shard() -> tuple[int, int]:
    """(shard index, number of shards) from a Slurm job array, (0, 1) outside one."""
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    if task is None:
        return 0, 1
    first = int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0"))
    count = int(os.environ.get("SLURM_ARRAY_TASK_COUNT", "1"))
    return int(task) - first, count


def take_shard(records: list[dict], shard_index: int, num_shards: int) -> list[dict]:
    """Every num_shards-th record from shard_index: shards are disjoint, cover everything, and stay
    balanced when the input is sorted by difficulty or length."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} out of range for {num_shards} shards")
    return records[shard_index::num_shards]


def shard_path(output: str | Path, shard_index: int, num_shards: int) -> Path:
    """out.jsonl -> out.shard-00003-of-00008.jsonl (unchanged for a single shard)."""
    output = Path(output)
    if num_shards == 1:
        return output
    return output.with_name(f"{output.stem}.shard-{shard_index:05d}-of-{num_shards:05d}{output.suffix}")


def read_complete(path: Path, n: int) -> tuple[list[str], set[str]]:
    """The lines of prompts that have all n samples, and those prompts' ids. Torn or foreign lines
    (no prompt_id / sample_index) are dropped."""
    by_prompt: dict[str, dict[int, str]] = defaultdict(dict)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a write cut short by a crash: always the last line
            try:
                record = json.loads(line)
                key, index = str(record["prompt_id"]), int(record["sample_index"])
            except (ValueError, KeyError, TypeError):
                continue
            by_prompt[key][index] = line
    done = {key for key, samples in by_prompt.items() if set(samples) >= set(range(n))}
    lines = [by_prompt[key][i] for key in by_prompt if key in done for i in range(n)]
    return lines, done


def _rewrite(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())


def sample_to_jsonl(engine, records: list[dict], params: SamplingParams, output: str | Path, chunk_size: int = 256,
                    progress: bool = True) -> dict:
    """Generate params.n samples for every record (`id`, `prompt`, other columns kept) into `output`.
    Returns {"prompts": total, "skipped": already done, "generated": newly done, "output": path}."""
    output = Path(output)
    ids = [str(r["id"]) for r in records]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"sampling: prompt id {duplicate!r} appears more than once in the input")
    output.parent.mkdir(parents=True, exist_ok=True)
    lock = open(output.with_name(f".{output.name}.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(f"sampling: another process is writing {output}") from None
    try:
        done: set[str] = set()
        if output.exists():
            lines, done = read_complete(output, params.n)
            if sum(1 for _ in open(output, "rb")) != len(lines):
                _rewrite(output, lines)  # drop partial prompts before appending after them
        todo = [r for r in records if str(r["id"]) not in done]
        bar = tqdm(total=len(records), initial=len(records) - len(todo), unit="prompt", desc=f"sampling {output.name}",
                   disable=not progress)
        with open(output, "a", encoding="utf-8") as f:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                outputs = engine.generate([r["prompt"] for r in chunk], params)
                for record, samples in zip(chunk, outputs):
                    for j, s in enumerate(samples):
                        line = {**record, "prompt_id": record["id"], "sample_index": j, "text": s.text,
                                "prompt_tokens": s.prompt_tokens,
                                "completion_tokens": s.num_tokens, "finish_reason": s.finish_reason}
                        f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
                bar.update(len(chunk))
        bar.close()
        return {"prompts": len(records), "skipped": len(records) - len(todo), "generated": len(todo),
                "output": str(output)}
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
