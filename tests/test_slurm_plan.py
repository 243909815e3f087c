"""Dry-run tests of the Slurm plan: cluster shapes, rendezvous arguments, the vLLM node split and
the batch arithmetic, plus the pieces of the job machinery that need no cluster. Fast, no Slurm."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from r1repro.slurm import main as slurm_main
from r1repro.slurm.hostlist import expand
from r1repro.slurm.launch import PREEMPTED_EXIT_CODE, failure_line, record_exit, wait_health
from r1repro.slurm.plan import (
    PlanError,
    Shape,
    accelerate_command,
    make_plan,
    node_address,
    shape_from_env,
    train_env,
    trl_batch,
    vllm_command,
)
from r1repro.slurm.submit import sbatch_commands, submit

REPO = Path(__file__).resolve().parents[1]
SLURM_DIR = REPO / "slurm"


@pytest.fixture
def recipe(tmp_path):
    """A GRPO stage recipe in the shape of the tiny ones; fields as TRL names them."""

    def write(**fields):
        data = {"run_dir": str(tmp_path / "run"), "output_dir": "${run_dir}/reasoning_rl",
                "model_name_or_path": "${run_dir}/cold_start", "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 1, "num_generations": 8, "use_vllm": True,
                "vllm_mode": "server", "accelerate_config": str(REPO / "recipes/accelerate/zero3.yaml")}
        data.update(fields)
        data = {key: value for key, value in data.items() if value is not None}  # None: left to the defaults
        path = tmp_path / "reasoning_rl.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return write


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_four_nodes_eight_gpus_one_vllm_node(recipe):
    shape = Shape(nodes=expand("gpu[01-04]"), gpus_per_node=8, job_id="4242")
    plan = make_plan("reasoning_rl", recipe(), [], shape)
    assert plan.vllm_node == "gpu04"
    assert plan.train_nodes == ["gpu01", "gpu02", "gpu03"]
    assert (plan.num_machines, plan.num_processes) == (3, 24)
    cmds = [accelerate_command(plan, rank) for rank in range(3)]
    # Each node its own machine rank; all agree on the world and on the rendezvous point.
    assert [_flag(c, "--machine_rank") for c in cmds] == ["0", "1", "2"]
    for c in cmds:
        assert _flag(c, "--num_machines") == "3" and _flag(c, "--num_processes") == "24"
        assert _flag(c, "--main_process_ip") == "gpu01"
        assert _flag(c, "--main_process_port") == str(plan.main_process_port)
        assert _flag(c, "--config_file").endswith("recipes/accelerate/zero3.yaml")
        # The trainer is pointed at the vLLM node, never at itself.
        assert _flag(c, "--vllm_server_host") == "gpu04"
        assert c[c.index("-m") + 1:c.index("-m") + 3] == ["r1repro.cli", "reasoning_rl"]
    assert vllm_command(plan)[:2] == ["trl", "vllm-serve"]
    assert _flag(vllm_command(plan), "--model").endswith("run/cold_start")
    # 4 per device x 24 processes = 96 completions = 12 prompts x 8 generations.
    assert plan.batch["generation_batch_size"] == 96
    assert plan.batch["prompts_per_generation"] == 12
    assert plan.batch["global_batch"] == 96


def test_colocate_mode_trains_on_every_node(recipe):
    plan = make_plan("reasoning_rl", recipe(vllm_mode="colocate"), [], Shape(expand("n[1-2]"), 8))
    assert plan.vllm_node is None and plan.train_nodes == ["n1", "n2"]
    assert plan.num_processes == 16
    assert "--vllm_server_host" not in accelerate_command(plan, 1)


def test_cli_overrides_count_in_batch_arithmetic(recipe):
    plan = make_plan("reasoning_rl", recipe(), ["--per_device_train_batch_size", "2",
                                                 "--gradient_accumulation_steps=4"], Shape(expand("n[1-3]"), 4))
    # 2 of 3 nodes train (one serves vLLM): 8 processes; 2 per device x 8 processes x 4 steps = 64.
    assert plan.num_processes == 8
    assert plan.batch["generation_batch_size"] == 64 and plan.batch["prompts_per_generation"] == 8
    assert plan.args == ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps=4"]


def test_indivisible_generation_batch_is_one_clear_error(recipe):
    with pytest.raises(PlanError, match=r"must be divisible by num_generations \(7\), with 2 training process"):
        make_plan("reasoning_rl", recipe(num_generations=7, use_vllm=False), [], Shape(expand("n[1-2]"), 1))
    # Not a GRPO stage: no generation batch, no such rule.
    sft = make_plan("cold_start", recipe(num_generations=None, use_vllm=None, vllm_mode=None,
                                         source_dataset="${run_dir}/traces.jsonl"), [], Shape(["n1"], 1))
    assert "num_generations" not in sft.batch and sft.batch["global_batch"] == 4


def test_generation_batch_is_checked_at_the_world_size_the_plan_derives(recipe, capsys):
    """TRL checks the generation batch against a world size; the plan's is the training nodes' (the vLLM
    node set aside): 4 per device x 2 processes = 8 completions hold one group of 8, but with one of the
    two nodes serving vLLM, 4 x 1 cannot. One line, naming the recipe file and the fields."""
    path = recipe(num_generations=8, per_device_train_batch_size=4)
    assert make_plan("reasoning_rl", path, ["--vllm_mode", "colocate"], Shape(["n1", "n2"], 1)).batch[
        "generation_batch_size"] == 8
    assert slurm_main(["dry-run", "reasoning_rl", "--config", path, "--nodes", "2", "--gpus-per-node", "1"]) == 2
    out, err = capsys.readouterr()
    assert not out and err == (f"r1repro slurm: {path}: generation_batch_size (4) must be divisible by "
                               "num_generations (8), with 1 training process(es)\n")


@pytest.mark.parametrize("fields", [{}, {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4},
                                    {"steps_per_generation": 3, "num_generations": 6},
                                    {"generation_batch_size": 32, "per_device_train_batch_size": 4}])
def test_the_batch_is_trls_at_the_plans_world_size(recipe, fields):
    """Every batch number is GRPOConfig's, its defaults included (the recipe leaves out what `fields` does
    not set), derived at the plan's process count: 2 nodes x 4 GPUs, one serving vLLM = 4 processes."""
    from trl import GRPOConfig

    from r1repro.stages.args import at_world_size

    path = recipe(**{"per_device_train_batch_size": None, "gradient_accumulation_steps": None,
                     "num_generations": None, **fields})
    plan = make_plan("r1zero", path, [], Shape(["n1", "n2"], 4))
    (grpo,) = at_world_size((GRPOConfig,), 4)
    args = grpo(output_dir="unused", bf16=False, **fields)
    assert plan.num_processes == 4 and plan.batch == trl_batch("r1zero", args, 4)
    assert plan.batch["generation_batch_size"] == args.generation_batch_size


