"""What runs inside a job: one task per node (`node-exec`), and the vLLM health wait (r1repro.health).

Preemption path: Slurm signals the batch shell (`--signal=B:USR1@...`); the shell signals its srun,
srun forwards the signal to this process on every node, and this process forwards SIGUSR1 to the
trainer. Launchers in between (accelerate, torchrun) would die on SIGUSR1 (the default action), so
they are started with SIGUSR1 ignored; the trainer installs its own handler, checkpoints and exits.
The trainer's exit code comes back unchanged (the launcher, accelerate or torchrun, runs through
accelerate_exec.py, which drops its traceback); "preempted" is still decided here too: USR1 was
forwarded and the stage did not write DONE.json.

A failed multi-node step: srun's --kill-on-bad-exit stops the other nodes; each node-exec that sees its
trainer fail records the exit, and the batch shell prints one line naming the node that failed first
(`train-failure`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from r1repro.health import NotHealthy, wait_healthy
from r1repro.rundir import DONE_FILE, PREEMPTED_EXIT_CODE
from r1repro.slurm.plan import Plan, accelerate_command, env_setting, train_env, vllm_command

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


def _shown(plan: Plan, machine_rank: int) -> str:
    env = [f"{key}={value}" for key, value in train_env(plan).items()]
    return " ".join(env + accelerate_command(plan, machine_rank))


def run_train(plan: Plan, machine_rank: int) -> int:
    cmd = accelerate_command(plan, machine_rank)
    print(f"[r1repro node-exec] rank {machine_rank} on {_node()}: {_shown(plan, machine_rank)}", flush=True)
    asked: set[int] = set()  # the signals node-exec got (and passed on to the trainer as USR1)
    # Children inherit "ignore SIGUSR1": launchers survive it; the trainer sets its own handler.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    # The launcher (accelerate launch, or torchrun across CPU nodes) through the wrapper that keeps the
    # trainer's exit code and prints no traceback after the stage's own one-line error.
    child = subprocess.Popen([sys.executable, "-m", "r1repro.slurm.accelerate_exec", *cmd],
                             env={**os.environ, **train_env(plan)})

    def forward(signum, _frame):
        print(f"[r1repro node-exec] got signal {signum}: asking the trainer to checkpoint and stop", flush=True)
        asked.add(signum)
        _signal_tree(child.pid, signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            rc = child.wait(timeout=RESEND_EVERY_S)
            break
        except subprocess.TimeoutExpired:
            if asked:
                _signal_tree(child.pid, signal.SIGUSR1)
    # USR1 comes from the batch shell (time limit, preemption): stopped without DONE.json means "requeue me".
    # A TERM alone comes from Slurm ending the step (scancel, or --kill-on-bad-exit after a peer failed): the
    # trainer's own code, so that a failed peer fails the job instead of requeueing it (srun exits with the
    # highest task code, and 99 would win over a peer's 1).
    if rc == PREEMPTED_EXIT_CODE or (signal.SIGUSR1 in asked and not is_done(plan.output_dir)):
        print(f"[r1repro node-exec] stage stopped for preemption (exit {rc}); exiting {PREEMPTED_EXIT_CODE}",
              flush=True)
        return PREEMPTED_EXIT_CODE
    if rc and plan.num_machines > 1:
        record_exit(plan, machine_rank, rc, stopped=bool(asked))
    return rc


# ---------------------------------------------------------------- which node failed first

def _exits_dir(plan: Plan) -> Path | None:
    """Where each node of a multi-node training step records a failed exit (output_dir is on a file system
    every node sees: the checkpoints are resumed from it); one folder per job run."""
    if not plan.output_dir:
        return None
    run = f"{os.environ.get('SLURM_JOB_ID', '0')}.{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return Path(plan.output_dir) / ".node-exits" / run


def record_exit(plan: Plan, machine_rank: int, rc: int, stopped: bool) -> None:
    folder = _exits_dir(plan)
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    record = {"node": _node(), "rank": machine_rank, "rc": rc, "stopped": stopped, "time": time.time()}
    (folder / f"rank{machine_rank}.json").write_text(json.dumps(record))


def _how(rc: int) -> str:
    if rc > 128:
        try:
            return f"killed by signal {rc - 128} ({signal.Signals(rc - 128).name})"
        except ValueError:
            return f"exited with code {rc}"
    return f"exited with code {rc}"


def failure_line(plan: Plan) -> str | None:
    """One line naming the node whose training process failed first, from the nodes' records: a node not
    stopped by Slurm before its trainer ended, one killed by a signal first (a peer that lost it exits 1 a
    moment later), then the earliest."""
    folder = _exits_dir(plan)
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))] if folder else []
    if not records:
        return None
    first = min(records, key=lambda r: (r["stopped"], r["rc"] <= 128, r["time"]))
    # srun's --kill-on-bad-exit then ends the step everywhere else (a node it SIGKILLs records nothing).
    others = [node for node in plan.train_nodes if node != first["node"]]
    tail = f"; the step was then stopped on {', '.join(others)}" if others else ""
    return (f"training failed on {first['node']} (node rank {first['rank']} of {plan.num_machines}): its training "
            f"process {_how(first['rc'])}{tail}")


def report_failure() -> int:
    """The batch shell's last word on a failed multi-node training step (lib.sh)."""
    plan = plan_from_env()
    line = failure_line(plan)
    if line:
        print(f"r1repro: {line}", file=sys.stderr, flush=True)
        shutil.rmtree(_exits_dir(plan), ignore_errors=True)
    return 0


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
        print(f"[r1repro node-exec] rank {rank} on {_node()}: {_shown(plan, rank)}", flush=True)
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
