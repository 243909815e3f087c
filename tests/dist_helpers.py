"""What the 2-rank tests (tests/test_dist*.py) share: the torchrun launch, the "finished once" checks, the probe
reward, the handles to kill or stop one rank of a running launch, and the inputs of DPO and on-policy
distillation runs.
The 2-rank cpt base they all start from is the session fixture `dist_base` (tests/conftest.py)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1repro.report import read_metrics
from r1repro.tiny.tasks import addition_rows

REPO = Path(__file__).resolve().parents[1]
# Small and fast: every run is a few steps of the micro model; no end-of-stage eval.
CPT = ["--config", "recipes/tiny/cpt.yaml", "--init_tiny_model", "micro", "--max_steps", "4",
       "--per_device_train_batch_size", "8", "--corpus_num_docs", "128", "--save_steps", "1000",
       "--logging_steps", "1", "--eval_num_problems", "0", "--disable_tqdm", "true"]
GRPO = ["--max_completion_length", "16", "--logging_steps", "1", "--save_steps", "1000",
        "--eval_num_problems", "0", "--disable_tqdm", "true"]
# Records, per rank and per reward call, how many completions of which prompts and tasks the rank scored:
# the per-rank batch as the reward functions see it. Loaded by path like any plug-in reward.
PROBE = '''import json, os

def probe(completions, prompts=None, task=None, **kwargs):
    with open(os.path.join(os.environ["PROBE_DIR"], f"rank{os.environ.get('RANK', '0')}.jsonl"), "a") as f:
        f.write(json.dumps({"n": len(completions), "prompts": sorted(set(map(str, prompts or []))),
                            "task": list(task or [])}) + "\\n")
    return [0.0] * len(completions)
'''


def launch(stage: str, *args: str, nproc: int = 2, env: dict | None = None, popen: bool = False, log=None,
           python: str = sys.executable, accelerate_config: str | None = None, entry=("-m", "r1repro.cli")):
    """`torchrun --standalone` (a free rendezvous port: CI may run other jobs), `accelerate launch` with
    `accelerate_config` (a free port too; no mixed precision: CPU) or, for one rank, the plain command, under
    `python` (another venv's interpreter: .venv-vllm); `entry` is what each rank runs. PYTHONPATH puts this
    checkout first (every rank imports it) and keeps what the caller had (a side folder with deepspeed)."""
    cmd = [python, *entry, stage, *args]
    if accelerate_config:
        cmd = [python, "-m", "accelerate.commands.launch", "--config_file", accelerate_config, "--num_processes",
               str(nproc), "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
               *entry, stage, *args]
    elif nproc > 1:
        cmd = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               *entry, stage, *args]
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    full_env = {**os.environ, "PYTHONPATH": path, "R1REPRO_STAGE_EVAL": "0", **(env or {})}
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True)
    result = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=600)
    result.log = result.stdout + result.stderr
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_finished_once(result, stage: str, out: Path, world_size: int = 2, metrics_from: int = 0) -> list[dict]:
    """The run finished; the main process alone printed the done line and wrote DONE.json and the metrics
    (from line `metrics_from`: a resumed run appends); the saved model loads and generates. Returns them."""
    assert result.returncode == 0, result.log[-3000:]
    assert result.log.count(f"[{stage}] done in") == 1, result.log[-3000:]
    assert json.loads((out / "DONE.json").read_text())["world_size"] == world_size
    metrics = read_metrics(out)[metrics_from:]
    steps = [m["step"] for m in metrics if "train_runtime" not in m]
    assert steps and steps == sorted(set(steps)), f"metrics.jsonl steps written more than once: {steps}"
    assert sum("train_runtime" in m for m in metrics) == 1
    assert not list(out.glob("checkpoint-*")) and not list(out.glob(".*tmp*"))
    model, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    generated = model.generate(**tokenizer("12+34", return_tensors="pt"), max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > 0
    return metrics


def probe_calls(probe_dir: Path) -> dict[int, list[dict]]:
    return {int(p.stem[4:]): [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted(probe_dir.glob("rank*.jsonl"))}


def probe_rewards(tmp_path: Path, *rewards: str) -> tuple[list[str], dict]:
    (tmp_path / "probe.py").write_text(PROBE)
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    spec = "[" + ", ".join([*rewards, f"{{name: {tmp_path / 'probe.py'}:probe, weight: 0.0}}"]) + "]"
    return ["--rewards", spec], {"PROBE_DIR": str(probe_dir)}


def worker_pids(agent: subprocess.Popen) -> dict[int, int]:
    """{rank: pid} of the workers torchrun's agent started (its direct children)."""
    ranks = {}
    for task in Path(f"/proc/{agent.pid}/task").iterdir():
        for pid in map(int, (task / "children").read_text().split()):
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            rank = next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)
            if rank is not None:
                ranks[rank] = pid
    return ranks


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 400) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {what}"
        assert time.time() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.2)


def kill_workers(pids) -> None:
    """torchrun starts each worker in a session of its own: they outlive a killed agent unless killed too."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_rank_after_checkpoint(stage: str, args: list[str], out: Path, log_path: Path, **launch_kwargs) -> float:
    """Start a 2-rank run (`launch_kwargs`: another interpreter, env), SIGKILL rank 1 once a checkpoint is
    complete, wait for the run to end; the seconds from the kill to the end."""
    with open(log_path, "w") as log:
        proc = launch(stage, *args, popen=True, log=log, **launch_kwargs)
        pids = {}
        try:
            wait_for(lambda: list(out.glob("checkpoint-*/trainer_state.json")), proc, "checkpoint")
            pids = worker_pids(proc)
            os.kill(pids[1], signal.SIGKILL)
            killed = time.time()
            proc.wait(timeout=120)
            ended = time.time() - killed
        finally:
            proc.kill()
            kill_workers(pids.values())
    assert proc.returncode != 0 and not (out / "DONE.json").exists(), log_path.read_text()[-3000:]
    return ended


def noisy_teacher(base: Path, tmp_path: Path) -> Path:
    """The cpt base with noise on its weights: a teacher equal to the student gives loss 0 and no gradient."""
    teacher = tmp_path / "teacher"
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.5 * torch.randn_like(param))
    model.save_pretrained(teacher)
    AutoTokenizer.from_pretrained(base).save_pretrained(teacher)
    return teacher


def distill_on_policy_args(dist_base, tmp_path: Path, out: Path) -> list[str]:
    """The tiny recipe from the 2-rank cpt base, with a noisy copy of it as the teacher (tests/test_dist_zero3.py
    runs these too)."""
    return ["--config", "recipes/tiny/distill_on_policy.yaml", "--run_dir", str(dist_base.run_dir), "--output_dir",
            str(out), "--model_name_or_path", str(dist_base.run_dir / "cpt"), "--teacher_model_name_or_path",
            str(noisy_teacher(dist_base.run_dir / "cpt", tmp_path)), "--per_device_train_batch_size", "4",
            "--max_completion_length", "16"]


def dpo_pairs(tmp_path: Path, n: int = 32) -> Path:
    pairs = tmp_path / "dpo_pairs.jsonl"
    pairs.write_text("".join(
        json.dumps({"problem": r["problem"], "chosen": r["response"],
                    "rejected": r["response"].replace(r["solution"], str(int(r["solution"]) + 1))}) + "\n"
        for r in addition_rows("train", n)))
    return pairs
