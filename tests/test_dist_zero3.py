"""DeepSpeed ZeRO-3 on two CPU ranks: `accelerate launch --config_file recipes/accelerate/zero3.yaml
--num_processes 2 --mixed_precision no` (DeepSpeed's CPU accelerator, gloo) runs cpt, distill SFT, r1zero GRPO with
HF generation and with vLLM colocate rollouts, dpo, distill_on_policy and all_scenario_rl with its reward model; each
run finishes once and saves a full model that loads, and all but r1zero log the losses a DDP run of the same
arguments logs (r1zero with vLLM: its engines sample the policy being trained).

deepspeed is not a dependency (pyproject's `cluster` extra has it for GPUs) and stays out of the main venv:
`make test-zero3` installs it into .deps-deepspeed (.ci/setup-deepspeed.sh) and runs this file alone with that
folder on PYTHONPATH; `make test` does the same after its main pass, which leaves this file out. Without
deepspeed these tests skip, unless R1REPRO_REQUIRE_DEEPSPEED=1 (set by that pass) makes the skip a failure.
Its shm communication op is compiled on first use (once, then cached in ~/.cache/torch_extensions; g++ from
`make system-deps`).

FSDP has no counterpart here: accelerate runs it on GPUs only (r1repro refuses `fsdp` under use_cpu,
tests/test_config.py). Each rank runs the stage through a wrapper that records, at its first training step,
what accelerate built: the distributed type, the engine class and the share of the parameters the rank holds.

Marked dist and slow (the vLLM colocate test vllm too)."""

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from dist_helpers import CPT, GRPO, REPO, assert_finished_once, distill_on_policy_args, dpo_pairs, launch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from transformers.integrations import HfDeepSpeedConfig, is_deepspeed_zero3_enabled, unset_hf_deepspeed_config

from r1repro.rewards.reward_model import without_zero3_init
from r1repro.templates import render_prompt
from r1repro.tiny.tasks import addition_rows

HAVE_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None
# CI's ZeRO-3 pass sets it: there, a missing deepspeed is a broken install, not a reason to skip.
REQUIRED = os.environ.get("R1REPRO_REQUIRE_DEEPSPEED") == "1"
if REQUIRED and not HAVE_DEEPSPEED:
    pytest.fail("R1REPRO_REQUIRE_DEEPSPEED=1 but deepspeed does not import: run `make deepspeed-deps`", pytrace=False)
pytestmark = [pytest.mark.dist, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_DEEPSPEED, reason="deepspeed is not installed")]

