"""The Slurm scripts under a real Slurm: a one-node slurm-wlm cluster on this machine (see
tests/slurm_cluster.py), real sbatch, real r1repro stages on the tiny recipes, trained on CPU.

Jobs are kept tiny (a few GRPO steps of 4 completions x 8 tokens) because the machine has 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from r1repro.report import read_metrics

from slurm_cluster import LocalSlurm, log_of, running_cluster

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
# Valid for every stage: train 2 steps, skip the post-training eval.
COMMON_ARGS = ["--max_steps", "2", "--eval_num_problems", "0"]
# GRPO: 1 prompt x 4 generations of at most 8 tokens per step.
GRPO_ARGS = ["--per_device_train_batch_size", "4", "--num_generations", "4", "--max_completion_length", "8",
             "--num_train_samples", "16", "--logging_steps", "1"]
SHRINK = {
    "cpt": ["--corpus_num_docs", "64", "--per_device_train_batch_size", "8"],
    "r1zero": GRPO_ARGS,
    "reasoning_rl": GRPO_ARGS,
    "all_scenario_rl": GRPO_ARGS,
}


@pytest.fixture(scope="module")
def one_node(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture
def cluster(one_node):
    yield one_node
    one_node.cancel_leftovers()


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    from r1repro.tiny.model import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("base") / "model"))


def sbatch(cluster: LocalSlurm, *args: str) -> str:
    # From the repository root, as users do: the scripts find slurm/lib.sh through the submit dir.
    r = cluster.run(["sbatch", "--parsable", *args], cwd=REPO)
    return r.stdout.strip().split(";")[0]


def wait_ended(cluster: LocalSlurm, job_id: str, timeout: float) -> dict:
    info = cluster.wait_job(job_id, ENDED, timeout)
    return info


def test_hostlist_matches_scontrol(cluster):
    from r1repro.slurm.hostlist import expand

    expr = "gpu[01-03,07],x[8-10],rack[1-2]-n[1-2],z"
    out = cluster.run(["scontrol", "show", "hostnames", expr]).stdout.split()
    assert expand(expr) == out


def test_failed_stage_cancels_its_dependents(cluster, tmp_path):
    # A real stage failure: r1zero pointed at a model that does not exist.
    pipeline = {"run_dir": str(tmp_path / "run"), "stages": [
        {"name": "r1zero", "recipe": "recipes/tiny/r1zero.yaml",
         "args": ["--model_name_or_path", str(tmp_path / "no-such-model")]},
        {"name": "reasoning_rl", "recipe": "recipes/tiny/r1zero.yaml"},
        {"name": "distill", "recipe": "recipes/tiny/r1zero.yaml"},
    ]}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    r = subprocess.run(["r1repro", "slurm", "submit-pipeline", "--config", str(path), "--log-dir", str(tmp_path)],
                       cwd=REPO, env=cluster.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names, jobs = zip(*(line.split("\t") for line in r.stdout.splitlines()))
    assert names == ("r1zero", "reasoning_rl", "distill", "report")
    first = wait_ended(cluster, jobs[0], 180)
    assert first["JobState"] == "FAILED", log_of(cluster, jobs[0])
    for job in jobs[1:]:
        info = wait_ended(cluster, job, 60)
        assert info["JobState"] == "CANCELLED" and info["Reason"] == "DependencyNeverSatisfied", info
    pending = cluster.run(["squeue", "-h", "-o", "%i"]).stdout.split()
    assert not set(jobs) & set(pending)


def test_bad_recipe_fails_the_job_with_one_line(cluster, tmp_path):
    """Batch arithmetic is checked before anything is launched: 4 completions per step cannot hold
    groups of 3 generations."""
    job = sbatch(cluster, f"--output={tmp_path}/%x-%j.out", "slurm/stage2_grpo.sh",
                 "--config", "recipes/tiny/reasoning_rl.yaml", "--run_dir", str(tmp_path / "run"),
                 "--per_device_train_batch_size", "4", "--num_generations", "3")
    info = wait_ended(cluster, job, 60)
    log = log_of(cluster, job)
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "2:0", log
    errors = [line for line in log.splitlines() if line.startswith("r1repro slurm:")]
    assert errors == ["r1repro slurm: recipes/tiny/reasoning_rl.yaml: generation_batch_size (4) must be divisible "
                      "by num_generations (3), with 1 training process(es)"], log
    assert "training:" not in log


def test_stage_error_is_the_last_word_of_the_job_log(cluster, tmp_path, base_model):
    """A bad input found by the stage itself (not by the planner): the node wrapper passes the stage's
    exit code through and adds no traceback (accelerate's CalledProcessError used to follow the error)."""
    job = sbatch(cluster, f"--output={tmp_path}/%x-%j.out", "slurm/stage2_grpo.sh",
                 "--config", "recipes/tiny/reasoning_rl.yaml", "--run_dir", str(tmp_path / "run"),
                 "--model_name_or_path", base_model, "--rewards", f"{{path: '{tmp_path}/nope.py:f'}}",
                 *COMMON_ARGS, *GRPO_ARGS)
    info = wait_ended(cluster, job, 300)
    log = log_of(cluster, job)
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "2:0", log[-3000:]
    assert "Traceback" not in log and "CalledProcessError" not in log, log[-3000:]
    # The stage's one line, then only srun's own notes (the task's exit code, the step's end), then the exit line.
    tail = [line for line in log.splitlines() if line.strip() and not line.startswith("srun: ")][-2:]
    assert tail[0] == (f"r1repro reasoning_rl: error: rewards: reward '{tmp_path}/nope.py:f': file {tmp_path}/nope.py"
                       f" not found (relative paths are read from {REPO})"), log[-3000:]
    assert tail[1].endswith("stage reasoning_rl finished with exit code 2"), log[-3000:]


PLUGIN_REWARD = "def length_bonus(completions, **kwargs):\n    return [min(len(c), 8) / 8 for c in completions]\n"


@pytest.mark.parametrize("rewards_form", ["yaml_list", "several_values"])
def test_stage2_grpo_completes_and_writes_its_model(cluster, tmp_path, base_model, rewards_form):
    """Several rewards overridden on the sbatch command line, in both spellings the stage CLI takes:
    one YAML list, or one mapping per value."""
    run_dir = tmp_path / "run"
    (tmp_path / "my_reward.py").write_text(PLUGIN_REWARD)
    format_spec, plugin_spec = "{name: format}", f"{{path: '{tmp_path}/my_reward.py:length_bonus'}}"
    rewards = ([f"[{format_spec}, {plugin_spec}]"] if rewards_form == "yaml_list" else [format_spec, plugin_spec])
    job = sbatch(cluster, "slurm/stage2_grpo.sh", "--config", "recipes/tiny/reasoning_rl.yaml",
                 "--run_dir", str(run_dir), "--model_name_or_path", base_model, "--rewards", *rewards,
                 *COMMON_ARGS, *GRPO_ARGS)
    info = wait_ended(cluster, job, 400)
    log = log_of(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-3000:]
    # Logs land in a predictable place: slurm/logs/<job name>-<job id>.out under the submit dir.
    assert info["StdOut"] == str(REPO / "slurm/logs" / f"r1-reasoning_rl-{job}.out")
    out = run_dir / "reasoning_rl"
    assert (out / "DONE.json").is_file()
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert "finished with exit code 0" in log
    logged = {key for m in read_metrics(out) for key in m if key.startswith("rewards/")}
    assert {"rewards/format/mean", "rewards/length_bonus/mean"} <= logged, logged


# Long enough that USR1, sent once the first step is logged, lands mid-training on a fast machine too
# (with 8 steps a quiet machine once finished them all before the signal: checkpoint-8).
PREEMPT_STEPS = 40


def test_preempted_job_checkpoints_requeues_and_resumes(cluster, tmp_path, base_model):
    run_dir = tmp_path / "run"
    out = run_dir / "r1zero"
    job = sbatch(cluster, f"--output={tmp_path}/%x-%j.out", "slurm/stage0_r1zero.sh",
                 "--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(run_dir),
                 "--model_name_or_path", base_model, *GRPO_ARGS, "--eval_num_problems", "0",
                 "--max_steps", str(PREEMPT_STEPS), "--save_steps", "1000")
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().strip()):
        assert cluster.job(job)["JobState"] in {"PENDING", "RUNNING", "CONFIGURING"}, log_of(cluster, job)
        assert time.monotonic() < deadline, "training never logged a step"
        time.sleep(0.5)
    # What Slurm does before the time limit with --signal=B:USR1@900: signal the batch shell.
    cluster.run(["scancel", "--signal=USR1", "--batch", job])
    deadline = time.monotonic() + 120
    while int(cluster.job(job).get("Restarts", 0)) < 1:
        assert time.monotonic() < deadline, f"job was not requeued: {log_of(cluster, job)[-3000:]}"
        time.sleep(0.5)
    info = wait_ended(cluster, job, 400)
    log = log_of(cluster, job)
    assert info["JobState"] == "COMPLETED", log[-3000:]
    assert "requeueing job" in log
    resumed = [line for line in log.splitlines() if line.startswith("resuming from ")]
    assert len(resumed) == 1, log[-3000:]
    step = int(resumed[0].rsplit("checkpoint-", 1)[1])
    assert 1 <= step < PREEMPT_STEPS
    # The second run continued from the checkpoint: it logged steps after `step` only.
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if '"loss"' in line]
    assert steps[-1] == PREEMPT_STEPS and steps[: step] == list(range(1, step + 1)), steps
    assert steps[step:] == list(range(step + 1, PREEMPT_STEPS + 1)), steps
    assert (out / "DONE.json").is_file()