def test_vllm_mode_defaults_to_trl_colocate(recipe, tmp_path):
    path = recipe()
    data = yaml.safe_load(open(path))
    del data["vllm_mode"]  # not set: TRL's GRPOConfig default, colocate, applies
    open(path, "w").write(yaml.safe_dump(data))
    plan = make_plan("reasoning_rl", path, [], Shape(["n1"], 8))
    assert plan.vllm_model is None and plan.num_processes == 8


def test_server_mode_needs_a_second_node(recipe):
    with pytest.raises(PlanError, match="dedicated vLLM node"):
        make_plan("reasoning_rl", recipe(), [], Shape(["n1"], 8))


def test_cpu_nodes_train_across_every_node_through_torchrun(recipe):
    """No GPUs: 1 process per node on every training node, torchrun's static rendezvous at the first one
    (`accelerate launch --cpu` would start one plain process per node without mpirun: r1repro.slurm.plan)."""
    plan = make_plan("reasoning_rl", recipe(use_vllm=False, num_generations=4, use_cpu=True), [],
                     Shape(["a", "b", "c"], 0, "7"))
    assert plan.train_nodes == ["a", "b", "c"] and (plan.num_machines, plan.num_processes) == (3, 3)
    assert plan.batch["generation_batch_size"] == 4 * 3 and plan.accelerate_config is None
    assert any("3 nodes x 1 process" in note for note in plan.notes)
    assert train_env(plan) == {"ACCELERATE_USE_CPU": "true"}
    for rank in range(3):
        cmd = accelerate_command(plan, rank)
        assert cmd[0] == "torchrun" and "--config_file" not in cmd
        flags = [_flag(cmd, name) for name in ("--nnodes", "--nproc_per_node", "--node_rank", "--master_addr",
                                               "--master_port", "--rdzv_backend")]
        assert flags == ["3", "1", str(rank), "a", "20007", "static"]
        assert cmd[cmd.index("-m"):][:3] == ["-m", "r1repro.cli", "reasoning_rl"]
    # Server mode on CPU nodes: the last node serves, the others train.
    server = make_plan("reasoning_rl", recipe(num_generations=4, use_cpu=True), [], Shape(["a", "b", "c"], 0))
    assert server.train_nodes == ["a", "b"] and _flag(accelerate_command(server, 1), "--nnodes") == "2"


