"""The Trainer callbacks every training stage installs: metrics logging and preemption."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from transformers import TrainerCallback


class MetricsJsonlCallback(TrainerCallback):
    """Every log line also goes to <output_dir>/metrics.jsonl, whatever `report_to` says."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                line = {"step": state.global_step, "time": round(time.time(), 2), **logs}
                f.write(json.dumps(line, default=str) + "\n")


class PreemptionCallback(TrainerCallback):
    """On SIGUSR1/SIGTERM (Slurm's warning before a time limit or preemption): save a checkpoint at
    the end of the current step and stop. The stage then exits with PREEMPTED_EXIT_CODE."""

    def __init__(self):
        self.requested = False
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        print(f"[preemption] got signal {signum}: checkpointing at the end of this step", file=sys.stderr,
              flush=True)
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control
