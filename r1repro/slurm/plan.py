"""The cluster plan for one stage: which node does what, and the exact commands each node runs.

Everything the sbatch scripts decide is computed here, from the recipe and the Slurm allocation, so that
`r1repro slurm dry-run` prints exactly what a job runs. The recipe is read by the stages' one loader
(r1repro/stages/args.py), twice: the layout first (is a node set aside for a vLLM server?), as parsed, since
TRL checks the generation batch against a world size and the world size is what the layout decides; then the
stage's args at that world size, from which every training number comes, TRL's defaults and rules included.
`r1repro check` reads its values from that second load too (plan_and_args): one load, one rule for the
hardware flags.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from r1repro.config import ConfigError
from r1repro.slurm.hostlist import expand
from r1repro.stages import GRPO_STAGES
from r1repro.stages.args import load_stage_args, load_stage_layout
from r1repro.stages.evaluate import eval_wanted
from r1repro.trainers.traces import samples_traces

# TrainingArguments checks that need the hardware to exist (bf16 without a GPU raises; GRPOConfig's bf16 is on
# unless a recipe says otherwise): a cluster's plan is made on any machine (a dry-run on a laptop, a CPU batch
# node, `r1repro check`) and reads no precision, so for a GPU shape it loads with every one of them off; a CPU
# shape is what the machine it runs on can check exactly (stage_args_at).
HARDWARE_FLAGS = ("bf16", "fp16", "tf32", "bf16_full_eval", "fp16_full_eval")
HARDWARE_OFF = [arg for flag in HARDWARE_FLAGS for arg in (f"--{flag}", "false")]


ENV_PREFIX = "R1REPRO_"
OLD_ENV_PREFIX = "R1_"  # the Slurm glue's variables before they took the project's prefix


def env_setting(name: str, env: dict[str, str] | None = None) -> str | None:
    """The user's R1REPRO_<name>, or the deprecated R1_<name> with a one-line note on stderr."""
    env = os.environ if env is None else env
    if env.get(ENV_PREFIX + name):
        return env[ENV_PREFIX + name]
    old = env.get(OLD_ENV_PREFIX + name)
    if old:
        print(f"r1repro: {OLD_ENV_PREFIX}{name} is deprecated; set {ENV_PREFIX}{name} instead", file=sys.stderr)
    return old or None


