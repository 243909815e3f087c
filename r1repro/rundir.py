"""The run-directory contract, without heavy imports (the Slurm helpers and `r1repro check` read it).

A run directory (`run_dir`, default DEFAULT_RUN_DIR) holds one stage directory per stage. A stage
directory (`output_dir`) holds, when the stage has finished:
  r1repro_config.json the resolved config (all dataclasses, after YAML + CLI)
  metrics.jsonl       every logged training metric, one JSON object per log step
  eval.json           evaluation of the final model (see r1repro.evaluation)
  model files         save_pretrained layout, loadable by the next stage
  DONE.json           written last and atomically: {"fingerprint", "wall_s", "finished_at"}
Later stages and reruns trust DONE.json only. `checkpoint-*` folders allow an interrupted stage to
resume; they are removed once the stage is done. A stage that checkpointed on a preemption signal
exits with PREEMPTED_EXIT_CODE, which the Slurm scripts requeue.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from r1repro.config import DEFAULT_RUN_DIR as DEFAULT_RUN_DIR  # re-exported: the contract's default
from r1repro.config import ConfigError
from r1repro.files import write_json_atomic

PREEMPTED_EXIT_CODE = 99  # the Slurm scripts requeue a job that exits with this code
DONE_FILE = "DONE.json"
# Not config.json: that name belongs to the saved model (save_pretrained writes it into output_dir).
RESOLVED_CONFIG_FILE = "r1repro_config.json"
# Fields that change where or how a run is observed, not what it computes.
NOT_FINGERPRINTED = {"logging_dir", "report_to", "wandb_project", "accelerate_config", "run_dir", "output_dir",
                     "logging_steps", "disable_tqdm", "eval_backend"}
# Fields added after runs existed: left unset (None), they leave a finished stage's fingerprint as it was.
FINGERPRINTED_WHEN_SET = {"dynamic_sampling"}


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
    """Fingerprints of finished stage directories this config reads (a stage directory, or a file in one
    such as `${run_dir}/rejection_sft/traces.jsonl`), so that a redone upstream stage invalidates everything
    after it."""
    found = {}
    for key, value in sorted(config.items()):
        if key in NOT_FINGERPRINTED or not isinstance(value, str):  # output_dir: a stage is not its own upstream
            continue
        for stage_dir in (Path(value), Path(value).parent):
            if (stage_dir / DONE_FILE).is_file():
                found[key] = json.loads((stage_dir / DONE_FILE).read_text())["fingerprint"]
                break
    return found


def fingerprint(config: dict) -> str:
    stable = {k: v for k, v in config.items()
              if k not in NOT_FINGERPRINTED and not (k in FINGERPRINTED_WHEN_SET and v is None)}
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


# What torchrun / accelerate launch set for a rank (TRL's vLLM colocate mode sets the same in a one-process
# trainer, whose torch.distributed store keeps listening on MASTER_PORT until it exits).
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
              "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT")


def env_without_launch() -> dict:
    """os.environ less the launch variables, for a child that is one process of its own: one that inherited them
    would take itself for a rank of the launch (vLLM reads them) or start a process group on the parent's
    MASTER_PORT (accelerate; EADDRINUSE)."""
    return {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV and not k.startswith("TORCHELASTIC_")}


def is_main_process() -> bool:
    """Rank 0 of a distributed launch (accelerate/torchrun set RANK); the only writer of markers."""
    return int(os.environ.get("RANK", "0")) == 0


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


def finish_stage(output_dir: str | Path, config: dict, started: float, extra: dict | None = None) -> bool:
    """Remove the checkpoints and write DONE.json, on the main process only; True where it wrote."""
    output_dir = Path(output_dir)
    if not is_main_process():
        return False
    for ckpt in output_dir.glob("checkpoint-*"):
        shutil.rmtree(ckpt, ignore_errors=True)
    done = {"fingerprint": fingerprint(config), "wall_s": round(time.time() - started, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "world_size": int(os.environ.get("WORLD_SIZE", "1")), **(extra or {})}
    write_json_atomic(output_dir / DONE_FILE, done)
    return True


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
