# shellcheck shell=bash
# The body shared by the stage scripts (sourced, not run). The decisions (nodes, ranks, vLLM node,
# batch sizes, command lines) are made in Python (`r1repro slurm prepare`), the same code that
# `r1repro slurm dry-run` prints; this file only runs the steps and handles signals.

r1_log() { echo "[r1repro $(date +%H:%M:%S)] $*"; }

r1_die() {
  echo "r1repro: $*" >&2
  exit 2
}

# Environment setup: slurm/env.sh (or $R1REPRO_ENV instead), then slurm/env.local.sh if present.
r1_setup_env() {
  local env_file=${R1REPRO_ENV:-$R1REPRO_ROOT/slurm/env.sh}
  [[ -f $env_file ]] || r1_die "environment file $env_file not found (R1REPRO_ENV)"
  # shellcheck disable=SC1090
  source "$env_file"
  if [[ -z ${R1REPRO_ENV:-} && -f $R1REPRO_ROOT/slurm/env.local.sh ]]; then
    # shellcheck disable=SC1091
    source "$R1REPRO_ROOT/slurm/env.local.sh"
  fi
  r1_old_names
}

# Settings this shell reads that users set under their old R1_ names: still honoured, with one line on stderr.
# (Python reads R1REPRO_GPUS_PER_NODE and R1REPRO_MAIN_PORT itself: r1repro.slurm.plan.env_setting.)
r1_old_names() {
  local name old new
  for name in DRY_EXEC VLLM_TIMEOUT; do
    old=R1_$name new=R1REPRO_$name
    if [[ -n ${!old:-} && -z ${!new:-} ]]; then
      echo "r1repro: $old is deprecated; set $new instead" >&2
      export "$new=${!old}"
    fi
  done
}

R1REPRO_REQUEUE=0
R1REPRO_TERM=0
R1REPRO_TRAPPED=0
R1REPRO_TRAIN_PID=
R1REPRO_VLLM_PID=
# Set by `r1repro slurm prepare`:
R1REPRO_TRAIN_CMD=()
R1REPRO_VLLM_CMD=()
R1REPRO_TRACES_CMD=()
R1REPRO_EVAL_CMD=()
R1REPRO_HEALTH_URL=
R1REPRO_PREEMPTED_EXIT_CODE=

# USR1 is our own warning before the time limit (--signal=B:USR1@...): checkpoint, then requeue.
# TERM comes from scancel or from Slurm preempting the job: checkpoint if there is time, but never
# requeue (a cancelled job must stay cancelled; PreemptMode=REQUEUE requeues by itself).
# Either way the training step gets USR1: srun forwards it to node-exec on every node, which asks
# the trainer to save a checkpoint and exit.
r1_on_usr1() {
  R1REPRO_REQUEUE=1
  r1_forward "USR1 (time limit near)"
}

r1_on_term() {
  R1REPRO_TERM=1
  r1_forward "TERM (cancelled or preempted)"
}

r1_forward() {
  R1REPRO_TRAPPED=1
  r1_log "got $1: asking the training step to checkpoint and stop"
  if [[ -n $R1REPRO_TRAIN_PID ]]; then
    kill -USR1 "$R1REPRO_TRAIN_PID" 2>/dev/null || true
  fi
}

r1_stop_vllm() {
  if [[ -n $R1REPRO_VLLM_PID ]]; then
    kill "$R1REPRO_VLLM_PID" 2>/dev/null || true
    wait "$R1REPRO_VLLM_PID" 2>/dev/null || true
    R1REPRO_VLLM_PID=
  fi
}

r1_requeue() {
  r1_log "$1: requeueing job $SLURM_JOB_ID"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    r1_log "requeue refused (was the job submitted with --no-requeue?); rerun the same command to resume"
    exit "$R1REPRO_PREEMPTED_EXIT_CODE"
  fi
  exit 0
}

