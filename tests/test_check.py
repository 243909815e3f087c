"""`r1repro check`: every recipe in recipes/ passes; each deliberately broken recipe in
tests/broken_recipes/ fails with exactly the one line its `# expect:` header names. In-process (TRL is
imported once): the whole file runs in well under a minute."""

import builtins
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from r1repro.check import cli as check
from r1repro.slurm.plan import trl_batch
from r1repro.stages.args import at_world_size

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").rglob("*.yaml"))
BROKEN = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "broken_recipes").glob("*.yaml"))
# Recipes whose stage neither their file name nor a pipeline next to them says yet (the tiny
# pipeline does not list the distillation baseline); checked with --stage until it does.
STAGE_NOT_DERIVABLE = {"recipes/tiny/student_base.yaml": "cpt", "recipes/tiny/student_grpo.yaml": "r1zero"}


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # recipes name their files relative to the repository root


def test_the_recipe_tree_is_there():
    assert len(RECIPES) >= 20 and len(BROKEN) >= 15
    assert "recipes/qwen2.5-math-1.5b-distill/distill.yaml" in RECIPES


@pytest.mark.parametrize("path", RECIPES)
def test_every_recipe_passes(path):
    stage = None
    if check.stage_from_name(path) is None and check.stage_from_pipeline(path) is None:
        stage = STAGE_NOT_DERIVABLE.get(path)
    reports = check.check_file(path, stage)
    problems = [f"{r.path}: {e}" for r in reports for e in r.errors]
    assert not problems, "\n".join(problems)
    if not path.startswith(("recipes/tiny/", "recipes/accelerate/", "recipes/smollm2-135m/")):  # CPU recipes
        text = Path(path).read_text()
        assert check.hardware(path) or "stages:" in text, f"{path}: cluster recipes state their `# hardware:`"


def _expected(path: str) -> str:
    m = re.search(r"^# expect: (.+)$", Path(path).read_text(), re.MULTILINE)
    assert m, f"{path} has no '# expect:' line"
    return m.group(1).strip()


@pytest.mark.parametrize("path", BROKEN)
def test_each_broken_recipe_fails_with_its_one_line(path, capsys):
    code = check.main(["--config", path])
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if ": error: " in line]
    assert code == 1
    assert len(errors) == 1, out
    assert errors[0].startswith(f"{path}: error: ")  # names the file
    assert _expected(path) in errors[0], out


def test_distill_batch_epochs_and_schedule_on_one_node_of_eight(capsys):
    path = "recipes/qwen2.5-math-1.5b-distill/distill.yaml"
    assert check.main(["--config", path, "--nodes", "1", "--gpus-per-node", "8", "--num-samples", "800000"]) == 0
    out = capsys.readouterr().out
    assert "8 training process(es) on 1 node(s), recipes/accelerate/zero3.yaml" in out
    assert "batch: 4 per device x 8 processes x 4 accumulation = 128 sequences per optimizer step" in out
    assert "length: 3 epoch(s) x 6250 steps (800000 training rows) = 18750 optimizer steps" in out
    assert ("learning rate: 4e-05 peak, linear warmup over the first 3% of steps = 563 steps, then cosine decay "
            "to 4e-06") in out
    # what the recipe's header tells its reader is what check computes
    header = Path(path).read_text().split("\nrun_dir")[0]
    assert "= 128 sequences per optimizer step; 3 epochs" in header
    assert "learning rate 4e-5 after a linear warmup over the first 3% of steps, cosine decay to 4e-6" in header
    readme = (ROOT / "README.md").read_text()
    if "## Running on a cluster" in readme:
        assert "128 sequences per optimizer step" in readme and "3 epochs" in readme


def test_the_shape_from_the_command_line_wins_over_the_hardware_line():
    path = "recipes/qwen2.5-math-7b/r1zero.yaml"
    assert check.hardware(path) == (2, 8)
    (one_node,) = check.check_file(path, shape=(1, 8))  # server-mode vLLM needs its own node
    assert one_node.errors and "vllm_mode" in one_node.errors[0]
    (three,) = check.check_file(path, shape=(3, 8))  # 2 training nodes: 4 x 16 x 16 = 1024 completions
    assert not three.errors
    assert any("4 per device x 16 processes x 16 accumulation = 1024 completions" in s for s in three.summary)


