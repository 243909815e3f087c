"""Recipe parsing: YAML + CLI overrides through TrlParser, and one clear line per mistake."""

from pathlib import Path

import pytest
from transformers import TrainingArguments

from r1repro import rundir
from r1repro.config import (
    DEFAULT_RUN_DIR,
    ConfigError,
    RunArgs,
    installed_field_name,
    load_recipe,
    parse_config,
)
from r1repro.pipeline import load_pipeline, stage_argv, stage_state
from r1repro.stages import cpt, part_types
from r1repro.stages.runner import run_stage
from r1repro.trainers import grpo


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GRPO_OK = """
run_dir: {run_dir}
output_dir: ${{run_dir}}/r1zero
model_name_or_path: ${{run_dir}}/cpt
num_generations: 4
per_device_train_batch_size: 8
learning_rate: 3e-5
use_cpu: true
bf16: false
rewards:
  - {{name: format}}
  - {{name: accuracy, weight: 2.0}}
"""


def parse_grpo(tmp_path, text, *cli):
    instances, recipe = parse_config(part_types(grpo.ARGS), ["--config", write(tmp_path, text), *cli])
    return instances[:6], recipe  # the seventh, DynamicSamplingArgs, is tested in test_dynamic_sampling.py


def test_yaml_values_and_run_dir_expansion(tmp_path):
    (run, data, rewards, evals, args, model), _ = parse_grpo(tmp_path, GRPO_OK.format(run_dir=tmp_path / "run"))
    assert args.output_dir == f"{tmp_path}/run/r1zero"
    assert model.model_name_or_path == f"{tmp_path}/run/cpt"
    assert args.learning_rate == pytest.approx(3e-5)  # YAML 1.1 reads 3e-5 as a string; it must still parse
    assert rewards.rewards == [{"name": "format"}, {"name": "accuracy", "weight": 2.0}]


def test_cli_overrides_yaml_including_run_dir(tmp_path):
    text = GRPO_OK.format(run_dir="runs/a")
    (run, data, rewards, evals, args, model), _ = parse_grpo(
        tmp_path, text, "--run_dir", "runs/b", "--learning_rate", "1e-4", "--rewards", "{name: format, weight: 3}"
    )
    assert run.run_dir == "runs/b"
    assert args.output_dir == "runs/b/r1zero"
    assert args.learning_rate == pytest.approx(1e-4)
    assert rewards.rewards == [{"name": "format", "weight": 3}]


def run_dir_flag(spelling: str, run_dir) -> list[str]:
    """The run directory on the command line in one of the spellings TRL's parser accepts."""
    return [f"{spelling}{run_dir}"] if spelling.endswith("=") else [spelling, str(run_dir)]


RUN_DIR_SPELLINGS = ["--run_dir", "--run_dir=", "--run-dir", "--run-dir="]


@pytest.mark.parametrize("spelling", RUN_DIR_SPELLINGS)
def test_every_run_dir_spelling_moves_every_path(tmp_path, spelling):
    """Issue 25: only `--run_dir X` used to reach the `${run_dir}` expansion; the others left the recipe's paths."""
    text = GRPO_OK.format(run_dir="runs/a") + "eval_tasks: [{name: r, dataset: '${run_dir}/test.jsonl'}]\n"
    (run, _, _, evals, args, model), _ = parse_grpo(tmp_path, text, *run_dir_flag(spelling, "runs/b"))
    assert run.run_dir == "runs/b"
    assert (args.output_dir, model.model_name_or_path) == ("runs/b/r1zero", "runs/b/cpt")
    assert evals.eval_tasks == [{"name": "r", "dataset": "runs/b/test.jsonl"}]


@pytest.mark.parametrize("spelling", RUN_DIR_SPELLINGS)
def test_output_dir_defaults_to_the_stage_folder_of_the_run(tmp_path, spelling):
    text = GRPO_OK.format(run_dir="runs/a").replace("output_dir: ${run_dir}/r1zero\n", "")
    recipe = write(tmp_path, text)
    (_, _, _, _, args, _, _), _ = parse_config(part_types(grpo.ARGS), ["--config", recipe], stage="r1zero")
    assert args.output_dir == "runs/a/r1zero"  # not TrainingArguments' ./trainer_output
    argv = ["--config", recipe, *run_dir_flag(spelling, "runs/b")]
    (_, _, _, _, args, _, _), _ = parse_config(part_types(grpo.ARGS), argv, stage="r1zero")
    assert args.output_dir == "runs/b/r1zero"


