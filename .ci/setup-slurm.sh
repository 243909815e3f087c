#!/usr/bin/env bash
# Installs what the `slurm` tests need on a Debian/Ubuntu CI machine (as root): slurm-wlm and munge
# (the tests also install them on demand), and shellcheck for the script lint test. Starts nothing:
# the tests run their own throwaway cluster from a temporary directory and stop it by PID.
set -euo pipefail
need=()
command -v slurmctld >/dev/null || need+=(slurm-wlm)
command -v munged >/dev/null || need+=(munge)
command -v shellcheck >/dev/null || need+=(shellcheck)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
