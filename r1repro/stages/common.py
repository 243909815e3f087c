"""What every stage shares: the stage directory contract, tracking, preemption and resume.

A stage directory (`output_dir`) holds, when the stage has finished:
  r1repro_config.json the resolved config (all dataclasses, after YAML + CLI)
  metrics.jsonl       every logged training metric, one JSON object per log step
  eval.json           evaluation of the final model (see r1repro.evaluation)
  model files         save_pretrained layout, loadable by the next stage
  DONE.json           written last and atomically: {"fingerprint", "wall_s", "finished_at"}
Later stages and reruns trust DONE.json only. `checkpoint-*` folders allow an interrupted stage to
resume; they are removed once the stage is done.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

from r1repro.config import ConfigError

PREEMPTED_EXIT_CODE = 99  # the Slurm scripts requeue a job that exits with this code
DONE_FILE = "DONE.json"
# Not config.json: that name belongs to the saved model (save_pretrained writes it into output_dir).
RESOLVED_CONFIG_FILE = "r1repro_config.json"
# Fields that change where or how a run is observed, not what it computes.
NOT_FINGERPRINTED = {"logging_dir", "report_to", "wandb_project", "accelerate_config", "run_dir", "output_dir",
                     "logging_steps", "disable_tqdm", "eval_backend"}


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def resolved_config(*instances) -> dict:
    merged = {}
    for inst in instances:
        merged.update(_jsonable(inst))
    merged.pop("_n_gpu", None)
    return merged


def upstream_fingerprints(config: dict) -> dict:
    """Fingerprints of finished stage directories this config reads, so that a redone upstream
    stage invalidates everything after it."""
    found = {}
    for key, value in sorted(config.items()):
        if key in NOT_FINGERPRINTED:  # output_dir above all: a stage is not its own upstream
            continue
        if isinstance(value, str) and (Path(value) / DONE_FILE).is_file():
            found[key] = json.loads((Path(value) / DONE_FILE).read_text())["fingerprint"]
    return found


def fingerprint(config: dict) -> str:
    stable = {k: v for k, v in config.items() if k not in NOT_FINGERPRINTED}
    stable["_upstream"] = upstream_fingerprints(config)
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_done(output_dir: str | Path) -> dict | None:
    path = Path(output_dir) / DONE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_done(output_dir: str | Path, config: dict) -> bool:
    done = read_done(output_dir)
    return bool(done) and done.get("fingerprint") == fingerprint(config)


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (accelerate/torchrun set RANK); the only writer of markers."""
    return int(os.environ.get("RANK", "0")) == 0


def write_json_atomic(path: str | Path, data) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def start_stage(stage: str, output_dir: str | Path, config: dict) -> bool:
    """Prepare output_dir. Returns False when the stage already finished with this exact config
    (the caller then exits without work). A finished stage whose config changed is redone."""
    output_dir = Path(output_dir)
    if is_done(output_dir, config):
        print(f"[{stage}] already done with this config: {output_dir} (delete {DONE_FILE} to redo)")
        return False
    if read_done(output_dir) and is_main_process():
        print(f"[{stage}] config or inputs changed since the last run: redoing {output_dir}")
        (output_dir / DONE_FILE).unlink()
        for ckpt in output_dir.glob("checkpoint-*"):  # checkpoints of another config must not be resumed
            shutil.rmtree(ckpt, ignore_errors=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        write_json_atomic(output_dir / RESOLVED_CONFIG_FILE, config)
    return True


def finish_stage(output_dir: str | Path, config: dict, started: float, extra: dict | None = None) -> None:
    output_dir = Path(output_dir)
    if not is_main_process():
        return
    for ckpt in output_dir.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)
    done = {"fingerprint": fingerprint(config), "wall_s": round(time.time() - started, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    write_json_atomic(output_dir / DONE_FILE, done)


def last_checkpoint(output_dir: str | Path) -> str | None:
    ckpts = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    complete = [p for p in ckpts if (p / "trainer_state.json").is_file()]  # a half-written one has none
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def require_stage_output(path: str, field_name: str) -> None:
    """Fail early and clearly when an input that an earlier stage should have produced is missing."""
    p = Path(path)
    looks_local = path.startswith((".", "/", "runs")) or p.exists()
    if looks_local and not p.exists():
        raise ConfigError(f"{field_name}: {path} does not exist (run the stage that produces it first)")
    if p.is_dir() and not (p / DONE_FILE).exists() and not (p / "config.json").exists():
        raise ConfigError(f"{field_name}: {path} is not a finished stage or model directory")


class MetricsJsonlCallback(TrainerCallback):
    """Every log line also goes to <output_dir>/metrics.jsonl, whatever `report_to` says."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, "time": round(time.time(), 2), **logs}, default=str) + "\n")


class PreemptionCallback(TrainerCallback):
    """On SIGUSR1/SIGTERM (Slurm's warning before a time limit or preemption): save a checkpoint at
    the end of the current step and stop. The stage then exits with PREEMPTED_EXIT_CODE."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        print(f"[preemption] got signal {signum}: checkpointing at the end of this step", file=sys.stderr, flush=True)
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control


def setup_tracking(training_args, run_args, stage: str) -> None:
    """wandb when the recipe asks for it; offline (no network needed) when no API key is set."""
    report_to = training_args.report_to or []
    if "wandb" in report_to:
        os.environ.setdefault("WANDB_PROJECT", run_args.wandb_project or "r1repro")
        os.environ.setdefault("WANDB_DIR", str(Path(run_args.run_dir)))
        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        training_args.run_name = training_args.run_name or f"{Path(run_args.run_dir).name}-{stage}"


def train_with_resume(trainer, output_dir: str | Path, preemption: PreemptionCallback) -> None:
    """Train, resuming from the last complete checkpoint; exit PREEMPTED_EXIT_CODE if preempted."""
    resume = last_checkpoint(output_dir)
    if resume:
        print(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    if preemption.requested:
        print(f"preempted: checkpoint saved in {output_dir}; rerun the same command to resume", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)


def run_stage_main(stage: str, dataclass_types, run, argv) -> int:
    """The shared `main` of a stage module: parse, skip if done, run, mark done.

    `run(instances, config)` trains and saves the model into output_dir and returns extra fields
    for DONE.json."""
    from r1repro.config import parse_config

    try:
        instances, _ = parse_config(dataclass_types, argv)
    except ConfigError as err:
        print(f"r1repro {stage}: error: {err}", file=sys.stderr)
        return 2
    from r1repro.config import EvalArgs
    from r1repro.stages.evaluate import eval_here, run_eval_child

    config = resolved_config(*instances)
    output_dir = config["output_dir"]
    eval_args = next((i for i in instances if isinstance(i, EvalArgs)), None)
    if start_stage(stage, output_dir, config):
        started = time.time()
        try:
            extra = run(instances, config) or {}
        except ConfigError as err:
            print(f"r1repro {stage}: error: {err}", file=sys.stderr)
            return 2
        finish_stage(output_dir, config, started, extra)
        print(f"[{stage}] done in {time.time() - started:.0f}s -> {output_dir}", flush=True)
    # The eval runs after training, in its own process (r1repro/stages/evaluate.py); a failure there is
    # reported but leaves the finished stage (DONE.json, exit 0) alone.
    if eval_args is not None and is_main_process() and eval_here(eval_args, output_dir):
        run_eval_child(stage, list(argv or []))
    return 0