def test_cli_overrides_are_checked_too():
    (report,) = check.check_file("recipes/qwen2.5-math-7b/r1zero.yaml", overrides=["--num_generations", "24"])
    # 2 nodes x 8 GPUs, one serving vLLM: 8 training processes x 4 per device x 16 accumulation = 512
    assert report.errors == ["cluster 2 node(s) x 8 GPU(s): field 'num_generations': generation_batch_size (512) "
                             "must be divisible by num_generations (24), with 8 training process(es)"]


@pytest.mark.parametrize("spelling", ["--run_dir", "--run_dir=", "--run-dir", "--run-dir="])
def test_every_run_dir_spelling_checks_the_paths_the_stage_uses(tmp_path, spelling):
    run = tmp_path / "run"
    flag = [f"{spelling}{run}"] if spelling.endswith("=") else [spelling, str(run)]
    (report,) = check.check_file("recipes/tiny/r1zero.yaml", overrides=flag)
    (reference,) = check.check_file("recipes/tiny/r1zero.yaml", overrides=["--run_dir", str(run)])
    assert not report.errors and report.lines() == reference.lines()
    assert f"writes: {run}/r1zero (run_dir {run})" in report.summary
    assert f"model_name_or_path: {run}/cpt comes from an earlier stage of the run" in report.notes


def test_trl_derives_the_batch_at_the_cluster_world_size_and_nothing_global_changes():
    from transformers import TrainingArguments
    from trl import GRPOConfig

    before = TrainingArguments.__dict__["world_size"]
    (grpo,) = at_world_size((GRPOConfig,), 16)
    cpu = {"output_dir": "unused", "bf16": False}  # this machine has no GPU; the cluster's would
    args = grpo(**cpu, per_device_train_batch_size=4, gradient_accumulation_steps=16, num_generations=16)
    assert args.world_size == 16 and args.generation_batch_size == 1024 and args.steps_per_generation == 16
    assert trl_batch("r1zero", args, 16)["prompts_per_generation"] == 64
    with pytest.raises(ValueError):  # TRL's own rule: whole groups of num_generations per generation batch
        grpo(**cpu, per_device_train_batch_size=1, num_generations=24, gradient_accumulation_steps=1)
    check.check_file("recipes/qwen2.5-math-7b/r1zero.yaml")
    assert TrainingArguments.__dict__["world_size"] is before and GRPOConfig(**cpu).world_size == 1


def test_stage_from_the_file_name():
    assert check.stage_from_name("x/reasoning_rl.yaml") == "reasoning_rl"
    assert check.stage_from_name("x/r1zero_lora.yaml") == "r1zero"
    assert check.stage_from_name("x/all_scenario_rl-v2.yaml") == "all_scenario_rl"
    assert check.stage_from_name("x/r1zeroish.yaml") is None


def test_a_stage_without_a_module_is_one_clear_line(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "r1repro.trainers.sft":  # the trainer the distill stage runs (r1repro.stages.STAGES)
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(check.importlib, "import_module", lambda name: fake_import(name))
    (report,) = check.check_file("recipes/tiny/distill.yaml")
    assert report.errors == [
        "stage 'distill' is not implemented in this checkout (r1repro/trainers/sft.py is missing)"]


def test_schedule_descriptions():
    assert check.describe_schedule({"learning_rate": 1e-6, "lr_scheduler_type": "constant", "warmup_steps": 5}, None) \
        == "1e-06 constant (warmup_steps ignored: use constant_with_warmup)"
    assert check.describe_schedule({"learning_rate": 2e-5, "lr_scheduler_type": "linear", "warmup_steps": 100}, 1000) \
        == "2e-05 peak, linear warmup over 100 steps, then linear decay to 0"


def test_the_light_modules_import_neither_torch_nor_transformers():
    """The CLI, the pipeline, the Slurm planner (run in sbatch scripts) and `r1repro check` load TRL only
    for a stage that needs it: importing them must not pull torch or transformers in."""
    code = ("import sys, r1repro.check.cli, r1repro.slurm.plan, r1repro.slurm.submit, r1repro.pipeline, r1repro.cli; "
            "print('transformers' in sys.modules, 'torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False"]
