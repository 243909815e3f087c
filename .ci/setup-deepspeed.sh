#!/usr/bin/env bash
# Install deepspeed into a side folder (.deps-deepspeed) for tests/test_dist_zero3.py, not into the main venv:
# accelerate and transformers take other code paths when deepspeed is importable, and the rest of the suite
# must not see it. `make test` runs the ZeRO-3 tests in a pass of their own with PYTHONPATH (and PATH, for the
# ninja that builds deepspeed's shm op) pointing here.
#
# DS_BUILD_OPS=0 and --no-build-isolation: no op is built at install (its shm op compiles on first use, with
# the g++ `make system-deps` installs); with build isolation pip would first pull a CUDA torch into the build
# environment. --no-deps: deepspeed's other requirements (numpy, packaging, psutil, pydantic, torch, tqdm)
# are the main venv's; the five named below are the ones it lacks.
#
# Usage: bash .ci/setup-deepspeed.sh [DIR]   (default: .deps-deepspeed at the repository root)
# Idempotent: exits at once when DIR already imports deepspeed with the main venv's python.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$root/.deps-deepspeed}"
python_bin="${PYTHON:-$root/.venv/bin/python}"
check=(env PYTHONPATH="$dir" "$python_bin" -c "import deepspeed; print('setup-deepspeed: deepspeed', deepspeed.__version__, 'in', '$dir')")

if [ -f "$dir/.installed" ] && "${check[@]}" >/dev/null 2>&1; then
    echo "setup-deepspeed: $dir already has deepspeed"
    exit 0
fi

start=$(date +%s)
# The range of pyproject.toml's `cluster` extra: the one list of supported versions.
range=$(grep -oE '"deepspeed[<>=][^"]*"' "$root/pyproject.toml" | tr -d '"' | sort -u)
[ "$(wc -l <<<"$range")" = 1 ] || { echo "setup-deepspeed: no single deepspeed range in pyproject.toml" >&2; exit 1; }
rm -rf "$dir"
# pip.conf on these machines lists local indexes that lack most packages: drop exactly those warnings.
DS_BUILD_OPS=0 "$python_bin" -m pip install --quiet --progress-bar off --no-build-isolation --no-deps \
    --target "$dir" "$range" einops hjson msgpack ninja py-cpuinfo \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# Fail here, not in a test, when the result does not import.
"${check[@]}"
touch "$dir/.installed"
echo "setup-deepspeed: done in $(( $(date +%s) - start )) s"
