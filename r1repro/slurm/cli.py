"""`r1repro slurm <command>`: plan, print and submit Slurm runs.

User commands:
  dry-run STAGE --config R --nodes N --gpus-per-node G [--field value ...]
      print the sbatch / srun / accelerate / vllm-serve command lines for that cluster shape
  plan STAGE --config R [--nodes N --gpus-per-node G] [--field value ...]
      the same plan as JSON (inside a job, the shape comes from Slurm's variables)
  submit-pipeline --config PIPELINE [--run-dir D] [--only a,b] [--sbatch-arg=[STAGE:]OPTION ...]
                  [--log-dir DIR] [--dry-run] [--field value ...]
      submit every stage as a job chained with afterok; --field value goes to every stage;
      a stage entry's `sbatch: [--nodes=2]` in the pipeline recipe sets that job's options
Used by the sbatch scripts:
  prepare STAGE --config R [--field value ...]   shell assignments for the batch script (R1REPRO_PLAN, ...)
  node-exec train|vllm                            the per-node task of a job step
  wait-health --url U --timeout S [--pid P]       wait for the vLLM server
  is-done                                         exit 0 when the planned stage wrote DONE.json
  train-failure                                   one line naming the node a multi-node training step failed on
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from r1repro.config import OldSpelling
from r1repro.rundir import PREEMPTED_EXIT_CODE
from r1repro.slurm import launch, submit
from r1repro.slurm.plan import (
    PlanError,
    Shape,
    accelerate_command,
    env_setting,
    eval_command,
    expand,
    health_url,
    make_plan,
    node_address,
    quote,
    shape_from_env,
    srun_command,
    trace_sample_command,
    train_env,
    vllm_command,
)

# The job-level options the stage scripts set with #SBATCH (shown in dry runs).
SBATCH_DEFAULTS = ["--ntasks-per-node=1", "--exclusive", "--requeue", "--signal=B:USR1@900",
                   "--open-mode=append"]


def _parser(prog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"r1repro slurm {prog}", allow_abbrev=False)


def _stage_args(argv: list[str], cluster: bool) -> tuple[argparse.Namespace, list[str]]:
    p = _parser("plan")
    p.add_argument("stage")
    p.add_argument("--config", required=True)
    if cluster:
        p.add_argument("--nodes", type=int, help="number of nodes (default: from Slurm, else 1)")
        p.add_argument("--gpus-per-node", type=int, default=None)
        p.add_argument("--nodelist", help="Slurm hostlist, e.g. gpu[01-04] (default node[1-N])")
        p.add_argument("--job-id", default="12345")
        p.add_argument("--sbatch-arg", action="append", default=[], help="extra sbatch option (repeatable)")
    return p.parse_known_args(argv)


def _shape(ns: argparse.Namespace) -> Shape:
    if ns.nodes is None and ns.nodelist is None and ns.gpus_per_node is None:
        try:
            return shape_from_env()
        except PlanError:
            pass
    nodes = expand(ns.nodelist) if ns.nodelist else [f"node{i + 1}" for i in range(ns.nodes or 1)]
    if ns.nodes is not None and ns.nodes != len(nodes):
        raise PlanError(f"--nodes {ns.nodes} but --nodelist has {len(nodes)} hosts")
    if ns.gpus_per_node is not None and ns.gpus_per_node < 0:
        raise PlanError("--gpus-per-node must be >= 0")
    return Shape(nodes=nodes, gpus_per_node=ns.gpus_per_node or 0, job_id=str(ns.job_id))


def _stage_script(stage: str) -> list[str]:
    return [p.replace(str(submit.SLURM_DIR.parent) + "/", "") for p in submit.script_for(stage)]


def _env_words(plan) -> list[str]:
    return [f"{key}={value}" for key, value in train_env(plan).items()]


def cmd_dry_run(argv: list[str]) -> int:
    ns, rest = _stage_args(argv, cluster=True)
    plan = make_plan(ns.stage, ns.config, rest, _shape(ns))
    gres = [f"--gpus-per-node={plan.gpus_per_node}"] if plan.gpus_per_node else []
    b = plan.batch
    print(f"# stage {plan.stage}: {len(plan.nodes)} node(s) x {plan.gpus_per_node} GPU(s); "
          f"train on {plan.num_machines} node(s) = {plan.num_processes} process(es); "
          f"vLLM server: {plan.vllm_node or 'none'}")
    batch = ", ".join(f"{k}={v}" for k, v in b.items())
    print(f"# batch: {batch}")
    print(f"# writes: {plan.output_dir}")
    for note in plan.notes:
        print(f"# note: {note}")
    print(quote(["sbatch", f"--nodes={len(plan.nodes)}", *gres, *SBATCH_DEFAULTS, *ns.sbatch_arg,
                 *_stage_script(plan.stage), "--config", plan.config, *plan.args]))
    if plan.samples_traces:
        print("# traces first, each step its own process: prompts, one sampling shard per GPU, select")
        traces = ["python", "-m", "r1repro.cli", "traces", plan.stage]
        print(quote([*traces, "--prepare", "--config", plan.config, *plan.args]))
        print(quote(trace_sample_command(plan)))
        print(quote([*traces, "--select", "--config", plan.config, *plan.args]))
    if plan.vllm_node:
        print(quote(srun_command(plan, "vllm")) + " &")
        print(f"#   on {plan.vllm_node}: {quote(vllm_command(plan))}")
        print(f"# wait for {health_url(plan)}")
    print(quote(srun_command(plan, "train")))
    for rank, node in enumerate(plan.train_nodes):
        print(f"#   on {node}: {quote(_env_words(plan) + accelerate_command(plan, rank))}")
    if plan.evaluates:
        print("# after the training step has exited (a failed eval leaves the stage done):")
        print(quote(eval_command(plan)))
    else:
        print("# no eval step: eval_num_problems is 0 or there are no eval_tasks")
    return 0


def cmd_plan(argv: list[str]) -> int:
    ns, rest = _stage_args(argv, cluster=True)
    plan = make_plan(ns.stage, ns.config, rest, _shape(ns))
    out = plan.to_dict()
    out["commands"] = {node: accelerate_command(plan, r) for r, node in enumerate(plan.train_nodes)}
    out["train_env"] = train_env(plan)
    out["vllm_command"] = vllm_command(plan) if plan.vllm_node else None
    print(json.dumps(out, indent=2))
    return 0


def cmd_prepare(argv: list[str]) -> int:
    ns, rest = _stage_args(argv, cluster=False)
    port = env_setting("MAIN_PORT")
    plan = make_plan(ns.stage, ns.config, rest, shape_from_env(), main_port=int(port) if port else None)
    if plan.num_machines > 1:
        plan.main_process_ip = node_address(plan.main_process_ip)
    for note in plan.notes:
        print(f"[r1repro] note: {note}", file=sys.stderr)
    print(f"[r1repro] batch: {json.dumps(plan.batch)}", file=sys.stderr)
    values = {
        "R1REPRO_PLAN": json.dumps(plan.to_dict()),
        "R1REPRO_TRAIN_NODES": ",".join(plan.train_nodes),
        "R1REPRO_NUM_TRAIN_NODES": str(len(plan.train_nodes)),
        "R1REPRO_VLLM_NODE": plan.vllm_node or "",
        "R1REPRO_HEALTH_URL": health_url(plan) or "",
        "R1REPRO_OUTPUT_DIR": plan.output_dir or "",
        # The exit code that means "checkpointed on request, requeue me" (r1repro.rundir), for the batch shell.
        "R1REPRO_PREEMPTED_EXIT_CODE": str(PREEMPTED_EXIT_CODE),
    }
    for key, value in values.items():
        print(f"{key}={shlex.quote(value)}")
    # Bash arrays: the batch script runs exactly these job steps.
    print(f"R1REPRO_TRAIN_CMD=({quote(srun_command(plan, 'train'))})")
    print(f"R1REPRO_VLLM_CMD=({quote(srun_command(plan, 'vllm')) if plan.vllm_node else ''})")
    # Trace stages sample before training, the eval runs after it: job steps of their own.
    print(f"R1REPRO_TRACES_CMD=({quote(trace_sample_command(plan)) if plan.samples_traces else ''})")
    # No eval step when the stage would evaluate nothing: it would only start Python and import the stack.
    print(f"R1REPRO_EVAL_CMD=({quote(eval_command(plan)) if plan.evaluates else ''})")
    return 0


def cmd_submit_pipeline(argv: list[str]) -> int:
    p = _parser("submit-pipeline")
    p.add_argument("--config", required=True, help="pipeline recipe (run_dir + stages)")
    p.add_argument("--run-dir", default=None, help="override the pipeline's run_dir")
    p.add_argument("--run_dir", dest="run_dir", action=OldSpelling, help=argparse.SUPPRESS)
    p.add_argument("--only", default=None, help="comma-separated stage names to submit")
    p.add_argument("--sbatch-arg", action="append", default=[],
                   help="sbatch option for every job, or STAGE:OPTION for one stage (repeatable)")
    p.add_argument("--log-dir", default=None)
    p.add_argument("--dry-run", action="store_true")
    ns, rest = p.parse_known_args(argv)
    only = ns.only.split(",") if ns.only else None
    cmds = submit.sbatch_commands(ns.config, ns.run_dir, ns.sbatch_arg, rest, only, ns.log_dir)
    return submit.submit(cmds, dry_run=ns.dry_run)


def cmd_wait_health(argv: list[str]) -> int:
    p = _parser("wait-health")
    p.add_argument("--url", required=True)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--pid", type=int, default=None, help="give up early when this process exits")
    ns = p.parse_args(argv)
    return launch.wait_health(ns.url, ns.timeout, ns.pid)


def cmd_node_exec(argv: list[str]) -> int:
    if len(argv) != 1:
        raise PlanError("usage: r1repro slurm node-exec train|vllm")
    return launch.node_exec(argv[0])


def cmd_train_failure(argv: list[str]) -> int:
    return launch.report_failure()


def cmd_is_done(argv: list[str]) -> int:
    return 0 if launch.is_done(launch.plan_from_env().output_dir) else 1


COMMANDS = {"dry-run": cmd_dry_run, "plan": cmd_plan, "prepare": cmd_prepare,
            "submit-pipeline": cmd_submit_pipeline, "wait-health": cmd_wait_health,
            "node-exec": cmd_node_exec, "is-done": cmd_is_done, "train-failure": cmd_train_failure}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if argv[0] not in COMMANDS:
        print(f"r1repro slurm: unknown command {argv[0]!r} (one of: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except PlanError as e:
        print(f"r1repro slurm: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `r1repro slurm dry-run ... | head`
        sys.stdout = None
        return 0
