"""Stage 4 on real-shaped data (issue 12): a general dataset with its own column names (HelpSteer2:
prompt / response / helpfulness ...), reward-model pairs from human scores of two responses to the same
prompt, and the recipe check naming missing columns. The slow test trains the reward model on such a
file with TRL's RewardTrainer and scores with it through the `reward_model` reward."""

import json

import pytest

from r1repro.check import cli as check
from r1repro.config import ConfigError, DataArgs
from r1repro.prompts import builder_for
from r1repro.stages.all_scenario_rl import AllScenarioArgs, general_rows, mixed_rows, reward_model_pairs, scored_pairs

# HelpSteer2's shape: two responses per prompt, five 0-4 scores each.
HS2 = [
    {"prompt": "Name a primary colour.", "response": "Red is a primary colour.", "helpfulness": 4, "correctness": 4},
    {"prompt": "Name a primary colour.", "response": "Colours are nice.", "helpfulness": 1, "correctness": 2},
    {"prompt": "Say hello in French.", "response": "Bonjour.", "helpfulness": 3, "correctness": 4},
    {"prompt": "Say hello in French.", "response": "Bonjour!", "helpfulness": 3, "correctness": 4},  # tie: no pair
    {"prompt": "What is 2+2?", "response": "5", "helpfulness": 0, "correctness": 0},
    {"prompt": "What is 2+2?", "response": "2+2 is 4.", "helpfulness": 4, "correctness": 4},
]


@pytest.fixture
def hs2_file(tmp_path):
    path = tmp_path / "helpsteer2.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in HS2))
    return str(path)


def _args(path, **kw):
    return AllScenarioArgs(general_dataset=path, general_problem_column="prompt", general_response_column="response",
                           **kw)


def test_pairs_come_from_scores_of_responses_to_the_same_prompt(hs2_file):
    rows = general_rows(_args(hs2_file), "train", None, 0)
    assert rows[0]["problem"] == "Name a primary colour." and rows[0]["response"] == "Red is a primary colour."
    pairs = scored_pairs(rows, "helpfulness", 1.0, 100, seed=0)
    assert sorted((p["problem"], p["chosen"], p["rejected"]) for p in pairs) == [
        ("Name a primary colour.", "Red is a primary colour.", "Colours are nice."),
        ("What is 2+2?", "2+2 is 4.", "5"),  # the higher score wins whichever row comes first
    ]
    assert len(scored_pairs(rows, "helpfulness", 4.0, 100, seed=0)) == 1  # only the 4-vs-0 pair has that gap
    assert len(scored_pairs(rows, "helpfulness", 1.0, 1, seed=0)) == 1  # rm_num_pairs caps
    assert reward_model_pairs(_args(hs2_file, rm_score_column="helpfulness"), seed=0) == pairs


def test_a_real_dataset_needs_real_preferences(hs2_file):
    with pytest.raises(ConfigError, match="needs real preferences"):
        reward_model_pairs(_args(hs2_file), seed=0)
    with pytest.raises(ConfigError, match="rm_score_column: no two responses"):
        reward_model_pairs(_args(hs2_file, rm_score_column="helpfulness", rm_min_score_gap=5), seed=0)
    with pytest.raises(ConfigError, match="general_dataset: .*missing column 'verbosity'"):
        reward_model_pairs(_args(hs2_file, rm_score_column="verbosity"), seed=0)


def test_grpo_prompts_take_each_general_prompt_once(hs2_file):
    data = DataArgs(dataset="tiny:addition")
    rows = mixed_rows(data, _args(hs2_file, general_fraction=0.5), 10, seed=0)
    general = [r for r in rows if r["task"] == "general"]
    assert sorted(r["problem"] for r in general) == ["Name a primary colour.", "Say hello in French.", "What is 2+2?"]
    assert len([r for r in rows if r["task"] == "reasoning"]) == 10


def test_check_names_the_missing_general_column(hs2_file, tmp_path):
    recipe = tmp_path / "all_scenario_rl.yaml"
    base = (f"run_dir: {tmp_path}/run\noutput_dir: {tmp_path}/run/all_scenario_rl\n"
            f"model_name_or_path: {tmp_path}/run/rs\n"
            f"general_dataset: {hs2_file}\ngeneral_problem_column: prompt\nuse_cpu: true\nbf16: false\n"
            "num_generations: 2\nper_device_train_batch_size: 2\neval_num_problems: 0\n")
    recipe.write_text(base + "rm_score_column: helpfulness\n")
    [report] = check.check_file(str(recipe))
    assert not report.errors, report.errors
    recipe.write_text(base + "rm_score_column: harmlessness\n")
    [report] = check.check_file(str(recipe))
    assert any("general_dataset" in e and "harmlessness" in e for e in report.errors), report.errors


@pytest.mark.slow
def test_reward_model_trains_on_helpsteer2_shaped_pairs_and_scores(hs2_file, micro_model, tmp_path):
    from r1repro.rewards import resolve_reward
    from r1repro.stages.all_scenario_rl import train_reward_model
    args = _args(hs2_file, rm_score_column="helpfulness", rm_max_steps=4, rm_batch_size=2, rm_learning_rate=1e-3,
                 rm_max_length=256)
    rm_dir = train_reward_model(args, micro_model, builder_for("tiny", None), str(tmp_path / "out"), seed=0)
    assert (tmp_path / "out" / "reward_model" / "config.json").is_file()
    metrics = [json.loads(line) for line in open(tmp_path / "out" / "rm_trainer" / "metrics.jsonl")]
    assert any("train_loss" in m or "loss" in m for m in metrics), metrics
    score = resolve_reward({"name": "reward_model", "model": rm_dir, "scope": "answer"})
    scores = score(completions=[" <think> x </think> <answer> Red </answer>", "<answer> 4 </answer>"],
                   prompts=["User: a. Assistant:", "User: b. Assistant:"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    # Trained again after an interruption: the saved model is reused, not retrained.
    assert train_reward_model(args, micro_model, builder_for("tiny", None), str(tmp_path / "out"), seed=0) == rm_dir
