"""evaluate_model: metrics aggregation over known completions, and a real run on a micro model."""

import dataclasses
import json

import pytest

from r1repro.config import ConfigError, DataArgs, parse_config
from r1repro.evaluation import EvalSettings, EvalTask, evaluate_model
from r1repro.evaluation.settings import RECIPE_FIELDS, EvalArgs, SettingError
from r1repro.evaluation.stats import point, units_from_records
from r1repro.generation import Sample
from r1repro.tiny.tasks import task_rows


class ReplayEngine:
    """An Engine that serves fixed completions per prompt: greedy gets `greedy[i]`, sampling gets
    `sampled[i]` (a list of num_samples texts). Lets the test know every correct answer in advance."""

    def __init__(self, greedy, sampled):
        self.greedy, self.sampled = greedy, sampled

    def generate(self, prompts, params):
        source = [[g] for g in self.greedy] if params.temperature == 0 else self.sampled
        assert len(source) == len(prompts)
        return [[Sample(text=t, num_tokens=len(t), finish_reason="stop") for t in row] for row in source]


def test_settings_from_recipe_map_every_sampling_field_of_eval_args():
    eval_args = EvalArgs(eval_num_samples=8, eval_temperature=0.7, eval_top_p=0.9, eval_max_new_tokens=64,
                         eval_backend="vllm")
    data_args = DataArgs(prompt_template="chat", system_prompt="Be brief.")
    settings = EvalSettings.from_recipe(eval_args, data_args, seed=3)
    assert settings == EvalSettings(template="chat", system_prompt="Be brief.", num_samples=8, temperature=0.7,
                                    top_p=0.9, max_new_tokens=64, seed=3, backend="vllm")
    assert EvalSettings.from_recipe(EvalArgs(), DataArgs()) == EvalSettings()  # one set of defaults
    # every EvalArgs field is a setting in the map, or one of the fields that choose the rows
    settings_fields = {f.name for f in dataclasses.fields(EvalSettings)}
    assert set(RECIPE_FIELDS.values()) <= settings_fields
    assert {f.name for f in dataclasses.fields(EvalArgs)} == {*RECIPE_FIELDS, "eval_tasks", "eval_num_problems"}


@pytest.mark.parametrize(("values", "message"), [
    ({"num_samples": 0}, "num_samples must be an integer >= 1, got 0"),
    ({"top_p": 1.5}, "top_p must be a number in (0, 1], got 1.5"),
    ({"temperature": -0.1}, "temperature must be a number >= 0 (0 samples greedily), got -0.1"),
    ({"backend": "vlm"}, "backend must be one of hf, vllm, server, got 'vlm'"),
    ({"pass_k": [1, 0]}, "pass_k must be a non-empty list of integers >= 1, got (1, 0)"),
    ({"max_new_tokens": True}, "max_new_tokens must be an integer >= 1, got True"),
])
def test_settings_rules_name_the_setting(values, message):
    with pytest.raises(SettingError) as err:
        EvalSettings(**values)
    assert str(err.value) == message and err.value.field == next(iter(values))
    assert EvalSettings(pass_k=[1, 2]).pass_k == (1, 2)  # YAML's list, as the tuple the metrics use


def test_recipe_eval_fields_fail_at_parse_under_their_recipe_names(tmp_path):
    with pytest.raises(ConfigError, match=r"^field 'eval_top_p' must be a number in \(0, 1\], got 1.5$"):
        EvalArgs(eval_top_p=1.5)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("eval_num_samples: 0\n")
    with pytest.raises(ConfigError, match="^field 'eval_num_samples' must be an integer >= 1, got 0$") as err:
        parse_config((DataArgs, EvalArgs), ["--config", str(recipe)])
    assert err.value.field == "eval_num_samples"


def answer(x):
    return f" <think> t </think> <answer> {x} </answer>"


