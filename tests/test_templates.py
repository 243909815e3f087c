"""Prompt templates (r1repro.templates): the paper's R1-Zero prompt and its 1-shot form, template files and
their errors; and the chat template a model trained on a plain prompt template is saved with, which renders
exactly that prompt (issue 12: distilled students were saved with the base's ChatML)."""

import pytest
from transformers import AutoTokenizer

from r1repro.rewards.format import format_reward
from r1repro.templates import R1ZERO_TEMPLATE, get_template, render_prompt
from r1repro.tiny.model import build_char_tokenizer
from r1repro.trainers.training import plain_chat_template

PROBLEMS = ["What is 12+7?", "Solve x^2 = 4.", 'A "quoted" {brace} problem. ', "문제 하나"]


def test_r1zero_template_is_the_papers():
    prompt = render_prompt("r1zero", "Compute 2 + 3")
    assert prompt.startswith("A conversation between User and Assistant.")
    assert "<think> reasoning process here </think> <answer> answer here </answer>" in prompt
    assert prompt.endswith("User: Compute 2 + 3. Assistant:")
    assert render_prompt("chat", "hi", system_prompt="s") == [{"role": "system", "content": "s"},
                                                              {"role": "user", "content": "hi"}]


def test_template_from_file_and_errors(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Q: {problem}\nA:")
    assert render_prompt(str(path), "1+1") == "Q: 1+1\nA:"
    (tmp_path / "bad.txt").write_text("no placeholder")
    with pytest.raises(ValueError, match="must contain the placeholder"):
        get_template(str(tmp_path / "bad.txt"))
    with pytest.raises(ValueError, match="neither a known template"):
        get_template("r1-zero")
    assert get_template("r1zero") == R1ZERO_TEMPLATE


def test_r1zero_1shot_shows_one_formatted_example_then_the_problem():
    text = render_prompt("r1zero_1shot", "What is 4 + 4?")
    instruction, example_and_problem = text.split(" User: ", 1)
    assert instruction == R1ZERO_TEMPLATE.split(" User: ")[0]  # the paper's instruction, unchanged
    example, problem = example_and_problem.split("\nUser: ")
    assert problem == "What is 4 + 4?. Assistant:"
    shown = example.split(" Assistant:", 1)[1]
    assert format_reward([shown]) == [1.0]  # the example is in the format the reward asks for


@pytest.mark.parametrize("template", ["r1zero", "tiny"])
def test_chat_template_renders_the_training_prompt(template, tmp_path):
    tokenizer = build_char_tokenizer()
    tokenizer.chat_template = plain_chat_template(get_template(template))
    tokenizer.save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)  # what a server or the next stage loads
    for problem in PROBLEMS:
        messages = [{"role": "system", "content": "ignored, as in render_prompt"},
                    {"role": "user", "content": problem}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert rendered == render_prompt(template, problem)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": " <think> t </think>"}],
                                             tokenize=False)
        assert full == render_prompt(template, problem) + " <think> t </think>" + tokenizer.eos_token


def test_template_file_with_jinja_characters(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("{% raw %} {{x}} Q: {problem}\nA:")
    tokenizer = build_char_tokenizer()
    tokenizer.chat_template = plain_chat_template(get_template(str(path)))
    got = tokenizer.apply_chat_template([{"role": "user", "content": "1+1"}], tokenize=False,
                                        add_generation_prompt=True)
    assert got == render_prompt(str(path), "1+1")
