"""The `hf` backend on a real (random-init, micro) model."""

import pytest

from r1repro.generation import Sample, SamplingParams, get_engine


@pytest.fixture(scope="module")
def engine(micro_model):
    return get_engine("hf", micro_model, batch_size=8, progress=False)


PROMPTS = ["User: Compute 12 + 30. Assistant:", "User: Reverse the word apple. Assistant:", "Hi:"]


def test_shapes_counts_and_length_limit(engine):
    out = engine.generate(PROMPTS, SamplingParams(n=3, max_tokens=12, seed=1))
    assert [len(row) for row in out] == [3, 3, 3]
    for row in out:
        for s in row:
            assert isinstance(s, Sample) and 1 <= s.num_tokens <= 12
            assert s.finish_reason in ("stop", "length")
            assert s.finish_reason == "stop" or s.num_tokens == 12
    assert out[0][0].prompt_tokens == len(PROMPTS[0])  # character tokenizer: one token per character


def test_greedy_is_deterministic_and_independent_of_batching(engine):
    params = SamplingParams(n=2, temperature=0, max_tokens=16)
    together = engine.generate(PROMPTS, params)
    assert all(row[0] == row[1] for row in together)  # greedy copies are identical
    # Left padding must not change a prompt's output: each alone gives the same greedy text.
    for prompt, row in zip(PROMPTS, together):
        assert engine.generate([prompt], params)[0][0].text == row[0].text


def test_sampling_seeded(engine):
    params = SamplingParams(n=4, temperature=1.0, top_p=1.0, max_tokens=16, seed=3)
    first = engine.generate(PROMPTS[:1], params)
    assert engine.generate(PROMPTS[:1], params) == first
    other = engine.generate(PROMPTS[:1], SamplingParams(n=4, temperature=1.0, top_p=1.0, max_tokens=16, seed=4))
    assert [s.text for s in other[0]] != [s.text for s in first[0]]
    assert len({s.text for s in first[0]}) > 1  # samples differ from each other


def test_stop_string_cuts_before_it(engine):
    greedy = engine.generate(PROMPTS[:1], SamplingParams(temperature=0, max_tokens=24))[0][0]
    stop = greedy.text[5:7]  # a string the model is known to produce
    cut = engine.generate(PROMPTS[:1], SamplingParams(temperature=0, max_tokens=24, stop=[stop]))[0][0]
    assert cut.text == greedy.text[: greedy.text.find(stop)]
    assert cut.finish_reason == "stop"
    assert cut.num_tokens <= greedy.num_tokens


def test_eos_ends_the_completion(engine):
    tok = engine.tokenizer
    ids = tok("abc")["input_ids"]
    eos, pad = tok.eos_token_id, tok.pad_token_id
    sample = engine._to_sample(ids + [eos, pad, pad], SamplingParams(), prompt_tokens=4)
    assert (sample.text, sample.num_tokens, sample.finish_reason) == ("abc", 4, "stop")
    sample = engine._to_sample(ids, SamplingParams(), prompt_tokens=4)
    assert (sample.text, sample.num_tokens, sample.finish_reason) == ("abc", 3, "length")


def test_bad_params_and_backend():
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ValueError, match="backend 'nope'"):
        get_engine("nope", "x")
