"""What runs inside a job: one task per node (`node-exec`), and the vLLM health wait (r1repro.health).

Preemption path: Slurm signals the batch shell (`--signal=B:USR1@...`); the shell signals its srun,
srun forwards the signal to this process on every node, and this process forwards SIGUSR1 to the
trainer. Launchers in between (accelerate, torchrun) would die on SIGUSR1 (the default action), so
they are started with SIGUSR1 ignored; the trainer installs its own handler, checkpoints and exits.
The trainer's exit code comes back unchanged (accelerate's launcher runs through accelerate_exec.py,
which drops accelerate's traceback); "preempted" is still decided here too: a signal was forwarded and
the stage did not write DONE.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from r1repro.health import NotHealthy, wait_healthy
from r1repro.rundir import DONE_FILE, PREEMPTED_EXIT_CODE
from r1repro.slurm.plan import Plan, accelerate_command, env_setting, vllm_command

RESEND_EVERY_S = 10.0  # the trainer may not have installed its handler yet when the first signal lands


def _node() -> str:
    """Slurm's name for this node (several slurmd may share one host)."""
    return os.environ.get("SLURMD_NODENAME") or os.uname().nodename


def plan_from_env() -> Plan:
    text = os.environ.get("R1REPRO_PLAN")
    if not text:
        raise SystemExit("r1repro slurm node-exec: R1REPRO_PLAN is unset (it is set by the sbatch scripts)")
    return Plan(**json.loads(text))


def _descendants(root: int) -> list[int]:
    """PIDs below root, from /proc (works whatever sessions or groups the launchers create)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _signal_tree(root: int, sig: int) -> None:
    for pid in [root, *_descendants(root)]:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def is_done(output_dir: str | None) -> bool:
    """The stage wrote DONE.json (whatever its fingerprint: the job ran this very config)."""
    return bool(output_dir) and (Path(output_dir) / DONE_FILE).is_file()


def run_train(plan: Plan, machine_rank: int) -> int:
    cmd = accelerate_command(plan, machine_rank)
    print(f"[r1repro node-exec] rank {machine_rank} on {_node()}: {' '.join(cmd)}", flush=True)
    preempt = {"at": None}
    # Children inherit "ignore SIGUSR1": launchers survive it; the trainer sets its own handler.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    # The same `accelerate launch` arguments, through the wrapper that keeps the trainer's exit code and
    # prints no traceback after the stage's own one-line error.
    child = subprocess.Popen([sys.executable, "-m", "r1repro.slurm.accelerate_exec", *cmd[2:]])

    def forward(signum, _frame):
        print(f"[r1repro node-exec] got signal {signum}: asking the trainer to checkpoint and stop", flush=True)
        preempt["at"] = time.monotonic()
        _signal_tree(child.pid, signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            rc = child.wait(timeout=RESEND_EVERY_S)
            break
        except subprocess.TimeoutExpired:
            if preempt["at"] is not None:
                _signal_tree(child.pid, signal.SIGUSR1)
    if rc == PREEMPTED_EXIT_CODE or (preempt["at"] is not None and not is_done(plan.output_dir)):
        print(f"[r1repro node-exec] stage stopped for preemption (exit {rc}); exiting {PREEMPTED_EXIT_CODE}",
              flush=True)
        return PREEMPTED_EXIT_CODE
    return rc


def node_exec(role: str) -> int:
    """R1REPRO_DRY_EXEC=1: print each node's command inside a real allocation instead of running it
    (checks ranks and hosts on a cluster before spending GPU hours; the slurm tests use it)."""
    plan = plan_from_env()
    dry = env_setting("DRY_EXEC") == "1"
    if role == "vllm":
        cmd = vllm_command(plan)
        print(f"[r1repro node-exec] vLLM server on {_node()}: {' '.join(cmd)}", flush=True)
        if dry:
            return 0
        os.execvp(cmd[0], cmd)
    if role != "train":
        raise SystemExit(f"r1repro slurm node-exec: unknown role {role!r} (train or vllm)")
    # One task per training node, so the task rank is the machine rank.
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    if dry:
        print(f"[r1repro node-exec] rank {rank} on {_node()}: {' '.join(accelerate_command(plan, rank))}", flush=True)
        return 0
    return run_train(plan, rank)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); check its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_health(url: str, timeout_s: float, pid: int | None = None, every_s: float = 2.0) -> int:
    """Poll url until it answers 200. Returns 0, or 1 with one clear line on stderr."""
    try:
        wait_healthy(url, ("",), timeout_s, every_s, alive=lambda: _alive(pid))
    except NotHealthy as err:
        if err.exited:
            print(f"r1repro: vLLM server process {pid} exited before {url} became healthy (see the job log)",
                  file=sys.stderr)
        else:
            print(f"r1repro: vLLM server not healthy at {url} after {timeout_s:.0f}s", file=sys.stderr)
        return 1
    print(f"[r1repro] vLLM server healthy at {url}", flush=True)
    return 0
