"""The tiny world: character tokenizer, model round trip, tasks and corpus."""

import random

import pytest

from r1repro.tiny.corpus import build_corpus
from r1repro.tiny.model import build_char_tokenizer, build_tiny_model
from r1repro.tiny.tasks import addition_steps, addition_trace, r1_response, task_rows


def test_think_tags_are_plain_characters_not_special_tokens():
    tok = build_char_tokenizer()
    text = " <think> 7+5=12 올림 1 </think>\n<answer> 636 </answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)  # one token per character
    # GRPOTrainer decodes with skip_special_tokens=True: the tags must survive it
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.unk_token_id not in ids


def test_tiny_model_round_trip_through_from_pretrained(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_model(tmp_path, size="micro", seed=1)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert type(tok).__name__ == "TokenizersBackend"  # not a Qwen2/Llama BPE tokenizer guessed from the config
    text = "<think> 1+1=2 </think> <answer> 2 </answer>"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert model.config.model_type == "llama"
    assert tok.eos_token_id == model.generation_config.eos_token_id
    with torch.no_grad():
        out = model(**tok(["ab", "abc"], return_tensors="pt", padding=True))
    assert out.logits.shape[-1] == model.config.vocab_size


def test_addition_trace_is_correct_arithmetic():
    rng = random.Random(0)
    for _ in range(200):
        a, b = rng.randrange(10, 1000), rng.randrange(10, 1000)
        trace = addition_trace(a, b)
        assert trace.endswith(f"so {a + b}")
    assert addition_trace(347, 582) == "7+2=9. 4+8=12 carry 1. 3+5+1=9. so 929"
    assert addition_steps(47, 82) == "7+2=9. 4+8=12 carry 1."
    # Every format with steps reads the sum off them after `so`, the tagged ones too (r1_response's docstring).
    assert r1_response(addition_trace(47, 82), "129") == \
        " <think> 7+2=9. 4+8=12 carry 1. so 129 </think> <answer> 129 </answer>"
    assert "따라서" in addition_trace(12, 34, random.Random(0), korean_rate=1.0)


def test_tasks_are_deterministic_and_splits_disjoint():
    for name in ("addition", "general"):
        train, test = task_rows(name, "train", 500), task_rows(name, "test", 50)
        assert train == task_rows(name, "train", 500)
        assert {r["problem"] for r in train}.isdisjoint({r["problem"] for r in test})
        assert all(set(r) >= {"id", "problem", "solution", "task", "response"} for r in train)
    assert task_rows("addition", "test", 3)[0]["task"] == "reasoning"
    general = {r["problem"]: r for r in task_rows("general", "train", 500)}
    for problem, answer in (("Say 47", "47"), ("Repeat 47", "47 47"), ("Say 52", "52"), ("Repeat 52", "52 52")):
        if problem in general:  # each (kind, number) is in one split only
            assert general[problem]["solution"] == answer and general[problem]["response"] == f" {answer}"
    assert len({r["problem"] for r in task_rows("general", "test", 500)}) == 500  # evals use >= 500 distinct problems
    with pytest.raises(ValueError, match="unknown tiny task 'adition'"):
        task_rows("adition", "train", 1)


def test_corpus_mixes_formats_and_holds_out_test_problems():
    docs = build_corpus(2000, "tiny", seed=0)
    completions = [d.split("Assistant:", 1)[1] for d in docs if "+" in d.split("Assistant:")[0]]
    r1_format = sum(c.startswith(" <think>") and "<answer>" in c for c in completions) / len(completions)
    assert 0.03 < r1_format < 0.3  # a minority habit: R1-Zero has something to discover
    test_problems = {r["problem"] for r in task_rows("addition", "test", 200)}
    assert not any(p + "." in d for d in docs for p in test_problems)
    with pytest.raises(ValueError, match="unknown formats"):
        build_corpus(1, "tiny", format_mix={"r2": 1.0})
