"""A model trained on a plain prompt template is saved with a chat template that renders exactly that
prompt (issue 12: distilled students were saved with the base's ChatML)."""

import pytest
from transformers import AutoTokenizer

from r1repro.engines.training import plain_chat_template
from r1repro.templates import get_template, render_prompt
from r1repro.tiny.model import build_char_tokenizer

PROBLEMS = ["What is 12+7?", "Solve x^2 = 4.", 'A "quoted" {brace} problem. ', "문제 하나"]


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