def test_scancel_stays_cancelled(cluster, tmp_path, base_model):
    """TERM (scancel, preemption) asks for a checkpoint but must never requeue the job."""
    job = sbatch(cluster, f"--output={tmp_path}/%x-%j.out", "slurm/stage0_r1zero.sh",
                 "--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(tmp_path / "run"),
                 "--model_name_or_path", base_model, *GRPO_ARGS, "--eval_num_problems", "0", "--max_steps", "50")
    deadline = time.monotonic() + 120
    while "training:" not in log_of(cluster, job):
        assert time.monotonic() < deadline, log_of(cluster, job)
        time.sleep(0.5)
    cluster.run(["scancel", job])
    info = wait_ended(cluster, job, 60)
    time.sleep(3)  # a requeue would show up as PENDING with Restarts=1 by now
    info = cluster.job(job)
    assert info["JobState"] == "CANCELLED" and info["Restarts"] == "0", info
    assert "got TERM" in log_of(cluster, job)


def test_pipeline_submitter_runs_the_tiny_chain(cluster, tmp_path):
    # A smoke variant of the tiny chain, sized to finish in minutes on CPU, is used as it is; the
    # tiny chain itself is shrunk here (fewer steps, samples, tokens) to the same end.
    smoke = REPO / "recipes/tiny/pipeline_smoke.yaml"
    data = yaml.safe_load((smoke if smoke.exists() else REPO / "recipes/tiny/pipeline_r1zero.yaml").read_text())
    if not smoke.exists():
        for stage in data["stages"]:
            stage["args"] = [*map(str, stage.get("args", [])), *COMMON_ARGS,
                             *SHRINK.get(stage.get("stage", stage["name"]), [])]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"
    r = subprocess.run(["r1repro", "slurm", "submit-pipeline", "--config", str(path), "--run-dir", str(run_dir),
                        "--log-dir", str(tmp_path)], cwd=REPO, env=cluster.env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    jobs = [line.split("\t") for line in r.stdout.splitlines()]
    assert [name for name, _ in jobs] == [s["name"] for s in data["stages"]] + ["report"]
    previous_end = None
    for name, job in jobs:
        info = wait_ended(cluster, job, 420)
        assert info["JobState"] == "COMPLETED", f"{name}: {log_of(cluster, job)[-3000:]}"
        if name != "report":
            assert (run_dir / name / "DONE.json").is_file()
        # Dependent jobs: each stage started only after the previous one ended.
        if previous_end:
            assert info["StartTime"] >= previous_end
        previous_end = info["EndTime"]
    # The report job found every stage done (it ran none of them again) and wrote the run report.
    report = json.loads((run_dir / "report.json").read_text())
    assert {name: st["status"] for name, st in report["stages"].items()} == {
        s["name"]: "done" for s in data["stages"]}
    assert "skipping" in log_of(cluster, jobs[-1][1])


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory):
    """Three slurmd (n1, n2, n3) on this machine: real multi-node allocations and job steps."""
    with running_cluster(tmp_path_factory.mktemp("slurm3"), nodes=3) as cluster:
        yield cluster