class PlanError(ValueError):
    """Bad recipe, arguments or cluster shape: reported as one line, exit code 2; `field` names the recipe
    field it is about when one is (`r1repro check` reports it as that field's problem)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------- overrides

def parse_overrides(args: list[str]) -> dict[str, object]:
    """`--field value` / `--field=value` / `--flag` -> {field: value}, values typed as YAML scalars.

    Several values after one flag (`--rewards '{name: a}' '{name: b}'`) become a list, as the stage's
    own parser (nargs="+") reads them; a single YAML list (`--rewards '[{name: a}, {name: b}]'`) is one."""
    out: dict[str, object] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise PlanError(f"expected --field value, got {arg!r}")
        key, eq, value = arg[2:].partition("=")
        i += 1
        if eq:
            values = [value]
        else:
            values = []
            while i < len(args) and not args[i].startswith("--"):
                values.append(args[i])
                i += 1
            if not values:
                values = ["true"]  # a bare boolean flag, as HfArgumentParser accepts (`--bf16`)
        parsed = [_yaml_scalar(v) for v in values]
        out[key.replace("-", "_")] = parsed[0] if len(parsed) == 1 else parsed
    return out


def _yaml_scalar(value: str) -> object:
    try:
        return yaml.safe_load(value) if value else value
    except yaml.YAMLError:
        return value  # the stage's parser decides what it means


# ---------------------------------------------------------------- cluster shape

@dataclass
class Shape:
    nodes: list[str]
    gpus_per_node: int
    job_id: str = "0"


def _gpu_count(value: str | None) -> int | None:
    """'8', 'h100:8', 'gpu:h100:8' or '8(x4)' -> 8."""
    if not value:
        return None
    m = re.search(r"(\d+)(?:\(x\d+\))?$", value.split(",")[0])
    return int(m.group(1)) if m else None


def shape_from_env(env: dict[str, str] | None = None) -> Shape:
    """Nodes and GPUs of the current allocation, from Slurm's variables (R1REPRO_GPUS_PER_NODE overrides,
    for clusters that hand out whole GPU nodes without gres)."""
    env = dict(os.environ if env is None else env)
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if not nodelist:
        raise PlanError("not inside a Slurm job (SLURM_JOB_NODELIST unset); use `r1repro slurm dry-run`")
    override = env_setting("GPUS_PER_NODE", env)
    gpus = _gpu_count(override)
    for var in () if override else ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_JOB_GPUS"):
        if env.get(var):
            gpus = len(env[var].split(",")) if var == "SLURM_JOB_GPUS" else _gpu_count(env[var])
            break
    return Shape(nodes=expand(nodelist), gpus_per_node=gpus or 0, job_id=env.get("SLURM_JOB_ID", "0"))


def node_address(node: str) -> str:
    """An address the other nodes reach `node` at: its name when that resolves (real clusters), else the
    NodeAddr Slurm itself uses for it (`scontrol show node`; several slurmd on one host, as in the tests,
    have names no resolver knows)."""
    try:
        socket.gethostbyname(node)
        return node
    except OSError:
        pass
    r = subprocess.run(["scontrol", "show", "node", "-o", node], capture_output=True, text=True)
    m = re.search(r"\bNodeAddr=(\S+)", r.stdout)
    if r.returncode != 0 or not m:
        raise PlanError(f"node {node} does not resolve and `scontrol show node {node}` gives no NodeAddr")
    return m.group(1)


# ---------------------------------------------------------------- the plan

@dataclass
class Plan:
    stage: str
    config: str
    args: list[str]                      # the user's --field value overrides, passed through verbatim
    nodes: list[str]
    gpus_per_node: int
    train_nodes: list[str]
    vllm_node: str | None
    num_machines: int
    num_processes: int
    main_process_ip: str
    main_process_port: int
    accelerate_config: str | None
    output_dir: str | None
    vllm_port: int | None = None
    vllm_model: str | None = None
    vllm_tensor_parallel_size: int = 1
    extra_args: list[str] = field(default_factory=list)   # what the plan adds (vLLM host)
    batch: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    samples_traces: bool = False  # trace steps before training: traces from source_model (trace_source)
    evaluates: bool = True        # an eval step after training (eval_wanted: eval_num_problems > 0, eval_tasks)

    def to_dict(self) -> dict:
        return asdict(self)


def _load(stage: str, argv: list[str], num_processes: int | None = None):
    """The stage's typed args through the stages' loader: as parsed (the layout) without num_processes, else
    loaded at that world size. Its one-line error becomes the plan's, the process count added to TRL's
    (its messages name the batch fields, not the world size they were checked at)."""
    try:
        if num_processes is None:
            return load_stage_layout(stage, argv)
        return load_stage_args(stage, argv, num_processes)
    except ConfigError as err:
        where = "" if num_processes is None else f", with {num_processes} training process(es)"
        raise PlanError(str(err).rstrip(".") + where, err.field) from err


def stage_args_at(stage: str, config: str, args: list[str], num_processes: int, gpus: int):
    """The stage's typed args at `num_processes` training processes, as a plan loads them: TRL's defaults and
    rules at that world size. On a GPU shape every HARDWARE_FLAGS flag is off (the plan is made on any machine,
    the GPU nodes check them when the stage loads); on a CPU shape they stay as set, so bf16 without use_cpu
    fails here as it would on the nodes. Raises PlanError."""
    return _load(stage, ["--config", config, *args, *(HARDWARE_OFF if gpus else [])], num_processes)


def _positive(config: str, args, name: str) -> int:
    value = getattr(args, name)
    if value < 1:
        raise PlanError(f"{config}: {name} must be a positive integer, got {value!r}", name)
    return value


def trl_batch(stage: str, train_args, num_processes: int) -> dict:
    """The batch numbers of the stage's training args as TRL derived them at num_processes (GRPOConfig's
    generation_batch_size, its defaults included)."""
    per_device, accum = train_args.per_device_train_batch_size, train_args.gradient_accumulation_steps
    out = {"num_processes": num_processes, "per_device_train_batch_size": per_device,
           "gradient_accumulation_steps": accum, "global_batch": per_device * num_processes * accum}
    if stage in GRPO_STAGES:
        out.update(num_generations=train_args.num_generations, generation_batch_size=train_args.generation_batch_size,
                   prompts_per_generation=train_args.generation_batch_size // train_args.num_generations)
    return out


def make_plan(stage: str, config: str, args: list[str], shape: Shape, main_port: int | None = None) -> Plan:
    return plan_and_args(stage, config, args, shape, main_port)[0]


def plan_and_args(stage: str, config: str, args: list[str], shape: Shape, main_port: int | None = None):
    """The plan, and the stage's typed args it was made from (stage_args_at its process count)."""
    layout = _load(stage, ["--config", config, *args])
    nodes, gpus = list(shape.nodes), shape.gpus_per_node
    if not nodes:
        raise PlanError("the allocation has no nodes")
    notes: list[str] = []
    # A training config without vLLM fields (SFT, DPO) has no server either.
    server = getattr(layout.train, "use_vllm", False) and layout.train.vllm_mode == "server"
    vllm_node = None
    if server:
        # TRL's vllm-serve owns a whole node; every other node trains.
        if len(nodes) < 2:
            raise PlanError("vllm_mode=server needs a dedicated vLLM node: submit with --nodes=2 or more "
                            "(or set vllm_mode colocate)", "vllm_mode")
        vllm_node, nodes = nodes[-1], nodes[:-1]
    # CPU nodes (the tests) train on every training node too: 1 process per node, gloo (accelerate_command).
    num_processes = len(nodes) * max(gpus, 1)
    if gpus == 0 and len(nodes) > 1:
        notes.append(f"no GPUs: {len(nodes)} nodes x 1 process (torchrun, gloo)")
    accel = layout.run.accelerate_config
    if accel and gpus == 0:
        notes.append(f"no GPUs: ignoring accelerate_config {accel} (1 CPU process per node)")
        accel = None
    if accel and not Path(accel).is_file():
        raise PlanError(f"accelerate_config not found: {accel}", "accelerate_config")
    loaded = stage_args_at(stage, config, args, num_processes, gpus)
    train = loaded.train
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        _positive(config, train, name)
    port = main_port or 20000 + int(shape.job_id or 0) % 10000
    plan = Plan(
        stage=stage, config=config, args=list(args), nodes=list(shape.nodes), gpus_per_node=gpus,
        train_nodes=nodes, vllm_node=vllm_node, num_machines=len(nodes), num_processes=num_processes,
        main_process_ip=nodes[0], main_process_port=port, accelerate_config=accel,
        output_dir=train.output_dir, batch=trl_batch(stage, train, num_processes), notes=notes,
        samples_traces=samples_traces(loaded), evaluates=eval_wanted(loaded.eval),
    )
    if server:
        plan.vllm_port = _positive(config, train, "vllm_server_port")
        plan.vllm_model = loaded.model.model_name_or_path
        plan.vllm_tensor_parallel_size = _positive(config, train, "vllm_tensor_parallel_size")
        if not plan.vllm_model:
            raise PlanError("vllm_mode=server needs model_name_or_path for trl vllm-serve", "model_name_or_path")
        plan.extra_args = ["--vllm_server_host", vllm_node, "--vllm_server_port", str(plan.vllm_port)]
    return plan, loaded


