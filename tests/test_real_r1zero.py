"""R1-Zero on SmolLM2-135M-Instruct with vLLM colocate rollouts (issue 21): the recipe behind `make demo-real`
(recipes/smollm2-135m/r1zero_arith.yaml), cut to 2 steps of 8 samples, run as a user runs it (the stage's
command line in .venv-vllm). Learning is measured by `make demo-real` and in the README; this checks the path
that learning depends on: every step's rollouts come from the policy being trained.

TRL logs, per step, the mean |vLLM logprob - policy logprob| of the sampled tokens
(`sampling/sampling_logp_difference/mean`). At step 1 both hold the same weights: the value is the float
floor (oneDNN vs torch kernels). If the weight sync missed, later steps would sample from the initial
weights while the policy moved; their difference would then grow by about the distance the policy moved.
That distance is measured here too (mean |logp| change, initial vs trained, on the trained model's own
greedy answers), with a learning rate large enough that it stands far above the float floor.
Measured with the recipe's seeds 0, 1, 2 (2026-12-04, AMD EPYC, 2 cores, vLLM in its eager CI mode as
tests/conftest.py sets it, 100-133 s each): floor 0.023-0.027, later step 0.025-0.19, policy moved 0.32-7.9:
at least 13.8x the floor (asserted > 5x), and the later step at most 0.24 of the bound floor + moved/4. At lr 1e-4
seed 2 moved only 4.5x the floor (with 2 prompts a step, a step can have no reward variance at all), hence 3e-4.
The previous cut (3 steps of 16, lr 1e-4, inductor) took 333 s alone here and 411-558 s in CI.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1repro.jsonl import read_jsonl
from r1repro.templates import render_prompt

pytestmark = [pytest.mark.real, pytest.mark.vllm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "smollm2-135m" / "r1zero_arith.yaml"
TEST_DATA = ROOT / "recipes" / "smollm2-135m" / "data" / "arith_test.jsonl"
VLLM_PYTHON = Path(os.environ.get("R1REPRO_VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"
STEPS = 2
BATCH = 8  # 2 prompts x 4 generations (the recipe: 16)
LOGP_DIFF = "sampling/sampling_logp_difference/mean"


@pytest.fixture(scope="module")
def base():
    pytest.importorskip("gguf", reason="pip install 'r1repro[real]' (transformers reads the GGUF through gguf)")
    from r1repro.smollm2 import ensure_smollm2

    return str(ensure_smollm2())


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON} is absent: create it with `bash .ci/setup-vllm-venv.sh`")
    run_dir = tmp_path_factory.mktemp("r1zero-real")
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [str(VLLM_PYTHON), "-m", "r1repro.cli", "r1zero", "--config", str(RECIPE), "--run_dir", str(run_dir),
           "--model_name_or_path", base, "--max_steps", str(STEPS), "--per_device_train_batch_size", str(BATCH),
           "--learning_rate", "3e-4",
           "--eval_num_problems", "0", "--save_strategy", "no", "--disable_tqdm", "true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, env=env, cwd=ROOT)
    assert proc.returncode == 0, f"r1zero on SmolLM2 failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    assert "syncing the policy through vLLM's in-place reload" in proc.stdout
    return run_dir / "r1zero", [m for m in read_jsonl(run_dir / "r1zero" / "metrics.jsonl") if LOGP_DIFF in m]


def policy_shift(initial_dir: str, trained_dir: Path, n: int = 4) -> float:
    """Mean |log p_trained - log p_initial| of the tokens the trained policy picks greedily on n held-out
    problems (the distance the policy moved, where it samples)."""
    tok = AutoTokenizer.from_pretrained(trained_dir)
    initial = AutoModelForCausalLM.from_pretrained(initial_dir, dtype=torch.float32)
    policy = AutoModelForCausalLM.from_pretrained(trained_dir, dtype=torch.float32)
    diffs = []
    with torch.inference_mode():
        for row in list(read_jsonl(TEST_DATA))[:n]:
            ids = tok(render_prompt("r1zero_1shot", row["problem"]), return_tensors="pt").input_ids
            out = policy.generate(ids, max_new_tokens=24, do_sample=False, pad_token_id=tok.eos_token_id)
            chosen = out[0, ids.shape[1]:]
            logps = [torch.log_softmax(m(out).logits[0, ids.shape[1] - 1:-1].float(), -1).gather(1, chosen[:, None])
                     for m in (policy, initial)]
            diffs += (logps[0] - logps[1]).abs()[:, 0].tolist()
    return sum(diffs) / len(diffs)


def test_r1zero_trains_a_real_model_on_its_own_vllm_rollouts(base, trained):
    out, logged = trained
    assert [m["step"] for m in logged] == list(range(1, STEPS + 1))
    for m in logged:  # the recipe's rewards ran on real samples
        for key in ("rewards/accuracy/mean", "rewards/format/mean", "frac_reward_zero_std"):
            assert 0.0 <= float(m[key]) <= 1.0, (key, m[key])
    floor = float(logged[0][LOGP_DIFF])
    moved = policy_shift(base, out)
    later = max(float(m[LOGP_DIFF]) for m in logged[1:])
    print(f"logp difference floor {floor:.4f}, later steps max {later:.4f}, policy moved {moved:.4f}")
    assert moved > 5 * floor, f"the policy moved {moved:.3g}, not clearly above the float floor {floor:.3g}"
    # Stale vLLM weights at step 2 would sample from the initial policy, ~1/2 of `moved` away.
    assert later < floor + 0.25 * moved, \
        f"vLLM's samples are {later:.3g} from the policy (floor {floor:.3g}; the policy moved {moved:.3g})"
