"""`accelerate launch ARGS` as the node wrapper runs it: the trainer's own exit code, no traceback of ours.

`accelerate launch` reports a failed trainer by raising `subprocess.CalledProcessError` (one process) or
torch's `ChildFailedError` (several): a 15-line traceback printed after the stage's one-line error, so
the line that matters was no longer the last one in the job log, and every exit code became 1 (its
`--quiet` drops the traceback but still exits 1). Here accelerate's own parser and launcher run
unchanged; only their failure is turned back into the trainer's exit code.

Run as `python -m r1repro.slurm.accelerate_exec <accelerate launch arguments>` (by `launch.run_train`).
"""

from __future__ import annotations

import subprocess
import sys

from accelerate.commands.launch import launch_command, launch_command_parser
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError


def _shell_code(returncode: int) -> int:
    """A child killed by signal N reads -N in Python; shells and Slurm write it 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    args = launch_command_parser().parse_args(argv)
    try:
        launch_command(args)
    except subprocess.CalledProcessError as err:
        return _shell_code(err.returncode)
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        code = _shell_code(failure.exitcode) or 1
        print(f"[r1repro node-exec] local rank {rank} exited with code {code}", file=sys.stderr, flush=True)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
