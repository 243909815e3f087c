#!/bin/bash
# Evaluate checkpoints (pass@1 over k samples, cons@k, pass@k, format rate, ...) on one node:
#   sbatch [sbatch options] slurm/eval.sh [r1repro eval arguments]
# The arguments are those of `r1repro eval --help`.
#SBATCH --job-name=r1-eval
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm/logs/%x-%j.out
set -euo pipefail

R1REPRO_ROOT=${R1REPRO_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
if [[ ! -f $R1REPRO_ROOT/slurm/lib.sh ]]; then
  echo "r1repro: $R1REPRO_ROOT/slurm/lib.sh not found: submit from the repository root or set R1REPRO_ROOT" >&2
  exit 2
fi
# shellcheck source=slurm/lib.sh
source "$R1REPRO_ROOT/slurm/lib.sh"
r1_setup_env
r1_log "job ${SLURM_JOB_ID:-?}: r1repro eval $*"
# Evaluation keeps no checkpoint: a preempted eval job is requeued by Slurm and starts over.
srun --nodes=1 --ntasks=1 python -m r1repro.cli eval "$@"
