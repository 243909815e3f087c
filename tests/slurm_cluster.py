"""A throwaway one-node Slurm cluster on this machine, for the `slurm` tests.

Debian's slurm-wlm 22.05 + munge, run as root without systemd (see docs/architecture.md): munged, slurmctld
and slurmd run in the foreground as children of this process, so they are stopped by PID. All
state (munge key and socket, spool, state save, logs, slurm.conf) lives in one temporary
directory; clients find the cluster through SLURM_CONF, so a machine's own /etc/slurm is unused.

Also usable by hand: `python tests/slurm_cluster.py` starts a cluster, prints its SLURM_CONF and
stops it on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")


def _bin(name: str) -> str:
    """Daemons live in /usr/sbin, which is not on every PATH."""
    return shutil.which(name) or str(Path("/usr/sbin", name))


def ensure_installed() -> str | None:
    """Install slurm-wlm and munge from Debian when missing. Returns why it cannot, or None."""
    if all(Path(_bin(d)).exists() for d in DAEMONS):
        return None
    if os.geteuid() != 0:
        return "slurm-wlm/munge missing and not root, cannot apt-get install them"
    if not shutil.which("apt-get"):
        return "slurm-wlm/munge missing and no apt-get"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "slurm-wlm", "munge"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_mb() -> int:
    text = Path("/proc/meminfo").read_text()
    kb = int(re.search(r"MemTotal:\s+(\d+)", text).group(1))
    return kb // 1024


SLURM_CONF = """\
ClusterName=r1test
# A fresh id range per cluster, so job logs (slurm/logs/%x-%j.out) never collide with old ones.
FirstJobId={first_job_id}
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays a requeued job's restart (default 120 s); keep the preemption test short.
AuthInfo=socket={dir}/munge/munge.sock,cred_expire=10
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool/%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd-%n.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd-%n.log
PlugStackConfig={dir}/plugstack.conf
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# Without a default each job would claim all of the node's memory.
DefMemPerCPU={mem_per_cpu}
SchedulerType=sched/backfill
# sched_interval: a requeued job waits for BeginTime, then for the next periodic scheduling pass.
SchedulerParameters=batch_sched_delay=0,sched_interval=2
EnforcePartLimits=ALL
ReturnToService=2
JobRequeue=1
KillWait=10
InactiveLimit=0
# Finished jobs stay visible to `scontrol show job` this long (there is no accounting database).
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
{node_lines}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
    """start() brings the cluster up; stop() cancels jobs and stops the daemons by PID.

    nodes > 1 runs one slurmd per node on this same machine (n1, n2, ...: one port each), which
    is enough to exercise multi-node job steps such as the dedicated vLLM node."""

    def __init__(self, workdir: Path, nodes: int = 1):
        self.dir = Path(workdir)
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.dir / "slurm.conf"
        self.host = socket.gethostname().split(".")[0]
        self.nodes = [self.host] if nodes == 1 else [f"n{i + 1}" for i in range(nodes)]

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients (sbatch, squeue, scontrol) and so for the jobs they submit."""
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def _write_config(self) -> None:
        for sub in ("munge", "state", "log", *(f"spool/{n}" for n in self.nodes)):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        # munged refuses keys, sockets and logs in group/world-writable places.
        os.chmod(self.dir, 0o755)
        for sub in ("munge", "log"):
            os.chmod(self.dir / sub, 0o700)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        (self.dir / "plugstack.conf").write_text("")
        cpus = os.cpu_count() or 1
        mem = max(1024, int(_mem_mb() * 0.8) // len(self.nodes))
        node_lines = "\n".join(
            f"NodeName={n} NodeAddr=127.0.0.1 NodeHostname={self.host} Port={_free_port()} CPUs={cpus} "
            f"RealMemory={mem} State=UNKNOWN"
            for n in self.nodes
        )
        self.conf.write_text(
            SLURM_CONF.format(
                host=self.host,
                dir=self.dir,
                ctld_port=_free_port(),
                slurmd_port=_free_port(),
                node_lines=node_lines,
                mem_per_cpu=mem // cpus,
                first_job_id=random.randrange(10_000, 60_000_000),
            )
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.dir / "log" / f"{name}.stdout", "ab")
        self.procs[name] = subprocess.Popen(
            [_bin(argv[0]), *argv[1:]], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
        )

    def start(self, timeout: float = 30.0) -> None:
        self._write_config()
        m = self.dir / "munge"
        self._spawn(
            "munged",
            ["munged", "-F", "--force", f"--socket={m}/munge.sock", f"--key-file={m}/munge.key",
             f"--pid-file={m}/munged.pid", f"--log-file={self.dir}/log/munged.log",
             f"--seed-file={m}/munged.seed"],
        )
        self._wait(lambda: (m / "munge.sock").exists(), timeout, "munged socket")
        # -c: start from a clean state, -D: stay in the foreground (so we own the PID).
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-f", str(self.conf)])
        for node in self.nodes:
            self._spawn(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", str(self.conf)])
        self._wait(self._nodes_idle, timeout, "nodes to become idle")

    def _nodes_idle(self) -> bool:
        r = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False)
        return r.returncode == 0 and r.stdout.split() == ["idle"] * len(self.nodes)

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited; logs in {self.dir / 'log'}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"waiting for {what} (logs in {self.dir / 'log'})")

    def run(self, argv: list[str], check: bool = True, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        """A client command against this cluster; `env` adds variables (sbatch passes them to the job)."""
        return subprocess.run(argv, capture_output=True, text=True, env={**self.env, **(env or {})}, check=check, **kw)

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (JobState, ExitCode, Restarts, StdOut, ...)."""
        out = self.run(["scontrol", "show", "job", "-o", str(job_id)]).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait_job(self, job_id: str, states: set[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        info: dict[str, str] = {}
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in states:
                return info
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} not in {states} after {timeout}s: {info}")

    def cancel_leftovers(self) -> None:
        """Cancel every job and wait (up to 30 s) for the queue to empty: a failed test must not leave jobs
        that the next test's jobs queue behind."""
        self.run(["scancel", "--user=root"], check=False)
        deadline = time.monotonic() + 30
        while self.run(["squeue", "-h", "-o", "%i"], check=False).stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run(["scancel", "--full", "--user=root"], check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = self.run(["squeue", "-h", "-t", "R,CG,PD", "-o", "%i"], check=False)
                if r.returncode != 0 or not r.stdout.strip():
                    break
                time.sleep(0.5)
        # Reverse start order: slurmd, slurmctld, munged.
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()


def log_of(cluster: LocalSlurm, job_id: str) -> str:
    """A job's output so far ('' before its file exists)."""
    path = Path(cluster.job(job_id)["StdOut"])
    return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_cluster(workdir: Path, nodes: int = 1):
    """A started LocalSlurm, stopped on the way out: the body of every cluster fixture. Skips the test when
    Slurm cannot run on this machine."""
    reason = ensure_installed()
    if reason:
        pytest.skip(reason)
    cluster = LocalSlurm(workdir, nodes=nodes)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    import tempfile

    reason = ensure_installed()
    if reason:
        raise SystemExit(reason)
    cluster = LocalSlurm(Path(tempfile.mkdtemp(prefix="r1slurm-")))
    cluster.start()
    print(f"export SLURM_CONF={cluster.conf}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