def test_a_recipe_output_dir_outside_a_given_run_dir_is_refused(tmp_path):
    """A recipe that fixes output_dir (no ${run_dir}) would write into another run; an explicit --output_dir
    is the user's choice and stands."""
    text = GRPO_OK.format(run_dir="runs/a").replace("${run_dir}/r1zero", "runs/a/r1zero")
    with pytest.raises(ConfigError) as err:
        parse_grpo(tmp_path, text, "--run-dir", "runs/b")
    assert str(err.value) == (f"{tmp_path}/recipe.yaml: output_dir runs/a/r1zero is outside the run directory "
                              "runs/b given on the command line; write it as ${run_dir}/<name> in the recipe, "
                              "or pass --output_dir")
    assert err.value.field == "output_dir"
    (_, _, _, _, args, _), _ = parse_grpo(tmp_path, text)  # the recipe's own run_dir: its paths are its own
    assert args.output_dir == "runs/a/r1zero"
    (_, _, _, _, args, _), _ = parse_grpo(tmp_path, text, "--run-dir", "runs/b", "--output_dir", "elsewhere")
    assert args.output_dir == "elsewhere"


@pytest.mark.parametrize("cli", [["[{name: format}, {path: 'my.py:f', weight: 2}]"],
                                 ["{name: format}", "{path: 'my.py:f', weight: 2}"]])
def test_several_rewards_on_the_command_line(tmp_path, cli):
    (_, _, rewards, *_), _ = parse_grpo(tmp_path, GRPO_OK.format(run_dir="runs/a"), "--rewards", *cli)
    assert rewards.rewards == [{"name": "format"}, {"path": "my.py:f", "weight": 2}]


@pytest.mark.parametrize(
    "line, message",
    [
        ("learnig_rate: 0.1", "unknown field 'learnig_rate'; did you mean 'learning_rate'?"),
        ("num_generations: four", "field 'num_generations' must be an integer or null, got 'four'"),
        ("use_cpu: maybe", "field 'use_cpu' must be true or false"),
        ("lr_scheduler_type: wobbly", "wobbly is not a valid SchedulerType"),
        ("per_device_train_batch_size: 6", "generation_batch_size (6) must be divisible by num_generations (4)"),
    ],
)
def test_each_mistake_is_one_clear_line(tmp_path, line, message):
    text = GRPO_OK.format(run_dir="runs/x") + line + "\n"
    with pytest.raises(ConfigError) as err:
        parse_grpo(tmp_path, text)
    text = str(err.value)
    assert message in text and "\n" not in text
    assert "recipe.yaml" in text  # names the file


def test_unknown_cli_flag_gets_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown argument '--max_step'; did you mean '--max_steps'\?"):
        parse_grpo(tmp_path, GRPO_OK.format(run_dir="runs/x"), "--max_step", "3")


def test_bad_cli_value_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="command line: argument --num_generations.*: invalid int value"):
        parse_grpo(tmp_path, GRPO_OK.format(run_dir="runs/x"), "--num_generations", "x")


def test_missing_recipe_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: recipe file not found"):
        parse_config(part_types(cpt.ARGS), ["--config", str(tmp_path / "nope.yaml")])
    bad = write(tmp_path, "a: [1, 2\n", "bad.yaml")
    with pytest.raises(ConfigError, match="bad.yaml: line .* is not valid YAML"):
        parse_config(part_types(cpt.ARGS), ["--config", bad])
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        parse_config(part_types(cpt.ARGS), ["--config", write(tmp_path, "- a\n- b\n", "list.yaml")])


def test_missing_stage_input_fails_before_loading(tmp_path, capsys):
    recipe = write(tmp_path, GRPO_OK.format(run_dir=tmp_path / "run"))
    code = run_stage("r1zero", ["--config", recipe])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].endswith(f"model_name_or_path: {tmp_path}/run/cpt does not exist "
                            "(run the stage that produces it first)")


