#!/usr/bin/env bash
# Create .venv-cluster: the library versions a GPU cluster gets from `pip install -e '.[cluster]'`,
# on CPU torch and without vLLM, so CI can check the recipes and run the unit tests under them.
#
# Step 1 resolves the cluster extra exactly as a cluster user would (`pip install --dry-run
# --report`, metadata only; torch is pinned to 2.13.0, which pip finds here as the local +cpu wheel,
# so no CUDA library is downloaded). vLLM pins transformers to an older minor than our main venv
# has, which is the whole point of this venv. Step 2 installs r1repro[dev] with exactly the
# resolved transformers / trl / peft / accelerate / datasets / math-verify (a constraints file),
# CPU torch and no vLLM or DeepSpeed (both need CUDA to be useful and neither is imported by
# `r1repro check` or the unit tests).
#
# Usage: bash .ci/setup-cluster-venv.sh [VENV_DIR]   (default: .venv-cluster at the repository root)
# Idempotent: exits at once when the venv imports r1repro and was built from this pyproject.toml.
# The resolved set is printed and kept in VENV_DIR/cluster-resolved.txt.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv-cluster}"
python_bin="${PYTHON:-python3}"
stamp="$venv/.pyproject.sha256"
want_stamp="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_stamp" ] \
    && "$venv/bin/python" -c "import trl, r1repro" >/dev/null 2>&1; then
    echo "setup-cluster-venv: $venv is up to date:" $(cat "$venv/cluster-resolved.txt")
    exit 0
fi

start=$(date +%s)
"$python_bin" -m venv "$venv"
# pip.conf on these machines lists local indexes that lack most packages: pip warns once per package
# about each; keep the log readable by dropping exactly those warnings.
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet "$venv/bin/python" -m pip install --quiet --progress-bar off --upgrade pip

# 1. What a cluster install resolves to (fails here, loudly, if the extra cannot be resolved).
report="$(mktemp)"
trap 'rm -f "$report" "$report.constraints"' EXIT
quiet "$venv/bin/python" -m pip install --quiet --dry-run --ignore-installed --report "$report" \
    "torch==2.13.0" -e "$root[cluster]"
"$venv/bin/python" - "$report" "$report.constraints" <<'EOF'
import json, sys
pinned = ("transformers", "trl", "peft", "accelerate", "datasets", "math-verify", "vllm", "deepspeed")
resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.load(open(sys.argv[1]))["install"]}
missing = [name for name in pinned if name not in resolved]
if missing:
    sys.exit(f"setup-cluster-venv: the cluster extra did not resolve {missing}")
# vllm and deepspeed are not installed here; they are listed so the log says what a cluster gets.
with open(sys.argv[2], "w") as out:
    for name in pinned[:6]:
        out.write(f"{name}=={resolved[name]}\n")
print("setup-cluster-venv: cluster extra resolves to", " ".join(f"{n}=={resolved[n]}" for n in pinned))
EOF

# 2. Those versions, CPU torch, our dev extra; r1repro editable so tests import this checkout.
quiet "$venv/bin/python" -m pip install --quiet --progress-bar off -c "$report.constraints" \
    "torch==2.13.0" -e "$root[dev]"
"$venv/bin/python" -m pip uninstall --yes --quiet vllm deepspeed >/dev/null 2>&1 || true

# Fail here, not in a test, when the result does not import or is not the resolved set.
"$venv/bin/python" - "$report.constraints" <<'EOF'
import importlib.metadata as md, sys
wrong = []
for line in open(sys.argv[1]):
    name, version = line.strip().split("==")
    if md.version(name) != version:
        wrong.append(f"{name} {md.version(name)} (resolved {version})")
if wrong:
    sys.exit("setup-cluster-venv: installed versions differ from the cluster resolve: " + ", ".join(wrong))
import torch, transformers, trl, r1repro  # noqa: F401
EOF
cp "$report.constraints" "$venv/cluster-resolved.txt"
echo "$want_stamp" > "$stamp"
echo "setup-cluster-venv: done in $(( $(date +%s) - start )) s:" $(cat "$venv/cluster-resolved.txt")