def test_one_cpu_node_keeps_accelerate_cpu(recipe):
    plan = make_plan("reasoning_rl", recipe(use_vllm=False, num_generations=4, use_cpu=True), [], Shape(["a"], 0))
    cmd = accelerate_command(plan, 0)
    assert cmd[:4] == ["accelerate", "launch", "--cpu", "--num_processes"] and "--config_file" not in cmd
    assert train_env(plan) == {} and plan.train_nodes == ["a"]


def test_dry_run_on_cpu_nodes_prints_each_nodes_torchrun(recipe, capsys):
    assert slurm_main(["dry-run", "reasoning_rl", "--config", recipe(use_vllm=False, num_generations=4, use_cpu=True),
                       "--nodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "train on 2 node(s) = 2 process(es)" in out and "# note: no GPUs: 2 nodes x 1 process" in out
    on = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("#   on node")]
    assert [line.split("--node_rank ")[1].split()[0] for line in on] == ["0", "1"]
    assert all(line.startswith("ACCELERATE_USE_CPU=true torchrun --nnodes 2 --nproc_per_node 1") for line in on)


def test_node_address_keeps_a_name_that_resolves():
    assert node_address("localhost") == "localhost"


def test_failure_line_names_the_node_whose_trainer_died_first(recipe, tmp_path, monkeypatch):
    """Each node of a failed multi-node step records its exit; the batch shell's line names the node killed
    by a signal (its peer exits 1 a moment later, possibly earlier on the clock), else the earliest."""
    plan = make_plan("reasoning_rl", recipe(use_vllm=False, num_generations=4, use_cpu=True), [],
                     Shape(["n1", "n2", "n3"], 0))
    monkeypatch.setenv("SLURM_JOB_ID", "5")
    assert failure_line(plan) is None
    for rank, rc, stopped in [(0, 1, False), (1, 137, False), (2, 143, True)]:
        monkeypatch.setenv("SLURMD_NODENAME", f"n{rank + 1}")
        record_exit(plan, rank, rc, stopped=stopped)
    assert failure_line(plan) == ("training failed on n2 (node rank 1 of 3): its training process killed by "
                                  "signal 9 (SIGKILL); the step was then stopped on n1, n3")


def test_override_forms():
    from r1repro.slurm.plan import parse_overrides

    assert parse_overrides(["--a", "1", "--b=x", "--bf16", "--c", "[1, 2]", "--d"]) == {
        "a": 1, "b": "x", "bf16": True, "c": [1, 2], "d": True}
    # Several rewards: one YAML list, or one mapping per value (as the stage's nargs="+" parser reads them).
    both = [{"name": "format"}, {"path": "my.py:f"}]
    assert parse_overrides(["--rewards", "[{name: format}, {path: my.py:f}]"]) == {"rewards": both}
    assert parse_overrides(["--rewards", "{name: format}", "{path: my.py:f}", "--seed", "1"]) == {
        "rewards": both, "seed": 1}
    assert parse_overrides(["--lora_target_modules", "q_proj", "v_proj"]) == {
        "lora_target_modules": ["q_proj", "v_proj"]}


def test_run_dir_override_wins_before_expansion(recipe, tmp_path):
    plan = make_plan("reasoning_rl", recipe(), ["--run_dir", str(tmp_path / "other")], Shape(expand("n[1-2]"), 2))
    assert plan.output_dir == str(tmp_path / "other" / "reasoning_rl")
    assert plan.vllm_model == str(tmp_path / "other" / "cold_start")


@pytest.mark.parametrize("spelling", ["--run_dir", "--run_dir=", "--run-dir", "--run-dir="])
def test_every_run_dir_spelling_plans_the_same_paths(recipe, tmp_path, capsys, spelling):
    other = tmp_path / "other"
    flag = [f"{spelling}{other}"] if spelling.endswith("=") else [spelling, str(other)]
    plan = make_plan("reasoning_rl", recipe(), flag, Shape(expand("n[1-2]"), 2))
    assert (plan.output_dir, plan.vllm_model) == (f"{other}/reasoning_rl", f"{other}/cold_start")
    assert slurm_main(["dry-run", "reasoning_rl", "--config", recipe(), "--nodes", "2", "--gpus-per-node", "2",
                       *flag]) == 0
    assert f"# writes: {other}/reasoning_rl\n" in capsys.readouterr().out


def test_output_dir_defaults_to_the_stage_folder_of_the_run(recipe, tmp_path):
    path = recipe()
    Path(path).write_text(Path(path).read_text().replace("output_dir: ${run_dir}/reasoning_rl\n", ""))
    assert "\noutput_dir:" not in Path(path).read_text()
    plan = make_plan("reasoning_rl", path, ["--run-dir", str(tmp_path / "other")], Shape(["n1", "n2"], 2))
    assert plan.output_dir == f"{tmp_path}/other/reasoning_rl"


def test_shape_from_slurm_variables():
    env = {"SLURM_JOB_NODELIST": "gpu[007-008],cpu1", "SLURM_GPUS_ON_NODE": "8", "SLURM_JOB_ID": "77"}
    assert shape_from_env(env) == Shape(["gpu007", "gpu008", "cpu1"], 8, "77")
    assert shape_from_env({"SLURM_JOB_NODELIST": "n1", "SLURM_GPUS_PER_NODE": "h100:4"}).gpus_per_node == 4
    assert shape_from_env({"SLURM_JOB_NODELIST": "n1"}).gpus_per_node == 0
    with pytest.raises(PlanError, match="not inside a Slurm job"):
        shape_from_env({})


@pytest.mark.parametrize("expr,hosts", [
    ("n1", ["n1"]),
    ("gpu[01-03,07]", ["gpu01", "gpu02", "gpu03", "gpu07"]),
    ("a[1-2]-b[3-4],c", ["a1-b3", "a1-b4", "a2-b3", "a2-b4", "c"]),
])
def test_hostlist(expr, hosts):
    assert expand(expr) == hosts


def test_dry_run_prints_every_command(recipe, capsys):
    rc = slurm_main(["dry-run", "reasoning_rl", "--config", recipe(), "--nodes", "4", "--gpus-per-node", "8",
                     "--sbatch-arg=--partition=gpu", "--max_steps", "10"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = out.splitlines()
    sbatch = next(line for line in lines if line.startswith("sbatch "))
    assert "--nodes=4" in sbatch and "--gpus-per-node=8" in sbatch and "--partition=gpu" in sbatch
    assert "slurm/stage2_grpo.sh" in sbatch and "--max_steps 10" in sbatch
    assert sum(line.startswith("srun ") for line in lines) == 3  # vLLM server, training, then the eval
    assert lines[-1].startswith(
        "srun --nodes=1 --ntasks=1 --nodelist=node1 python -m r1repro.cli stage-eval reasoning_rl")
    assert "trl vllm-serve" in out and "http://node4:8000/health" in out
    ranks = [line.split("--machine_rank ")[1].split()[0] for line in lines if "accelerate launch" in line]
    assert ranks == ["0", "1", "2"]


def test_bad_input_is_one_line(recipe, capsys, tmp_path):
    assert slurm_main(["dry-run", "reasoning_rl", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert slurm_main(["dry-run", "reasoning_rl", "--config", recipe(), "--nodes", "2", "max_steps", "3"]) == 2
    assert slurm_main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("r1repro") for line in err)


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
    for name, kind in kinds.items():
        cfg = load_config_from_file(str(REPO / "recipes/accelerate" / f"{name}.yaml"))
        assert cfg.distributed_type.value == kind
        if kind == "DEEPSPEED":  # each node launches itself (no pdsh/ssh between nodes)
            assert cfg.deepspeed_config["deepspeed_multinode_launcher"] == "standard"


def test_a_stage_with_nothing_to_evaluate_gets_no_eval_step(recipe, monkeypatch, capsys):
    """eval_num_problems 0: no `srun ... stage-eval` job step (it would only start Python and import the stack);
    dry-run says so, and prepare hands lib.sh an empty R1REPRO_EVAL_CMD, as it does R1REPRO_TRACES_CMD."""
    assert slurm_main(["dry-run", "reasoning_rl", "--config", recipe(), "--nodes", "2", "--gpus-per-node", "8",
                       "--eval_num_problems", "0"]) == 0
    out = capsys.readouterr().out
    assert "stage-eval" not in out and out.splitlines()[-1] == \
        "# no eval step: eval_num_problems is 0 or there are no eval_tasks"
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    monkeypatch.setenv("R1REPRO_GPUS_PER_NODE", "8")
    for extra, eval_cmd in (([], "stage-eval reasoning_rl"), (["--eval_num_problems", "0"], None)):
        assert slurm_main(["prepare", "reasoning_rl", "--config", recipe(), *extra]) == 0
        line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("R1REPRO_EVAL_CMD="))
        assert (eval_cmd in line) if eval_cmd else line == "R1REPRO_EVAL_CMD=()"


def test_prepare_hands_the_batch_shell_the_preemption_code_and_old_names_still_work(recipe, monkeypatch, capsys):
    """lib.sh requeues on the exit code prepare prints (r1repro.rundir's, which node-exec and the stages
    use); R1_MAIN_PORT / R1_GPUS_PER_NODE, the old names, still count, with one line each on stderr."""
    import shlex

    from r1repro.rundir import PREEMPTED_EXIT_CODE as RUNDIR_CODE

    assert PREEMPTED_EXIT_CODE is RUNDIR_CODE
    monkeypatch.setenv("SLURM_JOB_NODELIST", "n[1-2]")
    monkeypatch.setenv("R1_GPUS_PER_NODE", "4")
    monkeypatch.setenv("R1_MAIN_PORT", "29555")
    assert slurm_main(["prepare", "reasoning_rl", "--config", recipe()]) == 0
    out, err = capsys.readouterr()
    values = dict(line.split("=", 1) for line in out.splitlines() if not line.endswith(")"))
    assert values["R1REPRO_PREEMPTED_EXIT_CODE"] == str(RUNDIR_CODE)
    plan = json.loads(shlex.split(values["R1REPRO_PLAN"])[0])
    assert plan["gpus_per_node"] == 4 and plan["main_process_port"] == 29555
    assert "R1_GPUS_PER_NODE is deprecated; set R1REPRO_GPUS_PER_NODE instead" in err
    assert "R1_MAIN_PORT is deprecated; set R1REPRO_MAIN_PORT instead" in err
    monkeypatch.setenv("R1REPRO_GPUS_PER_NODE", "2")  # the new name wins, silently
    assert shape_from_env().gpus_per_node == 2 and "deprecated" not in capsys.readouterr().err


def test_submit_pipeline_takes_run_dir_with_a_dash_and_the_old_spelling_with_a_note(tmp_path, capsys):
    path = _pipeline(tmp_path, ["cpt", "r1zero"])
    assert slurm_main(["submit-pipeline", "--config", path, "--run-dir", str(tmp_path / "x"), "--dry-run"]) == 0
    new = capsys.readouterr()
    assert slurm_main(["submit-pipeline", "--config", path, "--run_dir", str(tmp_path / "x"), "--dry-run"]) == 0
    old = capsys.readouterr()
    assert old.out == new.out and f"--run_dir {tmp_path / 'x'}" in new.out and not new.err
    assert old.err.strip() == "r1repro slurm submit-pipeline: --run_dir is deprecated; use --run-dir"


def _pipeline(tmp_path, names):
    stage_dir = tmp_path / "stages"
    stage_dir.mkdir()
    stages = []
    for name in names:
        (stage_dir / f"{name}.yaml").write_text(f"output_dir: ${{run_dir}}/{name}\n")
        stages.append({"name": name, "recipe": str(stage_dir / f"{name}.yaml")})
    stages[0]["args"] = ["--max_steps", "3"]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "stages": stages}))
    return str(path)


