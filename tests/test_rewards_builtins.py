"""language_consistency, length/cosine/soft_overlong/repetition, countdown, reward_model."""

from __future__ import annotations

import math

import pytest

from r1repro.rewards import resolve_reward
from r1repro.rewards.countdown import evaluate_equation


def r1(think: str, answer: str = "1") -> str:
    return f" <think> {think} </think> <answer> {answer} </answer>"


def test_language_consistency_en_ko_zh():
    en = resolve_reward("language_consistency")
    ko = resolve_reward({"name": "language_consistency", "language": "ko"})
    zh = resolve_reward({"name": "language_consistency", "language": "zh"})
    mixed = r1("7+8=15 carry 1. 4+8+1=13 올림 1. so 1359")  # the tiny corpus's mixing: 2 English words, 1 Korean
    assert en([mixed]) == [pytest.approx(2 / 3)]
    assert ko([mixed]) == [pytest.approx(1 / 3)]
    assert zh([r1("我们计算 so")]) == [pytest.approx(4 / 5)]  # 4 ideographs, 1 Latin word
    assert en([r1("7+2=9"), r1("carry so")]) == [None, 1.0]  # no words: does not apply
    assert en(["<answer>only answer</answer>"]) == [None]
    # the answer is not part of the chain of thought
    assert en([r1("carry", answer="따라서")]) == [1.0]
    assert resolve_reward({"name": "language_consistency", "think_opened": True})(
        [" 올림 </think> <answer>1</answer>"]) == [0.0]


def test_language_from_column():
    by_row = resolve_reward({"name": "language_consistency", "language": None})
    assert by_row([r1("올림"), r1("올림")], lang=["ko", "en"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="language must be one of"):
        resolve_reward({"name": "language_consistency", "language": "xx"})


def test_length_reward_groups_by_prompt():
    length = resolve_reward("length")
    completions = [r1("a", "5"), r1("a" * 11, "5"), r1("a" * 21, "6"), r1("a", "6")]
    out = length(completions, solution=["5"] * 4, prompts=["p"] * 3 + ["q"])
    # group p: lengths l, l+10, l+20 -> lambda 0.5, 0, -0.5; correct, correct, wrong; q alone -> 0
    assert out[:3] == [pytest.approx(0.5), pytest.approx(0.0), pytest.approx(-0.5)]
    assert out[3] == 0.0


def test_cosine_matches_trl_formula():
    cosine = resolve_reward({"name": "cosine", "max_len": 100})
    out = cosine([r1("x", "5"), r1("x", "4")], solution=["5", "5"], completion_ids=[[1] * 50, [1] * 50])
    assert out == [pytest.approx(0.75), pytest.approx(-0.75)]  # trl's documented example values
    long_wrong = cosine([r1("x", "4")], solution=["5"], completion_ids=[[1] * 1000])
    assert long_wrong == [pytest.approx(-0.5)]  # clamped at max_len


def test_soft_overlong_and_repetition():
    overlong = resolve_reward({"name": "soft_overlong", "max_completion_len": 100, "soft_punish_cache": 20})
    assert overlong(["a", "b", "c"], completion_ids=[[1] * 50, [1] * 90, [1] * 150]) == [0.0, -0.5, -1.0]
    rep = resolve_reward({"name": "repetition", "ngram_size": 2})
    assert rep(["a b c d", "a a a a a"]) == [0.0, pytest.approx(-0.75)]
    rep_tokens = resolve_reward({"name": "repetition", "ngram_size": 2, "unit": "tokens"})
    assert rep_tokens(["x", "y"], completion_ids=[[1, 2, 3, 4], [5, 5, 5, 5, 5]]) == [0.0, pytest.approx(-0.75)]
    with pytest.raises(ValueError, match="max_penalty must be <= 0"):
        resolve_reward({"name": "repetition", "max_penalty": 1})


def test_countdown_is_safe():
    countdown = resolve_reward("countdown")
    completions = [
        "<answer>(25 - 5) * 2</answer>",
        "<answer>25 - 5 * 2</answer>",  # right numbers, wrong value
        "<answer>(25 - 5) * 2 * 1</answer>",  # a number not given
        "<answer>__import__('os').system('touch /tmp/pwned')</answer>",
        "<answer>9**9**9**9</answer>",
        "no answer",
        "<answer>40 / (25 - 5 * 5) + 2</answer>",  # division by zero
    ]
    out = countdown(completions, target=[40] * 7, nums=[[25, 5, 2]] * 7)
    assert out == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert evaluate_equation("7 / 2 = 3.5")[0] * 2 == 7
    with pytest.raises(ValueError):
        evaluate_equation("(" * 1000 + "1" + ")" * 1000)


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory):
    import torch
    from transformers import LlamaForSequenceClassification

    from r1repro.tiny.model import build_char_tokenizer, tiny_llama_config

    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    config = tiny_llama_config(len(tokenizer), "micro", num_labels=1, pad_token_id=tokenizer.pad_token_id)
    path = tmp_path_factory.mktemp("rm")
    LlamaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_reward_model_batched_equals_unbatched(tiny_reward_model):
    completions = [r1("short", "yes"), r1("a much longer chain of thought here", "no thanks"), r1("x", "maybe so")]
    prompts = ["Q1", "Question two", "Q3"]
    batched = resolve_reward({"name": "reward_model", "model": tiny_reward_model, "batch_size": 3, "device": "cpu"})
    single = resolve_reward({"name": "reward_model", "model": tiny_reward_model, "batch_size": 1, "device": "cpu"})
    a, b = batched(completions, prompts=prompts), single(completions, prompts=prompts)
    assert all(math.isfinite(x) for x in a)
    assert a == pytest.approx(b, abs=1e-4)  # padding must not change a score
    whole = resolve_reward({"name": "reward_model", "model": tiny_reward_model, "scope": "response", "device": "cpu"})
    assert whole(completions, prompts=prompts) != pytest.approx(a, abs=1e-6)  # different text scored
    with pytest.raises(ValueError, match="scope must be"):
        resolve_reward({"name": "reward_model", "model": tiny_reward_model, "scope": "both"})
