"""One training run across two Slurm nodes, for real: two slurmd (n1, n2) on this machine, a real sbatch of
slurm/stage0_r1zero.sh, torchrun's static rendezvous (--nnodes 2, each node its --node_rank), gloo between
the two CPU processes. A 2-node GRPO job completes; a SIGKILLed trainer on n2 fails the job within a
bounded time with one line naming n2 and its rank; the same sbatch again resumes from the checkpoint.
`scontrol requeue` of the running 2-node job: Slurm requeues it and the restart resumes on both nodes.

Jobs use the micro model (0.4M parameters), 2 prompts x 4 completions of <= 8 tokens per step.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from r1repro.report import read_metrics

from slurm_cluster import LocalSlurm, log_of, running_cluster

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
# Per rank 4 completions (1 prompt x 4 generations); 2 ranks: 2 prompts per step.
GRPO_ARGS = ["--config", "recipes/tiny/r1zero.yaml", "--per_device_train_batch_size", "4", "--num_generations", "4",
             "--max_completion_length", "8", "--num_train_samples", "64", "--logging_steps", "1",
             "--eval_num_problems", "0", "--disable_tqdm", "true"]
# A SIGKILLed trainer: its torchrun notices at once, srun's --kill-on-bad-exit stops the other node (SIGKILL after
# KillWait, 10 s in tests/slurm_cluster.py), the batch shell reports; the bound is several times what it took
# (docs/architecture.md, measured facts).
KILL_BOUND_S = 30
DDP_TIMEOUT_S = 15


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("slurm2"), nodes=2) as cluster:
        yield cluster


@pytest.fixture
def cluster(two_nodes):
    yield two_nodes
    two_nodes.cancel_leftovers()


def sbatch(cluster: LocalSlurm, tmp_path: Path, *args: str) -> str:
    # One thread per process: both "nodes" share this machine's cores.
    r = cluster.run(["sbatch", "--parsable", "--nodes=2", f"--output={tmp_path}/%x-%j.out", "slurm/stage0_r1zero.sh",
                     *args], cwd=REPO, env={"OMP_NUM_THREADS": "1"})
    return r.stdout.strip().split(";")[0]


def node_lines(log: str) -> dict[str, list[str]]:
    """{node: its launcher command} from node-exec's `rank R on NODE: CMD` lines (the last run's)."""
    out = {}
    for line in log.splitlines():
        if line.startswith("[r1repro node-exec] rank "):
            rank, node = line.split("rank ", 1)[1].split(":")[0].split(" on ")
            out[node] = line.split(": ", 1)[1].split()
            assert out[node][out[node].index("--node_rank") + 1] == rank, line
    return out


def job_processes(job_id: str) -> dict[int, dict[str, str]]:
    """{pid: environment} of the processes running for a Slurm job, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = dict(e.split("=", 1) for e in (entry / "environ").read_text().split("\0") if "=" in e)
        except (OSError, ValueError):
            continue
        if env.get("SLURM_JOB_ID") == job_id:
            found[int(entry.name)] = env
    return found


def trainer_pid(job_id: str, node: str) -> int | None:
    """The training process torchrun started on `node` (it alone has RANK in its environment)."""
    for pid, env in job_processes(job_id).items():
        if env.get("SLURMD_NODENAME") == node and "RANK" in env and "TORCHELASTIC_RUN_ID" in env:
            return pid
    return None


def test_two_cpu_nodes_train_one_grpo_run(cluster, tmp_path, micro_model):
    run_dir = tmp_path / "run"
    job = sbatch(cluster, tmp_path, "--run_dir", str(run_dir), "--model_name_or_path", micro_model,
                 *GRPO_ARGS, "--max_steps", "3")
    info = cluster.wait_job(job, ENDED, 300)
    log = log_of(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-4000:]
    nodes = node_lines(log)
    assert sorted(nodes) == ["n1", "n2"], log[-4000:]
    for rank, node in enumerate(["n1", "n2"]):
        cmd = nodes[node]
        assert cmd[:2] == ["ACCELERATE_USE_CPU=true", "torchrun"], cmd
        assert cmd[cmd.index("--nnodes") + 1] == "2" and cmd[cmd.index("--node_rank") + 1] == str(rank)
        # n1 has no DNS name here: the plan took Slurm's NodeAddr for it.
        assert cmd[cmd.index("--master_addr") + 1] == "127.0.0.1"
    out = run_dir / "r1zero"
    done = json.loads((out / "DONE.json").read_text())
    assert done["world_size"] == 2, done
    assert log.count("[r1zero] done in") == 1, log[-4000:]
    # 2 ranks x 4 completions: the main process logs 8 per step (TRL gathers them), 3 steps once each.
    steps = [m["step"] for m in read_metrics(out) if "reward" in m]
    assert steps == [1, 2, 3], steps


