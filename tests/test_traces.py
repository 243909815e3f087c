"""Stage data building on hand-made inputs: trace filtering (cold start, rejection sampling), DPO
pairs, reward-model pairs, and per-task reward routing."""

import random

import pytest

from r1repro.jsonl import read_jsonl, write_jsonl
from r1repro.stages.all_scenario_rl import general_pairs, wrong_answer
from r1repro.trainers.traces import (
    TraceArgs,
    canonical_response,
    preference_pairs,
    repetition_fraction,
    score_samples,
    select_traces,
)

ROW = {"id": "a", "problem": "Compute 12 + 34", "solution": "46", "task": "reasoning", "lang": "en"}
OTHER = {"id": "b", "problem": "Compute 50 + 50", "solution": "100", "task": "reasoning", "lang": "en"}


def test_canonical_response_rewrites_into_the_readable_pattern():
    assert canonical_response("<think>2+4=6.\n 1+3=4.  so 46</think>\n\n<answer>46</answer>") == \
        " <think> 2+4=6. 1+3=4. so 46 </think> <answer> 46 </answer>"
    # the template opened <think>
    assert canonical_response("2+4=6 </think> <answer> 46 </answer>", think_opened=True) is not None
    # as the format reward: <think> is required
    assert canonical_response("2+4=6 </think> <answer> 46 </answer>") is None
    for bad in ("The answer is 46.", "<think> x </think> 46", "<answer> 46 </answer>",
                "<think> a </think> <answer> 1 </answer> <answer> 2 </answer>",
                "<think> a </think> <answer> 1 </answer> more"):
        assert canonical_response(bad) is None, bad


def test_repetition_fraction():
    assert repetition_fraction("a b c d e f") == 0
    assert repetition_fraction("x y z x y z x y z x y z") > 0.5


def scored(samples_by_row):
    rows = [row for row, _ in samples_by_row]
    texts = [texts for _, texts in samples_by_row]
    return score_samples(rows, texts, TraceArgs(trace_language="en"))


def test_select_traces_keeps_correct_readable_single_language_at_most_m_per_prompt():
    good = " <think> 2+4=6. 1+3=4. so 46 </think> <answer> 46 </answer>"
    records = scored([
        (ROW, [
            good,
            " <think> 2+4=6. 1+3=4. so 46 </think>   <answer> 46 </answer>",  # same after rewriting: duplicate
            " <think> 2+4=6. 1+3=4. 따라서 46 </think> <answer> 46 </answer>",  # mixed language
            " <think> 2+4=6. so 47 </think> <answer> 47 </answer>",  # incorrect
            " The answer is 46.",  # no format: not verifiable as an R1 trace
            " <think> 2+4=6. 1+3=4. so so 46 </think> <answer> 46 </answer>",  # correct, a second distinct trace
        ]),
        (OTHER, [" <think> 0+0=0. 5+5=10 carry 1. so 100 </think> <answer> 100 </answer>"]),
    ])
    kept, counts = select_traces(records, TraceArgs(keep_per_prompt=1, min_language_consistency=1.0))
    assert [k["response"] for k in kept] == \
        [good, " <think> 0+0=0. 5+5=10 carry 1. so 100 </think> <answer> 100 </answer>"]
    assert kept[0]["solution"] == "46" and kept[0]["id"] == "a"
    assert counts == {"kept": 2, "duplicate": 1, "mixed_language": 1, "incorrect": 2, "over_quota": 1}
    kept2, _ = select_traces(records, TraceArgs(keep_per_prompt=2, min_language_consistency=0.5))
    assert len([k for k in kept2 if k["id"] == "a"]) == 2


def test_length_and_repetition_filters():
    long_trace = " <think> " + " ".join(f"w{i}" for i in range(200)) + " so 46 </think> <answer> 46 </answer>"
    looping = " <think>" + " 2+4=6" * 12 + " so 46 </think> <answer> 46 </answer>"
    kept, counts = select_traces(scored([(ROW, [long_trace, looping])]),
                                 TraceArgs(max_response_chars=300, max_repetition=0.3))
    assert kept == [] and counts == {"too_long": 1, "repetition": 1}


def test_preference_pairs_need_both_sides():
    records = scored([
        (ROW, [" <think> 47 </think> <answer> 47 </answer>", " <think> so 46 </think> <answer> 46 </answer>"]),
        (OTHER, [" <think> so 100 </think> <answer> 100 </answer>"]),  # no incorrect sample: no pair
    ])
    pairs = preference_pairs(records)
    assert pairs == [{"problem": ROW["problem"], "solution": "46", "task": "reasoning",
                      "chosen": " <think> so 46 </think> <answer> 46 </answer>",
                      "rejected": " <think> 47 </think> <answer> 47 </answer>"}]


def test_jsonl_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [{"problem": "p", "response": "r"}])
    assert read_jsonl(path, required=("problem", "response")) == [{"problem": "p", "response": "r"}]
    path.write_text('{"problem": "p"}\n')
    with pytest.raises(ValueError, match=r"t.jsonl:1: missing column 'response'"):
        read_jsonl(path, required=("problem", "response"))
    path.write_text('{"problem": \n')
    with pytest.raises(ValueError, match=r"t.jsonl:1: not valid JSON"):
        read_jsonl(path)


def test_reward_model_pairs_reject_a_wrong_answer():
    from r1repro.tiny.tasks import task_rows

    rows = task_rows("general", "train", 50)
    pairs = general_pairs(rows, seed=0)
    assert len(pairs) == 50
    for row, pair in zip(rows, pairs):
        assert pair["chosen"] == row["response"]
        assert pair["rejected"] != pair["chosen"] and pair["rejected"].startswith(" ")  # the reference's format
    tagged = {"solution": "aa", "response": " <think> </think> <answer> aa </answer>"}
    rejected = wrong_answer(tagged, random.Random(0))
    assert rejected != tagged["response"] and rejected.startswith(" <think> </think> <answer> ")


def test_rewards_route_by_task_column():
    from r1repro.rewards import build_rewards

    funcs, weights = build_rewards([{"name": "accuracy", "tasks": ["reasoning"]},
                                    {"name": "exact_match", "tasks": ["general"], "weight": 0.5}])
    completions = [" <think> x </think> <answer> 46 </answer>", " <think> </think> <answer> APPLE </answer>"]
    columns = {"solution": ["46", "APPLE"], "task": ["reasoning", "general"]}
    assert funcs[0](completions=completions, **columns) == [1.0, None]
    assert funcs[1](completions=completions, **columns) == [None, 1.0]
    assert weights == [1.0, 0.5]