def test_pipeline_submitter_chains_with_afterok(tmp_path, capsys):
    cmds = sbatch_commands(_pipeline(tmp_path, ["cpt", "r1zero", "reasoning_rl"]), None,
                           ["--partition=p"], ["--seed", "1"])
    assert [c[0] for c in cmds] == ["cpt", "r1zero", "reasoning_rl", "report"]
    assert cmds[-1][1][-6:] == [str(SLURM_DIR / "report.sh"), "--config", str(tmp_path / "pipeline.yaml"),
                                "--run-dir", str(tmp_path / "run"), "--seed", "1"][-6:]
    assert cmds[0][1][-8:] == ["--config", str(tmp_path / "stages/cpt.yaml"), "--run_dir",
                               str(tmp_path / "run"), "--max_steps", "3", "--seed", "1"]
    assert str(SLURM_DIR / "stage.sh") in cmds[0][1] and "cpt" in cmds[0][1]
    assert str(SLURM_DIR / "stage2_grpo.sh") in cmds[2][1]
    assert submit(cmds, dry_run=True) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "--dependency" not in lines[0]
    for line in lines[1:]:
        assert "--dependency=afterok:" in line and "--kill-on-invalid-dep=yes" in line
        # sbatch options must come before the script, or they become script arguments.
        assert line.index("--dependency") < line.index("/slurm/")


