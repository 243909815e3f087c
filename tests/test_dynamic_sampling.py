"""DAPO dynamic sampling (issue 24): the recipe field's validation, the TRL extension point it is built on
(pinned: these tests fail loudly when TRL changes it), and real tiny GRPO runs with and without it."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from r1repro.config import ConfigError, parse_config
from r1repro.report import read_metrics
from r1repro.stages import part_types
from r1repro.trainers import grpo
from r1repro.trainers.dynamic_sampling import (
    HANDLED_KEYS,
    LEFT_PADDED,
    RIGHT_PADDED,
    UNSUPPORTED_KEYS,
    DynamicSampling,
    check_metric,
    cost_line,
    reward_names,
)

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ the field

def parse(tmp_path, value_yaml: str, *cli):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"run_dir: {tmp_path}\nnum_generations: 4\nper_device_train_batch_size: 8\n"
                      f"use_cpu: true\n{value_yaml}")
    instances, _ = parse_config(part_types(grpo.ARGS), ["--config", str(recipe), *cli], stage="r1zero")
    return instances[-1].dynamic_sampling


def test_the_field_parses_from_yaml_and_the_command_line(tmp_path):
    assert parse(tmp_path, "") is None
    assert parse(tmp_path, "dynamic_sampling: {metric: accuracy, max_generation_batches: 3}\n") == {
        "metric": "accuracy", "max_generation_batches": 3}
    assert parse(tmp_path, "dynamic_sampling: {}\n") == {"metric": "reward", "max_generation_batches": 4}
    assert parse(tmp_path, "", "--dynamic_sampling", "{max_generation_batches: 6}") == {
        "metric": "reward", "max_generation_batches": 6}


@pytest.mark.parametrize("value, words", [
    ("dynamic_sampling: {metrc: reward}", "unknown key 'metrc'; did you mean 'metric'?"),
    ("dynamic_sampling: {max_generation_batches: 1}", "max_generation_batches must be an integer >= 2"),
    ("dynamic_sampling: {max_generation_batches: 2.5}", "max_generation_batches must be an integer >= 2"),
    ("dynamic_sampling: {metric: ''}", "metric must be 'reward'"),
    ("dynamic_sampling: 3", "field 'dynamic_sampling' must be a mapping"),
])
def test_a_bad_value_is_one_line_naming_the_field(tmp_path, value, words):
    with pytest.raises(ConfigError) as err:
        parse(tmp_path, value + "\n")
    message = str(err.value)
    assert words in message and "\n" not in message and "dynamic_sampling" in message


def test_the_metric_must_name_a_reward():
    names = reward_names([{"name": "format"}, "accuracy", {"path": "rewards/code_tests.py:code_tests"},
                          {"name": "accuracy"}])
    assert names == ["format", "accuracy", "code_tests", "accuracy_2"]
    check_metric(DynamicSampling("reward", 3), names)
    check_metric(DynamicSampling("code_tests", 3), names)
    with pytest.raises(ConfigError, match="metric 'acuracy' is neither 'reward' nor one of the rewards .*"
                                          "did you mean 'accuracy'"):
        check_metric(DynamicSampling("acuracy", 3), names)


def test_the_cost_line_spans_one_to_n_generation_batches():
    line = cost_line(DynamicSampling("reward", 4), prompts=4, num_generations=8, max_completion_length=88)
    assert "1 to 4 generation batches" in line and "32 to 128 completions" in line
    assert "2,816 to 11,264 completion tokens" in line


def test_check_validates_and_prints_the_cost(tmp_path):
    recipe = tmp_path / "r1zero.yaml"
    recipe.write_text((REPO / "recipes/tiny/r1zero.yaml").read_text()
                      + "dynamic_sampling: {metric: accuracy, max_generation_batches: 3}\n")
    ok = subprocess.run([sys.executable, "-m", "r1repro.cli", "check", "--config", str(recipe)], cwd=REPO,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "dynamic sampling on accuracy: 1 to 3 generation batches a round = 32 to 96 completions" in ok.stdout
    recipe.write_text((REPO / "recipes/tiny/r1zero.yaml").read_text() + "dynamic_sampling: {metric: lang}\n")
    bad = subprocess.run([sys.executable, "-m", "r1repro.cli", "check", "--config", str(recipe)], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "metric 'lang' is neither 'reward' nor one of the rewards" in bad.stdout


# ------------------------------------------------------------------------------------------ TRL's side, pinned

def test_trl_extension_point_is_what_dynamic_sampling_was_built_on():
    """If this fails, TRL changed the methods DynamicSamplingGRPOTrainer overrides: re-read
    grpo_trainer.py's _prepare_inputs / _generate_and_score_completions / _calculate_rewards and adapt
    r1repro/trainers/dynamic_sampling.py before relaxing anything here."""
    from trl import GRPOConfig, GRPOTrainer
    from trl.trainer.utils import RepeatSampler

    gen = GRPOTrainer._generate_and_score_completions
    assert list(inspect.signature(gen).parameters) == ["self", "inputs"]
    assert list(inspect.signature(GRPOTrainer._calculate_rewards).parameters) == [
        "self", "inputs", "prompts", "completions", "completion_ids_list"]
    prepare = inspect.getsource(GRPOTrainer._prepare_inputs)
    # called once per generation batch (train), then shuffled and split into steps_per_generation batches
    assert "generation_batch = self._generate_and_score_completions(generation_batch)" in prepare
    assert "split_tensor_dict(generation_batch, self.args.steps_per_generation)" in prepare
    source = inspect.getsource(gen)
    # rewards come from _calculate_rewards, gathered over every rank, and advantages are sliced per rank after
    assert "rewards_per_func = self._calculate_rewards(inputs, prompts, completions, completion_ids_list)" in source
    assert "self.accelerator.process_index * len(prompts)" in source
    assert "return rewards_per_func" in inspect.getsource(GRPOTrainer._calculate_rewards)
    assert "rewards_per_func = gather(rewards_per_func)" in inspect.getsource(GRPOTrainer._calculate_rewards)
    # one frac_reward_zero_std and one completions/mean_length per call (their last values are replaced/read)
    assert source.count('self._metrics[mode]["frac_reward_zero_std"].append(') == 1
    assert inspect.getsource(GRPOTrainer._generate).count('["completions/mean_length"].append(') == 1
    # the returned keys: every one must be joinable across generation batches (or refused as multimodal)
    keys = set(re.findall(r'output\["(\w+)"\]\s*=', source))
    literal = re.search(r"output = \{(.*?)\n\s*\}", source, re.S)[1]
    keys |= set(re.findall(r'"(\w+)":', literal))
    assert keys == HANDLED_KEYS | UNSUPPORTED_KEYS, sorted(keys ^ (HANDLED_KEYS | UNSUPPORTED_KEYS))
    # prompts are left-padded, completions right-padded
    for key in ("prompt_ids", "prompt_mask"):
        assert re.search(rf"{key} = pad\(\s*{key},.*?padding_side=\"left\"", source, re.S), key
    for key in ("completion_ids", "completion_mask"):
        assert re.search(rf"{key} = pad\(\s*{key},.*?padding_side=\"right\"", source, re.S), key
    assert set(LEFT_PADDED) == {"prompt_ids", "prompt_mask"} and "completion_ids" in RIGHT_PADDED
    # the extra prompts are drawn as TRL's train sampler draws them
    assert list(inspect.signature(RepeatSampler).parameters) == [
        "data_source", "mini_repeat_count", "batch_size", "repeat_count", "shuffle", "seed"]
    assert "generation_batch_size" in {f.name for f in __import__("dataclasses").fields(GRPOConfig)}


# ------------------------------------------------------------------------------------------ real runs

# A reward with variance in about half the groups of 2 (the parity of the completion's length): plain GRPO
# has zero-std groups at every step, dynamic sampling must draw again to fill its batch.
PARITY = "def parity(completions, **kwargs):\n    return [float(len(str(c)) % 2) for c in completions]\n"


def r1repro(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "r1repro.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.slow
def test_a_dynamic_run_trains_only_groups_with_variance(micro_base, tmp_path):
    plugin = tmp_path / "parity.py"
    plugin.write_text(PARITY)
    common = ["--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(micro_base), "--max_steps", "3",
              "--per_device_train_batch_size", "8", "--num_generations", "2", "--max_completion_length", "16",
              "--num_train_samples", "64", "--logging_steps", "1", "--save_steps", "1000", "--eval_num_problems", "0",
              "--rewards", "{name: format}", f"{{path: {plugin}:parity}}"]
    plain = r1repro("r1zero", *common, "--output_dir", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr[-3000:]
    dyn = r1repro("r1zero", *common, "--output_dir", str(tmp_path / "dyn"),
                  "--dynamic_sampling", "{metric: parity, max_generation_batches: 8}")
    assert dyn.returncode == 0, dyn.stderr[-3000:]
    plain_steps = [m for m in read_metrics(tmp_path / "plain") if "frac_reward_zero_std" in m]
    steps = [m for m in read_metrics(tmp_path / "dyn") if "frac_reward_zero_std" in m]
    assert len(plain_steps) == len(steps) == 3
    assert sum(m["frac_reward_zero_std"] for m in plain_steps) > 0  # plain GRPO trains zero-std groups
    assert all("dynamic_sampling/generation_batches" not in m for m in plain_steps)
    for m in steps:
        assert m["dynamic_sampling/max_reached"] == 0 and m["frac_reward_zero_std"] == 0, m
        assert m["dynamic_sampling/groups_kept"] == 4 and m["dynamic_sampling/groups_filled_zero_std"] == 0
        assert m["dynamic_sampling/generated_tokens"] > 0
    assert sum(m["dynamic_sampling/generation_batches"] for m in steps) > 3  # it drew again
    assert sum(m["dynamic_sampling/groups_dropped"] for m in steps) > 0
    totals = [m["dynamic_sampling/generated_tokens_total"] for m in steps]
    assert totals == sorted(totals) and totals[-1] == pytest.approx(
        sum(m["dynamic_sampling/generated_tokens"] for m in steps), rel=1e-6)


@pytest.mark.slow
def test_reaching_the_cap_trains_what_it_has_and_says_so(micro_base, tmp_path):
    """A reward that never varies: every group is dropped, the cap is reached at every step, the batch is
    completed with zero-std groups (TRL's expected size) and max_reached / frac_reward_zero_std say so."""
    common = ["--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(micro_base), "--max_steps", "2",
              "--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "8",
              "--num_train_samples", "64", "--logging_steps", "1", "--save_steps", "1000", "--eval_num_problems", "0",
              "--rewards", "{name: accuracy}", "--output_dir", str(tmp_path / "dyn"),
              "--dynamic_sampling", "{max_generation_batches: 2}"]
    result = r1repro("r1zero", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [m for m in read_metrics(tmp_path / "dyn") if "frac_reward_zero_std" in m]
    assert len(steps) == 2
    for m in steps:
        assert m["dynamic_sampling/generation_batches"] == 2 and m["dynamic_sampling/max_reached"] == 1
        assert m["dynamic_sampling/groups_filled_zero_std"] == 2 and m["frac_reward_zero_std"] == 1