def test_unknown_reward_fails_at_start_up(tmp_path, capsys):
    recipe = write(tmp_path, GRPO_OK.format(run_dir=tmp_path / "run") + "")
    code = run_stage("r1zero", ["--config", recipe, "--rewards", "{name: acuracy}"])
    assert code == 2
    assert "rewards:" in capsys.readouterr().err


def test_fsdp_on_cpu_is_refused_in_one_line(tmp_path, monkeypatch):
    """accelerate runs FSDP on GPUs only: under use_cpu `--fsdp` would silently train plain DDP (measured
    2026-12-04 on 2 gloo ranks: DistributedDataParallel, full parameters on each rank), and an accelerate FSDP
    config (ACCELERATE_USE_FSDP) raises a traceback about missing devices."""
    text = GRPO_OK.format(run_dir=tmp_path)
    with pytest.raises(ConfigError, match="field 'fsdp' .*needs GPUs; with use_cpu accelerate would run plain DDP"):
        parse_grpo(tmp_path, text, "--fsdp", "full_shard auto_wrap")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(ConfigError) as err:
        parse_grpo(tmp_path, text)
    assert err.value.field == "fsdp"
    parse_grpo(tmp_path, text.replace("use_cpu: true", "use_cpu: false"))  # a GPU run keeps it


def test_every_tiny_recipe_parses():
    run_dir, stages = load_pipeline("recipes/tiny/pipeline.yaml", "runs/parse-check")
    assert stages[0]["name"] == "cpt"
    for stage in stages:
        output_dir, config = stage_state(stage, stage_argv(stage, run_dir, []))
        assert Path(output_dir) == Path(run_dir) / stage["name"]  # the name is the directory
        assert config["use_cpu"] is True and config["bf16"] is False


def test_optional_mapping_fields_take_yaml_on_the_command_line(tmp_path):
    recipe = write(tmp_path, "output_dir: out\nuse_cpu: true\nbf16: false\n")
    argv = ["--config", recipe, "--corpus_format_mix", "{r1: 0.7, plain: 0.3}"]
    instances, _ = parse_config(part_types(cpt.ARGS), argv)
    assert instances[3].corpus_format_mix == {"r1": 0.7, "plain": 0.3}


# transformers renamed gradient_checkpointing* to activation_checkpointing* in 5.18; the cluster install
# (vLLM pins an older transformers) has only the old names. These run in both venvs (make test-cluster).
@pytest.mark.parametrize("spelling", ["activation_checkpointing", "gradient_checkpointing"])
def test_either_checkpointing_spelling_works_with_the_installed_transformers(tmp_path, spelling):
    text = GRPO_OK.format(run_dir=tmp_path) + f"{spelling}: true\n{spelling}_kwargs: {{use_reentrant: false}}\n"
    (*_, args, _), _ = parse_grpo(tmp_path, text)
    assert args.gradient_checkpointing is True  # both versions keep the old name readable
    assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    (*_, args, _), _ = parse_grpo(tmp_path, text, f"--{spelling}", "false")
    assert args.gradient_checkpointing is False


def test_both_checkpointing_spellings_with_different_values_is_one_line(tmp_path):
    text = GRPO_OK.format(run_dir=tmp_path) + "activation_checkpointing: true\ngradient_checkpointing: false\n"
    with pytest.raises(ConfigError, match="two spellings of one setting"):
        parse_grpo(tmp_path, text)
    same = text.replace("gradient_checkpointing: false", "gradient_checkpointing: true")
    (*_, args, _), _ = parse_grpo(tmp_path, same)
    assert args.gradient_checkpointing is True


def test_installed_field_name_is_the_one_training_arguments_has():
    fields = TrainingArguments.__dataclass_fields__
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        assert installed_field_name(name) in fields
    assert installed_field_name("learning_rate") == "learning_rate"


def test_default_run_dir_is_one_literal(tmp_path):
    assert rundir.DEFAULT_RUN_DIR is DEFAULT_RUN_DIR == RunArgs().run_dir
    assert load_recipe(write(tmp_path, "output_dir: ${run_dir}/cpt"))["output_dir"] == f"{DEFAULT_RUN_DIR}/cpt"