def test_a_killed_node_fails_the_job_and_a_resubmit_resumes(cluster, tmp_path, micro_model):
    run_dir = tmp_path / "run"
    out = run_dir / "r1zero"
    args = ["--run_dir", str(run_dir), "--model_name_or_path", micro_model, *GRPO_ARGS, "--save_steps", "2"]
    job = sbatch(cluster, tmp_path, *args, "--max_steps", "500")
    deadline = time.monotonic() + 300
    while not list(out.glob("checkpoint-*/trainer_state.json")):
        assert cluster.job(job)["JobState"] in {"PENDING", "CONFIGURING", "RUNNING"}, log_of(cluster, job)[-4000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    pid = trainer_pid(job, "n2")
    assert pid, job_processes(job)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    info = cluster.wait_job(job, ENDED, 300)
    ended = time.monotonic() - killed
    log = log_of(cluster, job)
    print(f"job ended {ended:.1f} s after the SIGKILL")
    assert info["JobState"] == "FAILED", log[-4000:]
    assert ended < KILL_BOUND_S, f"the job took {ended:.0f} s to fail after a trainer was killed\n{log[-4000:]}"
    # The last error line: the batch shell's, naming the node (and rank) whose trainer died, then the exit line.
    errors = [line for line in log.splitlines() if line.startswith("r1repro")]
    assert errors[-1] == ("r1repro: training failed on n2 (node rank 1 of 2): its training process killed by "
                          "signal 9 (SIGKILL); the step was then stopped on n1"), log[-4000:]
    # srun exits with its tasks' highest code: 137 (n2) or 143 (n1, stopped by Slurm); never 99, the requeue code.
    assert log.rstrip().rsplit("\n", 1)[-1].split("] ", 1)[1] in {
        f"stage r1zero finished with exit code {code}" for code in (137, 143)}, log[-4000:]
    assert not (out / "DONE.json").exists()
    # Nothing of the job is left running on either node.
    deadline = time.monotonic() + 30
    while job_processes(job):
        assert time.monotonic() < deadline, job_processes(job)
        time.sleep(0.5)

    (checkpoint,) = out.glob("checkpoint-*")
    step = int(checkpoint.name.split("-")[1])
    assert step >= 2
    before = len(read_metrics(out))
    again = sbatch(cluster, tmp_path, *args, "--max_steps", str(step + 2))
    info = cluster.wait_job(again, ENDED, 300)
    log = log_of(cluster, again)
    assert info["JobState"] == "COMPLETED", log[-4000:]
    assert sorted(node_lines(log)) == ["n1", "n2"]
    assert f"resuming from {checkpoint}" in log, log[-4000:]
    assert [m["step"] for m in read_metrics(out)[before:] if "reward" in m] == [step + 1, step + 2]
    assert json.loads((out / "DONE.json").read_text())["world_size"] == 2


def test_a_hung_node_fails_the_job_after_ddp_timeout(cluster, tmp_path, micro_model):
    """SIGSTOP n2's trainer (alive to torchrun and Slurm, silent to its peer): n1's trainer gives up after
    ddp_timeout with one line naming what it waited for, and the job fails instead of hanging until its time limit."""
    run_dir = tmp_path / "run"
    job = sbatch(cluster, tmp_path, "--run_dir", str(run_dir), "--model_name_or_path", micro_model, *GRPO_ARGS,
                 "--max_steps", "500", "--ddp_timeout", str(DDP_TIMEOUT_S))
    metrics = run_dir / "r1zero" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.is_file() and metrics.read_text().strip()):
        assert cluster.job(job)["JobState"] in {"PENDING", "CONFIGURING", "RUNNING"}, log_of(cluster, job)[-4000:]
        assert time.monotonic() < deadline, "no logged step within 300 s"
        time.sleep(0.2)
    pid = trainer_pid(job, "n2")
    assert pid, job_processes(job)
    try:
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        info = cluster.wait_job(job, ENDED, DDP_TIMEOUT_S + 120)
        ended = time.monotonic() - stopped
    finally:
        # Under proctrack/pgid (this test cluster) a stopped worker, in a session of its own, can outlive its step.
        for leftover in job_processes(job):
            os.kill(leftover, signal.SIGKILL)
    log = log_of(cluster, job)
    print(f"job ended {ended:.1f} s after the SIGSTOP (ddp_timeout {DDP_TIMEOUT_S})")
    assert info["JobState"] == "FAILED", log[-4000:]
    assert DDP_TIMEOUT_S <= ended < DDP_TIMEOUT_S + KILL_BOUND_S, f"{ended:.0f} s\n{log[-4000:]}"
    lost = [line for line in log.splitlines() if line.startswith("r1repro r1zero: error: rank 0 of 2: lost a peer")]
    # gloo's words depend on the collective it waited in: "Timed out waiting 15000ms for recv operation",
    # or "Application timeout caused pair closure" in DDP's gradient all-reduce.
    assert len(lost) == 1 and "ddp_timeout bounds the wait" in lost[0] and "timeout" in lost[0].lower(), log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    errors = [line for line in log.splitlines() if line.startswith("r1repro")]
    assert errors[-1] == ("r1repro: training failed on n1 (node rank 0 of 2): its training process exited with "
                          "code 1; the step was then stopped on n2"), log[-4000:]