# ---------------------------------------------------------------- commands

def train_env(plan: Plan) -> dict[str, str]:
    """Variables node-exec adds to the launcher's environment (printed with its command). torchrun on CPU
    nodes: with ACCELERATE_USE_CPU transformers and accelerate set up gloo (accelerate's MULTI_CPU) even for a
    recipe without `use_cpu: true`; without it a rank that finds no GPU would train alone
    (`accelerate launch --cpu` sets the same variable itself)."""
    return {"ACCELERATE_USE_CPU": "true"} if plan.gpus_per_node == 0 and plan.num_machines > 1 else {}


def accelerate_command(plan: Plan, machine_rank: int) -> list[str]:
    """The training launcher for one training node; each node passes its own machine rank.

    GPU nodes: `accelerate launch`, with accelerate's static rendezvous at the first training node across nodes.
    One CPU node: `accelerate launch --cpu`, one process.
    Several CPU nodes: torchrun, 1 process per node (gloo). `accelerate launch --cpu` cannot span nodes without
    mpirun: it always takes accelerate's simple launcher (commands/launch.py: launch_command), which starts one
    plain process with MASTER_ADDR/MASTER_PORT but no RANK/WORLD_SIZE (utils/launch.py:
    prepare_simple_launcher_cmd_env), so every node would train alone unless mpirun (`--mpirun_hostfile`)
    supplied the ranks; and its torchrun path (multi_gpu_launcher) refuses --cpu. torchrun's static
    rendezvous (--nnodes, --node_rank, --master_addr/--master_port) is the one accelerate runs on GPU nodes."""
    stage = ["-m", "r1repro.cli", plan.stage, "--config", plan.config, *plan.args, *plan.extra_args]
    if plan.gpus_per_node == 0 and plan.num_machines > 1:
        return ["torchrun", "--nnodes", str(plan.num_machines), "--nproc_per_node", "1",
                "--node_rank", str(machine_rank), "--master_addr", plan.main_process_ip,
                "--master_port", str(plan.main_process_port), "--rdzv_backend", "static", "--max_restarts", "0",
                *stage]
    cmd = ["accelerate", "launch"]
    if plan.gpus_per_node == 0:
        return cmd + ["--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", *stage]
    if plan.accelerate_config:
        cmd += ["--config_file", plan.accelerate_config]
    elif plan.num_processes > 1:
        cmd += ["--multi_gpu"]
    cmd += ["--num_machines", str(plan.num_machines), "--num_processes", str(plan.num_processes),
            "--machine_rank", str(machine_rank), "--main_process_ip", plan.main_process_ip,
            "--main_process_port", str(plan.main_process_port)]
    if plan.num_machines > 1:
        cmd += ["--rdzv_backend", "static", "--same_network"]
    return cmd + stage


