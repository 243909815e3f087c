#!/bin/bash
# The last job of a chain submitted by `r1repro slurm submit-pipeline`: `r1repro pipeline` over
# the finished stages, which skips every stage whose DONE.json matches its config and writes
# <run_dir>/report.json and report.md. Usage:
#   sbatch [--dependency=afterok:<last stage job>] slurm/report.sh --config PIPELINE --run-dir D [--field value ...]
#SBATCH --job-name=r1-report
#SBATCH --nodes=1
#SBATCH --ntasks=1
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
r1_log "job ${SLURM_JOB_ID:-?}: r1repro pipeline $*"
python -m r1repro.cli pipeline "$@"