# Enough steps that `scontrol requeue`, sent once the first checkpoint exists, lands mid-training.
REQUEUE_STEPS = 40


def test_scontrol_requeue_of_a_running_two_node_job_resumes_on_both_nodes(cluster, tmp_path, micro_model):
    """An admin's (or a preemption's) `scontrol requeue` of a running 2-node job: Slurm stops both nodes (TERM:
    the batch shell asks the trainers to checkpoint), requeues the job itself, and the restart resumes from the
    newest checkpoint on both nodes and finishes the run once."""
    run_dir = tmp_path / "run"
    out = run_dir / "r1zero"
    job = sbatch(cluster, tmp_path, "--run_dir", str(run_dir), "--model_name_or_path", micro_model, *GRPO_ARGS,
                 "--save_steps", "2", "--max_steps", str(REQUEUE_STEPS))
    deadline = time.monotonic() + 300
    while not list(out.glob("checkpoint-*/trainer_state.json")):
        assert cluster.job(job)["JobState"] in {"PENDING", "CONFIGURING", "RUNNING"}, log_of(cluster, job)[-4000:]
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    cluster.run(["scontrol", "requeue", job])
    deadline = time.monotonic() + 120
    while int(cluster.job(job).get("Restarts", 0)) < 1:
        assert time.monotonic() < deadline, f"job was not requeued: {log_of(cluster, job)[-3000:]}"
        time.sleep(0.5)
    info = cluster.wait_job(job, ENDED, 600)
    log = log_of(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", log[-4000:]
    assert "got TERM" in log, log[-4000:]
    assert "restart 1: stage r1zero" in log, log[-4000:]
    assert sorted(node_lines(log)) == ["n1", "n2"], log[-4000:]  # the restart ran on both nodes again
    resumed = [line for line in log.splitlines() if line.startswith("resuming from ")]
    # Each node's trainer says it, from the same checkpoint: the one TERM asked for, or an earlier periodic one.
    assert len(resumed) == 2 and len(set(resumed)) == 1, log[-4000:]
    step = int(resumed[0].rsplit("checkpoint-", 1)[1])
    assert 2 <= step < REQUEUE_STEPS, resumed
    # The restart logged the steps after its checkpoint, once each, to the end.
    steps = [m["step"] for m in read_metrics(out) if "reward" in m]
    assert steps[-(REQUEUE_STEPS - step):] == list(range(step + 1, REQUEUE_STEPS + 1)), steps
    done = json.loads((out / "DONE.json").read_text())
    assert done["world_size"] == 2, done