def vllm_command(plan: Plan) -> list[str]:
    return ["trl", "vllm-serve", "--model", str(plan.vllm_model), "--host", "0.0.0.0",
            "--port", str(plan.vllm_port), "--tensor_parallel_size", str(plan.vllm_tensor_parallel_size)]


def srun_command(plan: Plan, role: str) -> list[str]:
    """The job step for a role; the step runs `r1repro slurm node-exec`, which runs the command above."""
    nodes = plan.train_nodes if role == "train" else [plan.vllm_node]
    cmd = ["srun", f"--nodes={len(nodes)}", f"--ntasks={len(nodes)}", "--ntasks-per-node=1",
           f"--nodelist={','.join(nodes)}"]
    if role == "train":
        cmd.append("--kill-on-bad-exit=1")  # one dead node must not leave the others waiting in NCCL
    return cmd + ["python", "-m", "r1repro.slurm", "node-exec", role]


def trace_sample_command(plan: Plan) -> list[str]:
    """The job step that samples a trace stage's traces before its training step: one process per
    GPU on every node of the job (one per node without GPUs), each its own shard and its own GPU.
    The prepare and select steps (`r1repro traces --prepare / --select`) run in the batch shell."""
    per_node = max(1, plan.gpus_per_node)
    shards = len(plan.nodes) * per_node
    cmd = ["srun", f"--nodes={len(plan.nodes)}", f"--ntasks={shards}", f"--ntasks-per-node={per_node}",
           f"--nodelist={','.join(plan.nodes)}"]
    traces = ["python", "-m", "r1repro.cli", "traces", plan.stage, "--num-shards", str(shards),
              "--config", plan.config, *plan.args]
    if plan.gpus_per_node:
        # One GPU per task, whatever the cluster's gres binding does.
        return cmd + ["bash", "-c", 'export CUDA_VISIBLE_DEVICES=$SLURM_LOCALID; exec "$@"', "r1-traces", *traces]
    return cmd + traces


def eval_command(plan: Plan) -> list[str]:
    """The job step that evaluates the stage's model once its training step has exited."""
    return ["srun", "--nodes=1", "--ntasks=1", f"--nodelist={plan.nodes[0]}", "python", "-m", "r1repro.cli",
            "stage-eval", plan.stage, "--config", plan.config, *plan.args]


def health_url(plan: Plan) -> str | None:
    return f"http://{plan.vllm_node}:{plan.vllm_port}/health" if plan.vllm_node else None


def quote(cmd: list[str]) -> str:
    return shlex.join(cmd)
