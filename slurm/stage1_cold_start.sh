#!/bin/bash
# Stage 1 (cold start): build the long-CoT set, SFT the base model.
# Usage (from the repository root; add --nodes, --gpus-per-node, --partition, --time as needed):
#   sbatch [sbatch options] slurm/stage1_cold_start.sh --config recipes/<model>/cold_start.yaml [--field value ...]
# Dry run for a cluster shape: r1repro slurm dry-run cold_start --config ... --nodes 4 --gpus-per-node 8
#SBATCH --job-name=r1-cold_start
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --requeue
#SBATCH --signal=B:USR1@900
#SBATCH --open-mode=append
#SBATCH --output=slurm/logs/%x-%j.out
set -euo pipefail

# sbatch runs a copy of this script, so find the repository through the submit directory.
R1REPRO_ROOT=${R1REPRO_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
if [[ ! -f $R1REPRO_ROOT/slurm/lib.sh ]]; then
  echo "r1repro: $R1REPRO_ROOT/slurm/lib.sh not found: submit from the repository root or set R1REPRO_ROOT" >&2
  exit 2
fi
# shellcheck source=slurm/lib.sh
source "$R1REPRO_ROOT/slurm/lib.sh"
r1_run_stage cold_start "$@"