def test_pipeline_per_stage_sbatch_options(tmp_path):
    path = _pipeline(tmp_path, ["cpt", "r1zero"])
    data = yaml.safe_load(Path(path).read_text())
    data["stages"][1]["sbatch"] = ["--nodes=2", "--time=1:00:00"]
    Path(path).write_text(yaml.safe_dump(data))
    cmds = dict(sbatch_commands(path, None, ["--partition=p", "r1zero:--time=2:00:00"], [], only=["cpt", "r1zero"]))
    assert "--nodes=2" not in cmds["cpt"] and "--partition=p" in cmds["cpt"]
    r1zero = cmds["r1zero"]
    assert r1zero.index("--nodes=2") < r1zero.index("--time=1:00:00") < r1zero.index("--time=2:00:00")
    with pytest.raises(PlanError, match="not a stage"):
        sbatch_commands(path, None, ["distill:--nodes=2"], [])


def test_pipeline_entry_naming_its_stage(tmp_path):
    path = _pipeline(tmp_path, ["cpt", "reasoning_rl"])
    data = yaml.safe_load(Path(path).read_text())
    data["stages"][1]["name"], data["stages"][1]["stage"] = "student_grpo", "reasoning_rl"
    Path(path).write_text(yaml.safe_dump(data))
    cmd = dict(sbatch_commands(path, None, [], []))["student_grpo"]
    assert "--job-name=r1-student_grpo" in cmd and str(SLURM_DIR / "stage2_grpo.sh") in cmd