def test_metrics_from_known_completions(tmp_path):
    rows = task_rows("addition", "test", 2)
    gold = [r["solution"] for r in rows]
    wrong = [str(int(g) + 1) for g in gold]
    engine = ReplayEngine(
        greedy=[answer(gold[0]), "no tags " + gold[1]],
        sampled=[
            # problem 0: 1 of 4 correct, the wrong answer wins the vote
            [answer(gold[0]), answer(wrong[0]), answer(wrong[0]), "garbage"],
            # problem 1: 2 of 4 correct, a 2-2 tie between the gold and a wrong answer
            [answer(gold[1]), answer(wrong[1]), answer(gold[1]), answer(wrong[1])],
        ],
    )
    samples = tmp_path / "out" / "samples.jsonl"
    settings = EvalSettings(template="tiny", num_samples=4, pass_k=(1, 2, 4, 8))
    m = evaluate_model("unused", [EvalTask("reasoning", rows)], settings, samples_path=str(samples),
                       engine=engine)["reasoning"]
    assert m["n"] == 2
    assert m["accuracy_greedy"] == 0.5
    assert m["pass@1"] == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert m["pass@2"] == pytest.approx((0.5 + 5 / 6) / 2)  # 1 - C(3,2)/C(4,2), 1 - C(2,2)/C(4,2)
    assert m["pass@4"] == 1.0
    assert "pass@8" not in m  # k larger than the number of samples is left out
    assert m["cons@4"] == pytest.approx((0.0 + 0.5) / 2)
    assert m["format_rate"] == pytest.approx(7 / 8)
    assert m["mean_length"] == pytest.approx(sum(len(t) for row in engine.sampled for t in row) / 8)
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(lines) == 2 * (1 + 4)
    second = [line for line in lines if line["mode"] == "sampled" and line["prompt_id"] == rows[1]["id"]]
    assert [line["correct"] for line in second] == [True, False, True, False]
    assert lines[0]["answer"] == gold[0]
    # the report's per-problem view of these records gives back every metric (r1repro.evaluation.stats)
    units = units_from_records(lines, ks=(1, 2, 4))["reasoning"]
    for name in ("accuracy_greedy", "pass@1", "pass@2", "pass@4", "format_rate", "mean_length"):
        assert point(units[name]) == pytest.approx(m[name]), name
    assert set(units["pass@1"]) == {r["problem"] for r in rows}


def test_general_task_uses_its_answer_reward():
    rows = task_rows("general", "test", 3)
    engine = ReplayEngine(greedy=[r["response"] for r in rows], sampled=[[r["response"]] * 2 for r in rows])
    settings = EvalSettings(template="tiny", num_samples=2, pass_k=(1, 2))
    untagged = {"name": "exact_match", "tags_required": False}  # general requests are answered directly
    m = evaluate_model("unused", [EvalTask("general", rows, answer_reward=untagged)], settings,
                       engine=engine)["general"]
    assert m["accuracy_greedy"] == m["pass@1"] == m["cons@2"] == 1.0 and m["format_rate"] == 0.0
    tagged = evaluate_model("unused", [EvalTask("general", rows, answer_reward="exact_match")], settings,
                            engine=engine)
    assert tagged["general"]["accuracy_greedy"] == 0.0  # the same answers fail where the tags are required


def test_missing_column_is_one_clear_error():
    rows = [{"id": "a", "problem": "Compute 1 + 1"}]
    with pytest.raises(ValueError, match="eval task 'reasoning': row 0 has no column 'solution'"):
        evaluate_model("unused", [EvalTask("reasoning", rows)], EvalSettings(), engine=ReplayEngine([], []))


def test_real_micro_model_end_to_end(micro_model, tmp_path):
    tasks = [EvalTask("reasoning", task_rows("addition", "test", 6)),
             EvalTask("general", task_rows("general", "test", 4), "exact_match")]
    settings = EvalSettings(template="tiny", num_samples=2, pass_k=(1, 2), max_new_tokens=24)
    results = evaluate_model(micro_model, tasks, settings, samples_path=str(tmp_path / "s.jsonl"))
    assert set(results) == {"reasoning", "general"}
    for metrics in results.values():
        assert {"accuracy_greedy", "pass@1", "pass@2", "cons@2", "format_rate", "mean_length"} <= set(metrics)
        assert 0 < metrics["mean_length"] <= 24
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 6 * 3 + 4 * 3