@pytest.fixture
def nodes3(three_nodes):
    yield three_nodes
    three_nodes.cancel_leftovers()


def test_server_mode_puts_vllm_on_its_own_node_and_fails_clearly(nodes3, tmp_path, base_model):
    """A 2-node job: the plan gives n2 to `trl vllm-serve` and n1 to training. This venv has no
    vLLM, so the server dies at start: the job must fail with one clear line, before any training
    starts (it must not hang waiting for the health endpoint)."""
    job = sbatch(nodes3, "--nodes=2", f"--output={tmp_path}/%x-%j.out", "slurm/stage2_grpo.sh",
                 "--config", "recipes/tiny/reasoning_rl.yaml", "--run_dir", str(tmp_path / "run"),
                 "--model_name_or_path", base_model, "--use_vllm", "true", "--vllm_mode", "server",
                 *COMMON_ARGS, *GRPO_ARGS)
    info = wait_ended(nodes3, job, 120)
    log = log_of(nodes3, job)
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "1:0", log
    assert info["NodeList"] == "n[1-2]"
    assert "--nodelist=n2 python -m r1repro.slurm node-exec vllm" in log
    assert f"vLLM server on n2: trl vllm-serve --model {base_model}" in log
    assert "exited before http://n2:8000/health became healthy" in log
    assert "training:" not in log