def test_pipeline_submitter_rejects_unknown_stage(tmp_path):
    with pytest.raises(PlanError, match="nonsense"):
        sbatch_commands(_pipeline(tmp_path, ["cpt", "nonsense"]), None, [], [])


class _Health(http.server.BaseHTTPRequestHandler):
    ready_at = 0.0

    def do_GET(self):  # noqa: N802 - http.server API
        ok = self.path == "/health" and time.monotonic() >= self.ready_at
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_wait_health_waits_for_a_real_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    _Health.ready_at = time.monotonic() + 1.0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/health"
        start = time.monotonic()
        assert wait_health(url, timeout_s=20, every_s=0.2) == 0
        assert time.monotonic() - start >= 0.9
    finally:
        server.shutdown()


def test_wait_health_fails_clearly(capsys):
    with socketless_port() as port:
        url = f"http://127.0.0.1:{port}/health"
        assert wait_health(url, timeout_s=0.5, every_s=0.1) == 1
        assert "not healthy" in capsys.readouterr().err
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        assert wait_health(url, timeout_s=60, pid=dead.pid, every_s=0.1) == 1
        assert "exited before" in capsys.readouterr().err


class socketless_port:
    """A port nothing listens on (bound then released)."""

    def __enter__(self):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc):
        return False


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed")
def test_scripts_are_shellcheck_clean():
    scripts = sorted(str(p) for p in SLURM_DIR.glob("*.sh"))
    r = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout


