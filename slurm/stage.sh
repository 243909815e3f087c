#!/bin/bash
# Any stage by name (for stages without a numbered script, e.g. cpt or dpo):
#   sbatch [sbatch options] slurm/stage.sh STAGE --config recipes/<model>/STAGE.yaml [--field value ...]
#SBATCH --job-name=r1-stage
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --requeue
#SBATCH --signal=B:USR1@900
#SBATCH --open-mode=append
#SBATCH --output=slurm/logs/%x-%j.out
set -euo pipefail

R1REPRO_ROOT=${R1REPRO_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
if [[ ! -f $R1REPRO_ROOT/slurm/lib.sh ]]; then
  echo "r1repro: $R1REPRO_ROOT/slurm/lib.sh not found: submit from the repository root or set R1REPRO_ROOT" >&2
  exit 2
fi
if [[ $# -lt 1 || $1 == --* ]]; then
  echo "r1repro: usage: sbatch slurm/stage.sh STAGE --config recipe.yaml [--field value ...]" >&2
  exit 2
fi
# shellcheck source=slurm/lib.sh
source "$R1REPRO_ROOT/slurm/lib.sh"
r1_run_stage "$@"