def _dry_exec_job(cluster, tmp_path, nodes, *args):
    """A real multi-node job of stage2_grpo.sh whose steps print each node's command instead of
    running it (R1REPRO_DRY_EXEC=1), with 8 GPUs per node as a GPU cluster would report them."""
    r = cluster.run(["sbatch", "--parsable", f"--nodes={nodes}", f"--output={tmp_path}/%x-%j.out",
                     "slurm/stage2_grpo.sh", "--config", "recipes/tiny/reasoning_rl.yaml",
                     "--run_dir", str(tmp_path / "run"), *args],
                    cwd=REPO,
                    env={"R1REPRO_DRY_EXEC": "1", "R1REPRO_GPUS_PER_NODE": "8", "R1REPRO_MAIN_PORT": "29555"})
    job = r.stdout.strip()
    info = wait_ended(cluster, job, 120)
    log = log_of(cluster, job)
    assert info["JobState"] == "COMPLETED", log
    ranks = {}
    for line in log.splitlines():
        if "[r1repro node-exec] rank" in line:
            rank, node = line.split("rank ")[1].split(":")[0].split(" on ")
            ranks[node] = line.split(": ", 1)[1].split()
            assert ranks[node][ranks[node].index("--machine_rank") + 1] == rank
    return log, ranks


def _flag(cmd, name):
    return cmd[cmd.index(name) + 1]


def test_colocate_job_gives_each_node_its_machine_rank(nodes3, tmp_path):
    log, ranks = _dry_exec_job(nodes3, tmp_path, 3, "--use_vllm", "true", "--vllm_mode", "colocate",
                               "--per_device_train_batch_size", "4")
    assert sorted(ranks) == ["n1", "n2", "n3"]
    assert {node: _flag(cmd, "--machine_rank") for node, cmd in ranks.items()} == {"n1": "0", "n2": "1", "n3": "2"}
    for cmd in ranks.values():
        assert _flag(cmd, "--num_machines") == "3" and _flag(cmd, "--num_processes") == "24"
        # n1 has no DNS name on this machine: the plan takes the address Slurm has for it (NodeAddr).
        assert _flag(cmd, "--main_process_ip") == "127.0.0.1" and _flag(cmd, "--main_process_port") == "29555"
        assert "--vllm_server_host" not in cmd
    assert "vLLM server" not in log