ZERO3 = "recipes/accelerate/zero3.yaml"
VLLM_PYTHON = Path(os.environ.get("R1REPRO_VLLM_VENV", REPO / ".venv-vllm")) / "bin" / "python"
# ZeRO-3 against DDP, relative: 30x the largest difference measured (docs/architecture.md, measured facts).
RTOL = 2e-5
FEW_STEPS = ["--logging_steps", "1", "--save_steps", "1000", "--eval_num_problems", "0", "--disable_tqdm", "true"]
PROBED_CLI = '''import json, os, sys
import transformers
from r1repro.cli import main

_step = transformers.Trainer.training_step


def training_step(self, model, *args, **kwargs):
    if not getattr(self, "_probed", False):
        self._probed = True
        params, plugin = list(model.parameters()), getattr(self.accelerator.state, "deepspeed_plugin", None)
        record = {"type": str(self.accelerator.distributed_type).split(".")[-1], "engine": type(model).__name__,
                  "zero_stage": plugin.zero_stage if plugin else None,
                  "held": sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in params),
                  "full": sum(getattr(p, "ds_numel", p.numel()) for p in params)}
        with open(os.path.join(os.environ["PROBE_DIR"], f"rank{os.environ['RANK']}.json"), "w") as f:
            json.dump(record, f)
    return _step(self, model, *args, **kwargs)


transformers.Trainer.training_step = training_step
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def zero3(stage: str, args: list[str], tmp_path, python: str = sys.executable, env: dict | None = None):
    """The stage on 2 ranks under ZeRO-3 (under `python`, with `env` added), asserted sharded on both ranks; the
    launch's result."""
    (tmp_path / "probed_cli.py").write_text(PROBED_CLI)
    (tmp_path / "probe").mkdir()
    result = launch(stage, *args, accelerate_config=ZERO3, entry=(str(tmp_path / "probed_cli.py"),),
                    python=python, env={"PROBE_DIR": str(tmp_path / "probe"), **(env or {})})
    assert result.returncode == 0, result.log[-3000:]
    for rank in (0, 1):
        seen = json.loads((tmp_path / "probe" / f"rank{rank}.json").read_text())
        assert (seen["type"], seen["engine"], seen["zero_stage"]) == ("DEEPSPEED", "DeepSpeedEngine", 3), seen
        assert seen["held"] < 0.6 * seen["full"], f"rank {rank} holds its whole model: {seen}"
    return result


def test_sft_under_zero3_on_two_ranks(dist_base, tmp_path):
    """distill SFT: ZeRO-3 trains as DDP does (the same losses both ways: docs/architecture.md, measured facts)."""
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"problem": r["problem"], "response": r["response"]}) + "\n"
                              for r in addition_rows("train", 64)))
    args = ["--config", "recipes/tiny/distill.yaml", "--run_dir", str(dist_base.run_dir),
            "--model_name_or_path", str(dist_base.run_dir / "cpt"), "--source_dataset", str(traces),
            "--per_device_train_batch_size", "4", "--max_steps", "3", "--save_steps", "1000", "--logging_steps", "1",
            "--eval_num_problems", "0", "--disable_tqdm", "true"]
    sharded = zero3("distill", [*args, "--output_dir", str(tmp_path / "zero3")], tmp_path)
    losses = [m["loss"] for m in assert_finished_once(sharded, "distill", tmp_path / "zero3") if "loss" in m]
    ddp = launch("distill", *args, "--output_dir", str(tmp_path / "ddp"))
    ddp_losses = [m["loss"] for m in assert_finished_once(ddp, "distill", tmp_path / "ddp") if "loss" in m]
    assert len(losses) == 3 and losses == pytest.approx(ddp_losses, rel=1e-3)


def test_r1zero_under_zero3_on_two_ranks(dist_base, tmp_path):
    """GRPO with HF generation (TRL gathers the ZeRO-3 shards to generate): finishes and the saved full model
    has moved from the base (a length reward gives the micro model something to learn)."""
    (tmp_path / "length.py").write_text("def length(completions, **kwargs):\n"
                                        "    return [len(c) / 16 for c in completions]\n")
    out = tmp_path / "r1zero"
    result = zero3("r1zero", ["--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(dist_base.run_dir),
                              "--output_dir", str(out), *GRPO, "--max_steps", "3", "--num_generations", "4",
                              "--per_device_train_batch_size", "8", "--learning_rate", "0.05",
                              "--mask_truncated_completions", "false",
                              "--rewards", f"[{{name: format}}, {{name: {tmp_path / 'length.py'}:length}}]"], tmp_path)
    assert len([m for m in assert_finished_once(result, "r1zero", out) if "loss" in m]) == 3
    base, trained = (AutoModelForCausalLM.from_pretrained(p) for p in (dist_base.run_dir / "cpt", out))
    assert max((p - q).abs().max().item() for p, q in zip(base.parameters(), trained.parameters())) > 1e-3
    assert all(torch.isfinite(p).all() for p in trained.parameters())



LOGP_DIFF = "sampling/sampling_logp_difference/mean"


def policy_shift(initial_dir: Path, trained_dir: Path, n: int = 4) -> float:
    """Mean |log p_trained - log p_initial| of the tokens the trained policy picks greedily on n held-out problems:
    how far the policy moved, where it samples (tests/test_real_r1zero.py measures it the same way)."""
    tokenizer = AutoTokenizer.from_pretrained(trained_dir)
    initial, policy = (AutoModelForCausalLM.from_pretrained(path) for path in (initial_dir, trained_dir))
    diffs = []
    with torch.inference_mode():
        for row in addition_rows("test", n):
            ids = tokenizer(render_prompt("tiny", row["problem"]), return_tensors="pt").input_ids
            out = policy.generate(ids, max_new_tokens=16, do_sample=False)
            chosen = out[0, ids.shape[1]:, None]
            logps = [torch.log_softmax(m(out).logits[0, ids.shape[1] - 1:-1], -1).gather(1, chosen)
                     for m in (policy, initial)]
            diffs += (logps[0] - logps[1]).abs()[:, 0].tolist()
    return sum(diffs) / len(diffs)


@pytest.mark.vllm
def test_r1zero_vllm_colocate_under_zero3_on_two_ranks(dist_base, tmp_path):
    """GRPO with vLLM colocate rollouts (one engine per rank) under ZeRO-3: each rank's engine must receive the
    whole policy, gathered one parameter at a time (TRL's `_iter_named_params`, fed to vLLM's in-place reload by
    r1repro/generation/vllm_sync.py), not its shard. TRL logs per step the mean |vLLM logprob - policy logprob| of
    the sampled tokens: at step 1 the float floor, later as small while the policy moves far (with the sync
    switched off the later steps read ~2-3, as far as the policy moved: docs/architecture.md, measured facts).

    Runs under .venv-vllm's interpreter with deepspeed from the side folder on PYTHONPATH (this file's pass); its
    shm op is built into a cache folder of its own (the main venv's build would be redone: other include paths)."""
    if not VLLM_PYTHON.exists():
        (pytest.fail if REQUIRED else pytest.skip)(f"{VLLM_PYTHON} is absent: create it with `make vllm-venv`")
    (tmp_path / "digits.py").write_text("def digits(completions, **kwargs):\n"
                                        "    return [sum(ch.isdigit() for ch in c) / 4 for c in completions]\n")
    out, base = tmp_path / "r1zero", dist_base.run_dir / "cpt"
    extensions = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch_extensions" / "venv-vllm"
    result = zero3("r1zero", ["--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(dist_base.run_dir),
                              "--output_dir", str(out), *GRPO, "--max_steps", "3", "--num_generations", "4",
                              "--per_device_train_batch_size", "8", "--learning_rate", "0.05",
                              "--mask_truncated_completions", "false", "--use_vllm", "true", "--vllm_mode", "colocate",
                              "--vllm_gpu_memory_utilization", "0.2", "--vllm_max_model_length", "256",
                              "--rewards", f"[{{name: format}}, {{name: {tmp_path / 'digits.py'}:digits}}]"],
                   tmp_path, python=str(VLLM_PYTHON),
                   env={"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
                        "TOKENIZERS_PARALLELISM": "false", "TORCH_EXTENSIONS_DIR": str(extensions)})
    logged = [m for m in assert_finished_once(result, "r1zero", out) if "loss" in m]
    assert result.log.count("syncing the policy through vLLM's in-place reload") == 2  # one engine per rank
    assert [m["step"] for m in logged] == [1, 2, 3]
    assert all(math.isfinite(m[key]) for m in logged for key in ("loss", "grad_norm", LOGP_DIFF)), logged
    floor, later, moved = logged[0][LOGP_DIFF], max(m[LOGP_DIFF] for m in logged[1:]), policy_shift(base, out)
    assert moved > 10 * floor, f"the policy moved {moved:.3g}, not clearly above the float floor {floor:.3g}"
    assert later < 0.1 * moved, f"vLLM samples {later:.3g} from the policy (floor {floor:.3g}, moved {moved:.3g})"


def zero3_and_ddp(stage: str, args: list[str], tmp_path, *ddp_args: str) -> tuple[list[dict], list[dict]]:
    """The stage under ZeRO-3 and under DDP (torchrun, plus `ddp_args`), both on 2 ranks, each asserted
    finished once: their logged training steps."""
    sharded = zero3(stage, [*args, "--output_dir", str(tmp_path / "zero3")], tmp_path)
    ddp = launch(stage, *args, *ddp_args, "--output_dir", str(tmp_path / "ddp"))
    return ([m for m in assert_finished_once(sharded, stage, tmp_path / "zero3") if "loss" in m],
            [m for m in assert_finished_once(ddp, stage, tmp_path / "ddp") if "loss" in m])


def test_cpt_under_zero3_on_two_ranks(tmp_path):
    """cpt building its tiny model (rank 0 writes it, the others load it after) and training it from scratch:
    the same losses as DDP's."""
    args = [*CPT, "--run_dir", str(tmp_path / "run"), "--max_steps", "3"]
    sharded, ddp = zero3_and_ddp("cpt", args, tmp_path)
    losses = [m["loss"] for m in sharded]
    assert len(losses) == 3 and len(set(losses)) == 3 and losses == pytest.approx([m["loss"] for m in ddp], rel=RTOL)


def test_dpo_under_zero3_on_two_ranks(dist_base, tmp_path):
    """Full DPO: TRL shards the frozen reference model too (its own DeepSpeed engine). The same losses as DDP's
    (bound: RTOL, docs/architecture.md, measured facts); a learning rate high enough that they move."""
    args = ["--config", "recipes/tiny/dpo.yaml", "--run_dir", str(dist_base.run_dir), "--model_name_or_path",
            str(dist_base.run_dir / "cpt"), "--pairs", str(dpo_pairs(tmp_path)), "--max_steps", "3",
            "--per_device_train_batch_size", "4", "--max_length", "128", "--learning_rate", "1e-3", *FEW_STEPS]
    sharded, ddp = zero3_and_ddp("dpo", args, tmp_path)
    losses = [m["loss"] for m in sharded]
    assert len(losses) == 3 and len(set(losses)) == 3 and losses == pytest.approx([m["loss"] for m in ddp], rel=RTOL)


def test_distill_on_policy_under_zero3_on_two_ranks(dist_base, tmp_path):
    """On-policy distillation: the student generates with its gathered shards, the teacher is sharded by TRL
    (its lm_head gathered for the chunked divergence); the same losses as DDP's."""
    args = [*distill_on_policy_args(dist_base, tmp_path, tmp_path / "unused"), "--num_train_samples", "32",
            "--max_steps", "3", *FEW_STEPS]
    sharded, ddp = zero3_and_ddp("distill_on_policy", args, tmp_path)
    losses = [m["loss"] for m in sharded]
    assert len(losses) == 3 and len(set(losses)) == 3 and losses == pytest.approx([m["loss"] for m in ddp], rel=RTOL)


def test_all_scenario_rl_under_zero3_on_two_ranks(dist_base, tmp_path):
    """The reward model trained in the stage under ZeRO-3 (a first DeepSpeed trainer in the process, then
    GRPO's), saved whole, then loaded whole on each rank to score the general rows: every score succeeds
    (before the fix the second trainer was refused, and the reward model came out partitioned and failed every
    row). DDP given the same reward model (its new score head is drawn differently under zero.Init) logs the
    same rewards and losses."""
    args = ["--config", "recipes/tiny/all_scenario_rl.yaml", "--run_dir", str(dist_base.run_dir),
            "--model_name_or_path", str(dist_base.run_dir / "cpt"), *GRPO, "--num_train_samples", "16",
            "--general_fraction", "0.5", "--rm_num_pairs", "32", "--rm_max_steps", "2", "--rm_batch_size", "8",
            "--max_steps", "3", "--per_device_train_batch_size", "4", "--num_generations", "4"]
    sharded, ddp = zero3_and_ddp("all_scenario_rl", args, tmp_path,
                                 "--reward_model_path", str(tmp_path / "zero3" / "reward_model"))
    assert len(sharded) == 3 and all(m["rewards/reward_model/errors"] == 0 for m in sharded), sharded
    scored = [m["rewards/reward_model/mean"] for m in sharded if m["rewards/reward_model/mean"] is not None]
    assert scored and all(math.isfinite(r) for r in scored), sharded
    for key in ("reward", "rewards/reward_model/mean", "loss"):
        assert [m[key] for m in sharded] == pytest.approx([m[key] for m in ddp], rel=RTOL, abs=1e-9), key


def test_reward_model_loads_whole_under_a_zero3_config_and_the_config_comes_back(micro_model):
    """In-process: with a stage-3 DeepSpeed config registered (as every TrainingArguments under the ZeRO-3
    launch registers one), `without_zero3_init` loads plain parameters, then registers the config again."""
    registered = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1})
    assert is_deepspeed_zero3_enabled()
    try:
        with without_zero3_init():
            assert not is_deepspeed_zero3_enabled()
            net = AutoModelForSequenceClassification.from_pretrained(micro_model, num_labels=1)
        assert is_deepspeed_zero3_enabled()
        assert not any(hasattr(p, "ds_id") for p in net.parameters())
    finally:
        unset_hf_deepspeed_config()
        del registered