# r1_run_stage STAGE --config recipe.yaml [--field value ...]
r1_run_stage() {
  local stage=$1
  shift
  # From the start: an untrapped USR1 would kill this shell and lose the requeue.
  trap r1_on_usr1 USR1
  trap r1_on_term TERM
  r1_setup_env
  r1_log "job ${SLURM_JOB_ID:-?} restart ${SLURM_RESTART_COUNT:-0}: stage $stage on ${SLURM_JOB_NODELIST:-?}: $*"
  local vars
  vars=$(python -m r1repro.slurm prepare "$stage" "$@") || exit 2
  # Defines R1REPRO_PLAN, R1REPRO_TRAIN_CMD, R1REPRO_VLLM_CMD, R1REPRO_TRACES_CMD, R1REPRO_EVAL_CMD,
  # R1REPRO_HEALTH_URL, R1REPRO_OUTPUT_DIR, R1REPRO_PREEMPTED_EXIT_CODE (all shell-quoted).
  eval "$vars"
  export R1REPRO_PLAN

  if [[ -n $R1REPRO_HEALTH_URL ]]; then
    r1_log "vLLM server: ${R1REPRO_VLLM_CMD[*]}"
    "${R1REPRO_VLLM_CMD[@]}" &
    R1REPRO_VLLM_PID=$!
    if [[ ${R1REPRO_DRY_EXEC:-0} == 1 ]]; then
      wait "$R1REPRO_VLLM_PID"
      R1REPRO_VLLM_PID=
    elif ! python -m r1repro.slurm wait-health --url "$R1REPRO_HEALTH_URL" \
      --timeout "${R1REPRO_VLLM_TIMEOUT:-900}" --pid "$R1REPRO_VLLM_PID"; then
      r1_stop_vllm
      exit 1
    fi
  fi
  # Signalled before training started: nothing to checkpoint.
  if [[ $R1REPRO_TERM == 1 ]]; then
    r1_stop_vllm
    exit 143
  elif [[ $R1REPRO_REQUEUE == 1 ]]; then
    r1_stop_vllm
    r1_requeue "signalled before training started"
  fi

  # Trace stages: sample before training, as job steps of their own (never in the trainer):
  # prompts here, one sampling shard per GPU on every node, then score and filter here.
  if (( ${#R1REPRO_TRACES_CMD[@]} )); then
    r1_log "traces: ${R1REPRO_TRACES_CMD[*]}"
    python -m r1repro.cli traces "$stage" --prepare "$@" || exit 2
    if [[ ${R1REPRO_DRY_EXEC:-0} != 1 ]]; then
      "${R1REPRO_TRACES_CMD[@]}" || { r1_log "trace sampling failed; rerun the job to resume it"; exit 1; }
      python -m r1repro.cli traces "$stage" --select "$@" || exit 1
    fi
  fi

  r1_log "training: ${R1REPRO_TRAIN_CMD[*]}"
  # The trainer never evaluates: the eval is a job step of its own once training has exited.
  export R1REPRO_STAGE_EVAL=0
  "${R1REPRO_TRAIN_CMD[@]}" &
  R1REPRO_TRAIN_PID=$!
  local rc
  while :; do
    # A trapped signal interrupts `wait`; wait again for the step's real exit status.
    R1REPRO_TRAPPED=0
    rc=0
    wait "$R1REPRO_TRAIN_PID" || rc=$?
    [[ $R1REPRO_TRAPPED == 1 ]] || break
  done
  trap - USR1 TERM
  r1_stop_vllm

  # The preemption exit code without a TERM: the trainer checkpointed on request (ours, or `scancel -s USR1`
  # on the steps).
  if [[ $R1REPRO_TERM == 0 ]] && { [[ $rc -eq $R1REPRO_PREEMPTED_EXIT_CODE ]] ||
    { [[ $R1REPRO_REQUEUE == 1 ]] && ! python -m r1repro.slurm is-done; }; }; then
    r1_requeue "stage $stage stopped at a checkpoint (exit $rc)"
  fi
  # Several training nodes: one line naming the node whose trainer failed first (each node recorded its exit).
  if [[ $rc -ne 0 && ${R1REPRO_NUM_TRAIN_NODES:-1} -gt 1 ]]; then
    python -m r1repro.slurm train-failure || true
  fi
  r1_log "stage $stage finished with exit code $rc"
  # The eval, after the trainer has exited and released its GPUs. A failed eval is logged, not fatal:
  # the stage is done (DONE.json), so the afterok chain goes on; rerun it with slurm/eval.sh or
  # `r1repro stage-eval STAGE --config ...`.
  if [[ $rc -eq 0 && ${R1REPRO_DRY_EXEC:-0} != 1 ]]; then
    if (( ${#R1REPRO_EVAL_CMD[@]} )); then
      r1_log "eval: ${R1REPRO_EVAL_CMD[*]}"
      "${R1REPRO_EVAL_CMD[@]}" || r1_log "eval of stage $stage failed (the stage itself is done): r1repro stage-eval $stage $*"
    else
      r1_log "no eval step (eval_num_problems 0 or no eval_tasks)"
    fi
  fi
  exit "$rc"
}