def test_server_job_splits_off_the_last_node_for_vllm(nodes3, tmp_path):
    log, ranks = _dry_exec_job(nodes3, tmp_path, 3, "--use_vllm", "true", "--vllm_mode", "server",
                               "--per_device_train_batch_size", "2", "--num_generations", "16")
    assert sorted(ranks) == ["n1", "n2"]
    assert "[r1repro node-exec] vLLM server on n3: trl vllm-serve --model" in log
    for node, cmd in ranks.items():
        assert _flag(cmd, "--num_machines") == "2" and _flag(cmd, "--num_processes") == "16"
        assert _flag(cmd, "--main_process_ip") == "127.0.0.1" and _flag(cmd, "--vllm_server_host") == "n3"
    # 2 per device x 16 processes = 32 completions = 2 prompts x 16 generations.
    assert '"generation_batch_size": 32' in log and '"prompts_per_generation": 2' in log


def test_trace_stage_samples_on_every_node_as_its_own_step(nodes3, tmp_path, base_model):
    """Issue 12: cold_start's sampling is an srun step of its own across the job's nodes (one shard per
    node here, per GPU on a GPU cluster), before and outside the training step. The random base model
    writes no correct trace, so the training step then stops with its one line."""
    run_dir = tmp_path / "run"
    job = sbatch(nodes3, "--nodes=2", "slurm/stage1_cold_start.sh", "--config", "recipes/tiny/cold_start.yaml",
                 "--run_dir", str(run_dir), "--source_model", base_model, "--model_name_or_path", base_model,
                 "--num_prompts", "4", "--samples_per_prompt", "2", "--sample_max_new_tokens", "8", *COMMON_ARGS)
    info = wait_ended(nodes3, job, 400)
    log = log_of(nodes3, job)
    samples = run_dir / "cold_start" / "samples"
    shards = sorted(p.name for p in samples.glob("samples*.jsonl"))
    assert shards == ["samples.shard-00000-of-00002.jsonl", "samples.shard-00001-of-00002.jsonl"], log[-3000:]
    assert sum(1 for _ in open(samples / shards[0])) + sum(1 for _ in open(samples / shards[1])) == 4 * 2
    summary = json.loads((run_dir / "cold_start" / "traces_summary.json").read_text())
    assert summary["samples"] == 8
    assert log.index("traces: srun --nodes=2 --ntasks=2") < log.index("training: srun")
    assert info["JobState"] == "FAILED" and "no training traces survived the filters" in log


def test_a_failed_eval_after_training_leaves_the_stage_done(cluster, tmp_path, base_model):
    """The eval is a job step after the training step; its failure is logged, the job completes."""
    run_dir = tmp_path / "run"
    broken_eval = ["--eval_num_problems", "2", "--eval_tasks", f"[{{name: x, dataset: {tmp_path}/missing.jsonl}}]"]
    job = sbatch(cluster, "slurm/stage2_grpo.sh", "--config", "recipes/tiny/reasoning_rl.yaml",
                 "--run_dir", str(run_dir), "--model_name_or_path", base_model, "--max_steps", "2", *GRPO_ARGS,
                 *broken_eval)
    info = wait_ended(cluster, job, 400)
    log = log_of(cluster, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log[-3000:]
    assert (run_dir / "reasoning_rl" / "DONE.json").is_file() and not (run_dir / "reasoning_rl" / "eval.json").exists()
    assert log.index("finished with exit code 0") < log.index("eval: srun --nodes=1 --ntasks=1")
    assert "eval of stage reasoning_rl failed (the stage itself is done)" in log
