"""Datasets as lists of rows with the project's columns (`id`, `problem`, `solution`, `task`, ...).

A dataset spec is one string:
- `tiny:<task>`: generated locally and deterministically (r1repro.tiny.tasks);
- `gym:<task>[?key=value&...]`: a reasoning-gym task generated locally from the seed (r1repro.gym);
- a `.jsonl` / `.json` / `.parquet` file (or a directory the `datasets` library can read);
- anything else: a HF dataset id, loaded with `datasets.load_dataset` (cluster runs only).
"""

from __future__ import annotations

from pathlib import Path

from r1repro.gym import gym_rows
from r1repro.tiny.tasks import task_rows

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def load_rows(
    spec: str,
    split: str,
    n: int | None = None,
    seed: int = 0,
    *,
    config: str | None = None,
    problem_column: str = "problem",
    solution_column: str = "solution",
    required: tuple[str, ...] = ("problem",),
) -> list[dict]:
    """Rows of one split, with `problem_column`/`solution_column` renamed to `problem`/`solution`."""
    if spec.startswith("tiny:"):
        return task_rows(spec.removeprefix("tiny:"), split, n or 1000, seed)
    if spec.startswith("gym:"):
        return gym_rows(spec, split, n or 1000, seed)

    import datasets  # lazy: pyarrow and pandas cost seconds; tiny: and gym: rows and `r1repro check` skip them

    path = Path(spec)
    if path.suffix in LOCAL_SUFFIXES or path.exists():
        if not path.exists():
            raise ValueError(f"dataset: file {spec} not found")
        if path.is_dir():
            ds = datasets.load_dataset(str(path), config, split=split)
        else:
            builder = {".jsonl": "json", ".json": "json"}.get(path.suffix, path.suffix.lstrip("."))
            ds = datasets.load_dataset(builder, data_files={split: str(path)}, split=split)
    else:
        ds = datasets.load_dataset(spec, config, split=split)
    renames = {problem_column: "problem", solution_column: "solution"}
    for old, new in renames.items():
        if old != new and old in ds.column_names:
            ds = ds.rename_column(old, new)
    for column in required:
        if column not in ds.column_names:
            raise ValueError(f"dataset {spec} ({split}): missing column '{column}'; columns are {ds.column_names}")
    if n is not None:
        ds = ds.select(range(min(n, len(ds))))
    rows = ds.to_list()
    for i, row in enumerate(rows):
        row.setdefault("id", f"{path.stem if path.suffix else spec}-{split}-{i}")
    return rows


def dataset_rows(data_args, n: int | None, seed: int, **kwargs) -> list[dict]:
    """The training split of the recipe's `dataset`, read with the recipe's dataset_config and column
    names (DataArgs); `required` and other load_rows options pass through."""
    return load_rows(data_args.dataset, data_args.train_split, n, seed, config=data_args.dataset_config,
                     problem_column=data_args.problem_column, solution_column=data_args.solution_column, **kwargs)


def prompt_dataset(rows: list[dict], builder):
    """A `datasets.Dataset` with a `prompt` column built from `problem` by the recipe's PromptBuilder
    (TRL's prompt-only format: a string, or messages for chat templates); every other column is kept so
    rewards receive it as a keyword argument."""
    import datasets  # lazy, as in load_rows

    rendered = [{**row, "prompt": builder.train_prompt(row["problem"])} for row in rows]
    return datasets.Dataset.from_list(rendered)
