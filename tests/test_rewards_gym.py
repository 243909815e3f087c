"""reasoning-gym: `gym:<task>` rows generated locally from a seed, scored by the task's own verifier
(`reasoning_gym` reward, in worker processes); the tiny recipe that uses them passes `r1repro check`
and trains a couple of GRPO steps for real (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1repro.check import cli as check
from r1repro.data import load_rows
from r1repro.gym import parse_spec, spec_error
from r1repro.rewards import STATS, resolve_reward

SPEC = "gym:basic_arithmetic?min_terms=2&max_terms=2&max_digits=2&operators=+,-"


def r1(answer: str) -> str:
    return f" <think> adding </think> <answer> {answer} </answer>"


def test_spec_parsing():
    assert parse_spec(SPEC) == ("basic_arithmetic",
                                {"min_terms": 2, "max_terms": 2, "max_digits": 2, "operators": ["+", "-"]})
    assert parse_spec("gym:countdown") == ("countdown", {})
    assert parse_spec("gym:x?flag=true&p=0.5&style=simple") == ("x", {"flag": True, "p": 0.5, "style": "simple"})
    with pytest.raises(ValueError, match="expected key=value"):
        parse_spec("gym:countdown?min_numbers")
    assert "unknown reasoning-gym task" in spec_error("gym:basic_arithmtic")
    assert "unexpected keyword argument 'max_term'" in spec_error("gym:basic_arithmetic?max_term=3")
    assert spec_error(SPEC) is None


def test_rows_are_seeded_and_splits_differ():
    train = load_rows(SPEC, "train", 20, 0)
    assert len(train) == 20 and set(train[0]) == {"id", "problem", "solution", "task", "gym"}
    assert load_rows(SPEC, "train", 20, 0) == train
    assert [r["problem"] for r in load_rows(SPEC, "train", 20, 1)] != [r["problem"] for r in train]
    test = load_rows(SPEC, "test", 20, 0)
    assert len({r["problem"] for r in test} & {r["problem"] for r in train}) < 5  # other seeds (a small problem space)
    assert all(r["problem"].startswith("Calculate") and r["task"] == "reasoning" for r in train)


def test_reward_uses_the_tasks_own_verifier():
    reward = resolve_reward("reasoning_gym")
    rows = load_rows(SPEC, "train", 6, 0)
    refs = [r["gym"] for r in rows]
    right = reward([r1(r["solution"]) for r in rows], gym=refs)
    wrong = reward([r1(str(int(r["solution"]) + 1)) for r in rows], gym=refs)
    assert right == [1.0] * 6 and wrong == [0.0] * 6
    # no answer block, chat messages, rows that are not gym rows (mixed datasets)
    chat = [{"role": "assistant", "content": r1(rows[0]["solution"])}]
    assert reward(["the answer is " + rows[0]["solution"], chat, r1("3")], gym=[refs[0], refs[0], None]) == \
        [0.0, 1.0, None]
    lenient = resolve_reward({"name": "reasoning_gym", "answer_fallback": True})
    assert lenient([f"<think> x </think> {rows[0]['solution']}"], gym=[refs[0]]) == [1.0]


def test_partial_credit_and_malformed_references():
    """countdown's verifier gives partial credit for a well-formed wrong expression; a broken `gym`
    reference scores None (does not apply), and nothing raises."""
    reward = resolve_reward("reasoning_gym")
    rows = load_rows("gym:countdown", "train", 2, 0)
    scores = reward([r1(rows[0]["solution"]), r1("1 + 1"), r1(rows[1]["solution"]), r1("1")],
                    gym=[rows[0]["gym"], rows[0]["gym"], rows[1]["gym"],
                         json.dumps({"task": "nope", "seed": 0, "size": 1, "index": 0})])  # fmt: skip
    assert scores[0] == 1.0 and scores[2] == 1.0 and 0.0 < scores[1] < 1.0 and scores[3] is None
    assert STATS["reasoning_gym"]["timeouts"] == 0


def test_the_tiny_gym_recipe_checks(tmp_path, monkeypatch):
    """recipes/tiny/reasoning_rl_gym.yaml passes `r1repro check` (tests/test_check.py runs every recipe);
    the same recipe with a misspelt task fails with one line naming the field."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    text = Path("recipes/tiny/reasoning_rl_gym.yaml").read_text()
    bad = tmp_path / "reasoning_rl_gym.yaml"
    bad.write_text(text.replace("gym:basic_arithmetic?", "gym:basic_arithmtic?"))
    errors = [e for r in check.check_file(str(bad), None) for e in r.errors]
    assert len(errors) == 1
    assert errors[0].startswith("field 'dataset': dataset gym:basic_arithmtic: unknown reasoning-gym task")


@pytest.mark.slow
def test_the_tiny_gym_recipe_trains(micro_model, tmp_path):
    """Two real GRPO steps on gym rows from a micro model (plumbing: rows, prompts, the reward inside TRL)."""
    from r1repro.report import read_metrics
    args = ["--config", "recipes/tiny/reasoning_rl_gym.yaml", "--run_dir", str(tmp_path / "run"),
            "--model_name_or_path", micro_model, "--max_steps", "2", "--num_train_samples", "16",
            "--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "16",
            "--logging_steps", "1", "--save_steps", "1000", "--eval_num_problems", "0"]  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "r1repro.cli", "reasoning_rl", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    logged = [m for m in read_metrics(tmp_path / "run" / "reasoning_rl_gym") if "rewards/reasoning_gym/mean" in m]
    assert len(logged) == 2
