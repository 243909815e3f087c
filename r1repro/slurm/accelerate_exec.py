"""The node's training launcher as the node wrapper runs it: the trainer's own exit code, no traceback of ours.

`accelerate launch` reports a failed trainer by raising `subprocess.CalledProcessError` (one process) or
torch's `ChildFailedError` (several): a 15-line traceback printed after the stage's one-line error, so
the line that matters was no longer the last one in the job log, and every exit code became 1 (its
`--quiet` drops the traceback but still exits 1). torchrun (several CPU nodes, r1repro.slurm.plan)
raises the same `ChildFailedError`, and a peer that never joins its rendezvous ends in a store timeout.
Here the launchers' own parsers and code run unchanged, in this process; only their failure is turned
back into the trainer's exit code, with one line naming the process.

A peer that never joins: torch's static rendezvous waits 600 s for it (static_tcp_rendezvous's default) on
every node that did come. Across nodes this module bounds that wait with R1REPRO_RENDEZVOUS_TIMEOUT seconds
(default RENDEZVOUS_TIMEOUT_S), passed as the rendezvous conf's `timeout` unless the command sets one: the
first node then fails with one line ("... 1/2 clients joined"), the others ("timed out ... trying to
connect") when the first node never comes.

Run as `python -m r1repro.slurm.accelerate_exec accelerate launch ARGS` or `... torchrun ARGS`
(by `launch.run_train`).
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch.distributed.run as torchrun
from accelerate.commands.launch import launch_command, launch_command_parser
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

# Seconds the nodes that came wait for a missing one. Slurm starts all nodes' steps together, so the wait
# covers one node's slow start (imports from a shared file system, seconds to a minute or two), not
# scheduling; half of torch's 600 s, and settable for clusters whose nodes start slower.
RENDEZVOUS_TIMEOUT_S = 300
RENDEZVOUS_TIMEOUT_ENV = "R1REPRO_RENDEZVOUS_TIMEOUT"


class LaunchSettingError(ValueError):
    """A launch setting (environment variable) with a bad value: one line naming it, exit code 2."""


def rendezvous_timeout(env: dict[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    text = env.get(RENDEZVOUS_TIMEOUT_ENV, "").strip()
    if not text:
        return RENDEZVOUS_TIMEOUT_S
    if not text.isdigit() or int(text) < 1:
        raise LaunchSettingError(f"{RENDEZVOUS_TIMEOUT_ENV} must be a whole number of seconds >= 1, got {text!r}")
    return int(text)


def with_rendezvous_timeout(rdzv_conf: str, timeout_s: int) -> str:
    """torch's `key=value,...` rendezvous conf with `timeout` added; a `timeout` the command sets wins."""
    keys = {item.split("=", 1)[0].strip() for item in rdzv_conf.split(",") if item.strip()}
    if "timeout" in keys:
        return rdzv_conf
    return ",".join(filter(None, [rdzv_conf, f"timeout={timeout_s}"]))


def _shell_code(returncode: int) -> int:
    """A child killed by signal N reads -N in Python; shells and Slurm write it 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _say(where: str, what: str) -> None:
    node = os.environ.get("SLURMD_NODENAME") or os.uname().nodename
    print(f"[r1repro node-exec] {node}{where}: {what}", file=sys.stderr, flush=True)


def _child_failed(err: ChildFailedError, where: str = "") -> int:
    rank, failure = err.get_first_failure()
    code = _shell_code(failure.exitcode) or 1
    how = (f"killed by signal {-failure.exitcode} ({failure.signal_name()})" if failure.exitcode < 0
           else f"exited with code {code}")
    _say(where, f"training process rank {rank} {how}")
    return code


def run_torchrun(argv: list[str]) -> int:
    args = torchrun.get_args_parser().parse_args(argv)
    where = f" (node rank {args.node_rank} of {args.nnodes})"
    if args.rdzv_backend == "static":
        args.rdzv_conf = with_rendezvous_timeout(args.rdzv_conf, rendezvous_timeout())
    try:
        torchrun.run(args)
    except ChildFailedError as err:
        return _child_failed(err, where)
    except SignalException as err:
        # Slurm stopping the step (a peer failed: --kill-on-bad-exit; scancel): torchrun has stopped its worker.
        _say(where, f"stopped by signal {err.sigval.name} (the training process with it)")
        return 128 + int(err.sigval)
    except Exception as err:  # noqa: BLE001 - the rendezvous: a peer that never came, an unreachable master
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        _say(where, f"rendezvous at {args.master_addr}:{args.master_port} failed: {type(err).__name__}: {first}")
        return 1
    return 0


def run_accelerate(argv: list[str]) -> int:
    args = launch_command_parser().parse_args(argv)
    # accelerate hands rdzv_conf to torch's launcher (multi_gpu_launcher), the static rendezvous by default.
    if (args.num_machines or 1) > 1 and args.rdzv_backend == "static":
        args.rdzv_conf = with_rendezvous_timeout(args.rdzv_conf, rendezvous_timeout())
    try:
        launch_command(args)
    except subprocess.CalledProcessError as err:
        return _shell_code(err.returncode)
    except ChildFailedError as err:
        return _child_failed(err)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["torchrun"]:
            return run_torchrun(argv[1:])
        if argv[:2] == ["accelerate", "launch"]:
            return run_accelerate(argv[2:])
    except LaunchSettingError as err:
        _say("", str(err))
        return 2
    print(f"r1repro.slurm.accelerate_exec: expected `accelerate launch ...` or `torchrun ...`, got {argv[:2]}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