def test_training_scripts_warn_at_least_fifteen_minutes_before_the_time_limit():
    """A 7B GRPO step plus a ~110 GB ZeRO-3 checkpoint does not fit in 5 minutes (issue 12)."""
    import re

    scripts = sorted(SLURM_DIR.glob("stage*.sh"))
    assert len(scripts) == 7
    for script in scripts:
        margins = re.findall(r"^#SBATCH --signal=B:USR1@(\d+)$", script.read_text(), re.MULTILINE)
        assert margins and int(margins[0]) >= 900, f"{script.name}: --signal=B:USR1@{margins}"
    from r1repro.slurm.cli import SBATCH_DEFAULTS

    assert "--signal=B:USR1@900" in SBATCH_DEFAULTS  # what dry runs show


def test_health_url_is_the_one_trl_polls(recipe):
    """TRL's VLLMClient checks `<base_url>/health` (no trailing slash); so do we."""
    import inspect

    from trl.generation.vllm_client import VLLMClient

    from r1repro.slurm.plan import health_url

    assert 'f"{self.base_url}/health"' in inspect.getsource(VLLMClient)
    plan = make_plan("reasoning_rl", recipe(), [], Shape(expand("gpu[01-02]"), 8))
    assert health_url(plan) == f"http://gpu02:{plan.vllm_port}/health"


def test_a_cpu_shape_checks_precision_as_its_nodes_will_and_a_gpu_shape_leaves_it_to_them(recipe):
    """A plan is made on any machine: for GPU nodes it cannot check bf16 here and leaves it to the nodes; CPU
    nodes are what this machine is, so a bf16 recipe without use_cpu fails in the plan as it would on them."""
    config = recipe(use_vllm=False, num_generations=4, bf16=True)
    assert make_plan("reasoning_rl", config, [], Shape(["g1"], 8)).num_processes == 8
    with pytest.raises(PlanError, match="bf16/gpu.*use_cpu"):
        make_plan("reasoning_rl", config, [], Shape(["n1", "n2"], 0))
    assert make_plan("reasoning_rl", config, ["--use_cpu", "true", "--bf16", "false"], Shape(["n1", "n2"], 0))


def test_trace_stages_sample_in_steps_of_their_own_one_shard_per_gpu(tmp_path, capsys):
    """Issue 12: sampling never runs in the training processes; one shard per GPU of every node."""
    from r1repro.slurm.plan import eval_command, trace_sample_command

    recipe = tmp_path / "cold_start.yaml"
    recipe.write_text("output_dir: runs/x/cold_start\nsource_model: runs/x/r1zero\nmodel_name_or_path: base\n")
    plan = make_plan("cold_start", str(recipe), ["--num_prompts", "64"], Shape(expand("gpu[01-02]"), 8))
    cmd = trace_sample_command(plan)
    assert cmd[:5] == ["srun", "--nodes=2", "--ntasks=16", "--ntasks-per-node=8", "--nodelist=gpu01,gpu02"]
    assert "CUDA_VISIBLE_DEVICES=$SLURM_LOCALID" in cmd[7]
    tail = cmd[cmd.index("traces"):]
    assert tail == ["traces", "cold_start", "--num-shards", "16", "--config", str(recipe), "--num_prompts", "64"]
    cpu = make_plan("cold_start", str(recipe), ["--use_cpu", "true"], Shape(expand("n[1-3]"), 0))
    assert trace_sample_command(cpu)[:4] == ["srun", "--nodes=3", "--ntasks=3", "--ntasks-per-node=1"]
    assert "bash" not in trace_sample_command(cpu)
    assert eval_command(plan)[-5:] == ["cold_start", "--config", str(recipe), "--num_prompts", "64"]
    assert slurm_main(["dry-run", "cold_start", "--config", str(recipe), "--nodes", "2", "--gpus-per-node", "8"]) == 0
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if not line.startswith("#")]
    # prepare, sample (srun), select, then training, then the eval.
    assert [s.split(" --config")[0].split("r1repro.cli ")[-1] for s in steps[1:4]] == [
        "traces cold_start --prepare", "traces cold_start --num-shards 16", "traces cold_start --select"]
    assert "accelerate" in out.split("--select")[1] and out.rstrip().splitlines()[-1].startswith("srun --nodes=1")
