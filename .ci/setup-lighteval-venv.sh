#!/usr/bin/env bash
# Create .venv-lighteval (lighteval from PyPI for the `lighteval`-marked parity tests) when it is missing.
#
# lighteval pulls ~145 packages and pins its own versions, so it lives in its own venv, away from the
# main one. torch==2.13.0 is installed first so that pip takes the local CPU wheel instead of a CUDA
# build. Only lighteval's side of the parity test runs here (tests/lighteval_scorer.py); our scores come
# from the main venv, so r1repro is not installed here.
#
# Usage: bash .ci/setup-lighteval-venv.sh [VENV_DIR]   (default: .venv-lighteval at the repository root)
# Idempotent: exits at once when the venv already imports lighteval.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-lighteval}"
python_bin="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import lighteval" >/dev/null 2>&1; then
    echo "setup-lighteval-venv: $venv already has lighteval"
    exit 0
fi

start=$(date +%s)
"$python_bin" -m venv "$venv"
# pip.conf on these machines lists local indexes that lack most packages: drop exactly those warnings.
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
pip=(quiet "$venv/bin/python" -m pip install --quiet --progress-bar off)
"${pip[@]}" --upgrade pip
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" "lighteval==0.13.0"

"$venv/bin/python" -c "import lighteval, latex2sympy2_extended; print('setup-lighteval-venv: lighteval', lighteval.__version__)"
echo "setup-lighteval-venv: done in $(( $(date +%s) - start )) s"
