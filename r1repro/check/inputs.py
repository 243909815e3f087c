"""The input checks of `r1repro check` (r1repro/check/cli.py): files and model paths present, dataset
columns readable where the data is local, rewards resolvable, the prompt template renders, eval
tasks valid. Each check takes (stage, config, fields already reported bad, the stage's inputs) and returns
Findings: one per problem, naming the field, plus notes; r1repro/check/cli.py renders them.

`config` is the stage's resolved config (defaults included) when its recipe loads, else the recipe as
written; the stage's inputs (which datasets it reads with which columns, its rewards as it builds them, the
answer reward that verifies the traces it samples) come from the stage's own `inputs(args)`
(r1repro/trainers/inputs.py), None when the recipe does not load: no stage rule is written here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import try_to_load_from_cache

from r1repro.config import ConfigError
from r1repro.gym import COLUMNS as GYM_COLUMNS
from r1repro.gym import spec_error
from r1repro.rewards import build_rewards, resolve_reward
from r1repro.rundir import DEFAULT_RUN_DIR
from r1repro.templates import render_prompt
from r1repro.tiny.tasks import TASKS, task_rows
from r1repro.trainers.dynamic_sampling import check_metric, parse_spec, reward_names
from r1repro.trainers.inputs import StageInputs

ERROR, NOTE, SUMMARY = "error", "note", "summary"
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".txt", ".yaml", ".yml", ".py")
# Fields that point at a model, a dataset or a file: (field, kind). Checked when the recipe's stage has them.
PATH_FIELDS = [("model_name_or_path", "model"), ("source_model", "model"), ("teacher_model_name_or_path", "model"),
               ("dataset", "dataset"), ("source_dataset", "dataset"), ("general_dataset", "dataset"),
               ("pairs", "file"), ("corpus", "dataset"), ("chat_template_path", "file"), ("deepspeed", "file"),
               ("accelerate_config", "file")]


@dataclass(frozen=True)
class Finding:
    """One line of a check's report and the recipe field it is about (None: the file or the cluster as a
    whole). Errors are the problems (exit 1); notes and summary lines inform."""
    field: str | None
    message: str  # the line as printed after "<file>: error: " (errors), "note: " (notes) or indented (summary)
    kind: str = ERROR


def problem(name: str, text: str) -> Finding:
    """An error about recipe field `name`: the line reads "field 'name': text"."""
    return Finding(name, f"field '{name}': {text}")


def note(name: str | None, text: str) -> Finding:
    return Finding(name, text, NOTE)


def summary(text: str) -> Finding:
    return Finding(None, text, SUMMARY)


def run_dir_of(config: dict) -> str:
    return str(config.get("run_dir") or DEFAULT_RUN_DIR)


def where_is(value: str, run_dir: str) -> str:
    """tiny | produced (an earlier stage writes it) | local | hub | bad."""
    if value.startswith("tiny:") or value == "tiny":
        return "tiny"
    if value.startswith("gym:"):
        return "gym"  # a reasoning-gym task, generated locally (r1repro/gym.py)
    if value == run_dir or value.startswith(run_dir.rstrip("/") + "/"):
        return "produced"
    p = Path(value)
    if value.startswith(("/", "./", "../", "~")) or p.suffix in LOCAL_SUFFIXES or p.exists():
        return "local"
    return "hub" if HUB_ID_RE.match(value) and ".." not in value and "--" not in value else "bad"


def check_paths(stage: str, config: dict, bad: set[str], inputs: StageInputs | None) -> Iterator[Finding]:
    run_dir = run_dir_of(config)
    for name, kind in PATH_FIELDS:
        value = config.get(name)
        if name in bad or not isinstance(value, str) or not value or name not in config:
            continue
        where = where_is(value, run_dir)
        if where == "tiny":
            yield from _check_tiny(name, value)
        elif where == "gym":
            if spec_error(value):
                yield problem(name, spec_error(value))
        elif where == "produced":
            yield note(name, f"{name}: {value} comes from an earlier stage of the run")
        elif where == "local" and not Path(value).expanduser().exists():
            yield problem(name, f"{value} not found")
        elif where == "hub" and kind == "file":
            yield problem(name, f"{value} not found")
        elif where == "bad":
            yield problem(name, f"{value!r} is neither an existing path nor a hub id (owner/name)")
        elif where == "hub":
            yield note(name, f"{name}: {value} is a hub id (not downloaded; checked for syntax only)")
    if inputs is not None:
        yield from _check_columns(config, inputs, bad)


def _check_tiny(name: str, value: str) -> Iterator[Finding]:
    task = value.removeprefix("tiny:")
    if name in ("dataset", "general_dataset") and task not in TASKS:
        yield problem(name, f"unknown tiny task '{task}' (one of {', '.join(TASKS)})")


def _check_columns(config: dict, inputs: StageInputs, bad: set[str]) -> Iterator[Finding]:
    """The columns the stage reads from each dataset it names (StageInputs.columns), where they can be read."""
    run_dir = run_dir_of(config)
    for name, cols in inputs.columns.items():
        if not isinstance(config.get(name), str):
            continue
        value = config[name]
        where = where_is(value, run_dir)
        if name in bad or where in ("produced", "bad"):
            continue
        if where == "hub":
            yield note(name, f"{name}: columns {', '.join(cols)} not verified (hub dataset)")
            continue
        if where == "gym":
            have = GYM_COLUMNS
        else:
            have = _local_columns(value) if where == "local" else _tiny_columns(value)
        if have is None:
            continue
        if name == "source_dataset" and "messages" in have:
            continue  # open-r1-style rows: problem and response come from the messages (r1repro.prompts.trace_row)
        missing = [c.replace("|", " or ") for c in cols if not any(alt in have for alt in c.split("|"))]
        if missing:
            yield problem(name, f"{value} has no column(s) {', '.join(missing)}; it has {', '.join(sorted(have))}")


def _local_columns(path: str) -> set[str] | None:
    p = Path(path)
    if not p.is_file():
        return None
    if p.suffix == ".jsonl":
        with p.open() as f:
            first = next((line for line in f if line.strip()), "{}")
        return set(json.loads(first))
    if p.suffix == ".csv":
        return set(p.open().readline().strip().split(","))
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq  # only for parquet data; pyarrow takes a while to import

        return set(pq.read_schema(p).names)
    if p.suffix == ".json" and p.stat().st_size < 50_000_000:
        data = json.loads(p.read_text())
        return set(data[0]) if isinstance(data, list) and data else None
    return None


def _tiny_columns(spec: str) -> set[str] | None:
    task = spec.removeprefix("tiny:")
    return set(task_rows(task, "train", 1, 0)[0]) if task in TASKS else None


def check_rewards(stage: str, config: dict, bad: set[str], inputs: StageInputs | None) -> Iterator[Finding]:
    run_dir = run_dir_of(config)
    if inputs is not None and inputs.rewards is not None and "rewards" not in bad:
        try:
            funcs, _ = build_rewards(inputs.rewards)
        except (ValueError, TypeError) as err:
            # a parameter naming an earlier stage's output (a reward model it trains) cannot exist yet
            if run_dir not in str(err):
                yield problem("rewards", str(err))
        else:
            weights = config.get("reward_weights")
            if isinstance(weights, list) and len(weights) != len(funcs):
                yield problem("reward_weights", f"{len(weights)} weights for {len(funcs)} rewards")
    if inputs is not None and inputs.answer_reward is not None and "answer_reward" not in bad:
        try:
            resolve_reward(inputs.answer_reward)
        except (ValueError, TypeError) as err:
            yield problem("answer_reward", str(err))


def check_template(stage: str, config: dict, bad: set[str], inputs: StageInputs | None) -> Iterator[Finding]:
    if bad & {"prompt_template", "system_prompt"} or "prompt_template" not in config:
        return
    try:
        rendered = render_prompt(config["prompt_template"], "What is 2 + 3?",
                                 system_prompt=config.get("system_prompt"))
    except (ValueError, OSError) as err:
        yield problem("prompt_template", str(err).removeprefix("prompt_template: "))
        return
    if isinstance(rendered, str) and "What is 2 + 3" not in rendered:
        yield problem("prompt_template", f"{config['prompt_template']} does not show the problem")
    if not isinstance(rendered, str):
        # The stage says which models render prompts (the one traces are sampled from, when it samples);
        # a recipe that does not load is checked for its trained model alone.
        yield from _check_chat_template(config, (inputs or StageInputs()).template_models)


def _check_chat_template(config: dict, names: list[str]) -> Iterator[Finding]:
    """prompt_template: chat needs a chat template in every model whose tokenizer renders prompts (`names`:
    the trained model, the one traces are sampled from). Read from the model's files, never downloaded: a
    local directory, or a hub model already in the local HF cache; otherwise a note says it was not verified."""
    run_dir = run_dir_of(config)
    for name in names:
        value = config.get(name)
        if not isinstance(value, str) or not value:
            continue
        where = where_is(value, run_dir)
        if where == "local" and Path(value).expanduser().is_dir():
            found = _has_chat_template(lambda f: Path(value).expanduser() / f)
        elif where == "hub":
            found = _has_chat_template(lambda f: _hub_cached(value, f))
            if found is None:
                yield note(name, f"{name}: chat template of {value} not verified (hub model not in the local cache)")
                continue
        else:
            continue  # produced by an earlier stage (which saves its tokenizer) or reported elsewhere
        if not found:
            yield problem("prompt_template", f"chat needs a chat template, but {name} {value} has none "
                          "(use a plain template such as r1zero, or a model with a chat template)")


def _hub_cached(repo: str, filename: str) -> Path | None:
    found = try_to_load_from_cache(repo, filename)
    return Path(found) if isinstance(found, str) else None


def _has_chat_template(locate) -> bool | None:
    """True / False from the tokenizer files, None when they are not available locally."""
    jinja, config = locate("chat_template.jinja"), locate("tokenizer_config.json")
    if jinja is not None and jinja.is_file():
        return True
    if config is None or not config.is_file():
        return None
    try:
        return bool(json.loads(config.read_text()).get("chat_template"))
    except (OSError, json.JSONDecodeError):
        return None


def check_eval_tasks(stage: str, config: dict, bad: set[str], inputs: StageInputs | None) -> Iterator[Finding]:
    tasks = config.get("eval_tasks") or []
    if "eval_tasks" in bad or not config.get("eval_num_problems", 1) or not isinstance(tasks, list):
        return
    run_dir = run_dir_of(config)
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not task.get("name") or not task.get("dataset"):
            yield problem("eval_tasks", f"eval_tasks[{i}] must be a mapping with name and dataset")
            continue
        where = where_is(str(task["dataset"]), run_dir)
        if where == "tiny":
            yield from _check_tiny("dataset", str(task["dataset"]))
        elif where == "local" and not Path(task["dataset"]).exists() or where == "bad":
            yield problem("eval_tasks", f"eval_tasks[{i}].dataset {task['dataset']!r} is neither an existing file "
                          "nor a hub id")
        try:
            resolve_reward(task.get("answer_reward", "accuracy"))
        except (ValueError, TypeError) as err:
            yield problem("eval_tasks", f"eval_tasks[{i}].answer_reward: {err}")


def check_dynamic_sampling(stage: str, config: dict, bad: set[str], inputs):
    """dynamic_sampling's metric names a reward of the stage (the field's own shape is checked by the parse).
    `inputs`: the stage's StageInputs (r1repro/trainers/inputs.py), None when the recipe does not load."""
    if inputs is None or inputs.rewards is None or "dynamic_sampling" in bad or "rewards" in bad:
        return
    try:
        check_metric(parse_spec(config.get("dynamic_sampling")), reward_names(inputs.rewards))
    except ConfigError as err:
        yield problem("dynamic_sampling", str(err).removeprefix("field 'dynamic_sampling': "))


# check_lengths (r1repro/check/lengths.py) runs after these: it reads the data these checks vouch for.
INPUT_CHECKS = (check_paths, check_rewards, check_template, check_eval_tasks)
