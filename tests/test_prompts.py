"""The one prompt path (r1repro.prompts): training prompts, engine texts, SFT / preference examples,
think-prefill detection and messages rows, on the character-level tokenizer given chat templates
(ChatML as in SmolLM2 / Qwen, and a DeepSeek-R1-Distill-style one that pre-fills <think>)."""

from __future__ import annotations

import json

import pytest

from r1repro.check import cli as check
from r1repro.config import ConfigError
from r1repro.generation.cli import main as sample_main
from r1repro.jsonl import read_jsonl
from r1repro.prompts import PromptBuilder, builder_for, trace_row
from r1repro.rewards import build_rewards
from r1repro.rewards.reward_model import scored_text
from r1repro.tiny.model import build_char_tokenizer
from r1repro.trainers.sft import read_trace_rows
from r1repro.trainers.traces import canonical_response

CHATML = ("{% for m in messages %}"
          "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
# DeepSeek-R1-Distill's shape: the generation prompt opens the think block, and past assistant turns
# are rendered without their reasoning.
R1_DISTILL = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}"
              "{% elif m['role'] == 'user' %}{{ '<|User|>' + m['content'] }}"
              "{% else %}{{ '<|Assistant|>' + m['content'].split('</think>')[-1] + eos_token }}{% endif %}{% endfor %}"
              "{% if add_generation_prompt %}{{ '<|Assistant|><think>\\n' }}{% endif %}")
# Same pre-fill, but past assistant turns kept verbatim: conversational examples then work.
PREFILL_VERBATIM = CHATML.replace("'<|im_start|>assistant\\n'", "'<|im_start|>assistant\\n<think>\\n'")

RESPONSE = " <think> 2 plus 3 is 5 </think> <answer> 5 </answer>"


def tokenizer_with(template):
    tokenizer = build_char_tokenizer()
    tokenizer.chat_template = template
    return tokenizer


def test_plain_template_gives_strings_everywhere():
    builder = PromptBuilder("tiny", system_prompt="ignored by plain templates")
    assert builder.train_prompt("1+2") == builder.sample_text("1+2") == "User: 1+2. Assistant:"
    assert builder.sft_example("1+2", RESPONSE) == {"prompt": "User: 1+2. Assistant:", "completion": RESPONSE}
    assert not builder.think_opened and not builder.is_chat


def test_chat_template_conversational_examples_and_exact_sampling_text():
    builder = PromptBuilder("chat", system_prompt="Think first.", tokenizer=tokenizer_with(CHATML))
    messages = [{"role": "system", "content": "Think first."}, {"role": "user", "content": "1+2"}]
    assert builder.train_prompt("1+2") == messages
    text = builder.sample_text("1+2")
    assert text == ("<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\n1+2<|im_end|>\n"
                    "<|im_start|>assistant\n")
    example = builder.sft_example("1+2", RESPONSE)
    assert example == {"prompt": messages, "completion": [{"role": "assistant", "content": RESPONSE}]}
    pair = builder.preference_example("1+2", RESPONSE, "<answer> 4 </answer>")
    assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
    assert not builder.think_opened and builder.conversational


def test_think_prefill_is_detected_from_the_generation_prompt_and_not_doubled():
    builder = PromptBuilder("chat", tokenizer=tokenizer_with(PREFILL_VERBATIM))
    assert builder.think_opened and builder.think_prefill == "<think>\n"
    assert builder.sample_text("1+2").endswith("assistant\n<think>\n")
    completion = builder.sft_example("1+2", RESPONSE)["completion"][0]["content"]
    assert completion == "<think>\n2 plus 3 is 5 </think> <answer> 5 </answer>"
    # TRL tokenises prompt (with generation prompt) and prompt + completion: the first is a prefix.
    tok = builder.tokenizer
    prompt_ids = tok.apply_chat_template(builder.train_prompt("1+2"), add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
    full_ids = tok.apply_chat_template(builder.train_prompt("1+2") + [{"role": "assistant", "content": completion}],
                                       tokenize=True, return_dict=True)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    # What the model writes after the pre-filled prompt has no <think>: rewards and trace parsing know.
    sample = "2 plus 3 is 5 </think> <answer> 5 </answer>"
    assert canonical_response(sample, builder.think_opened) == " <think> 2 plus 3 is 5 </think> <answer> 5 </answer>"
    assert canonical_response(sample) is None
    format_reward = build_rewards(builder.reward_specs(["format", {"name": "accuracy"}]))[0][0]
    plain_format = build_rewards(["format"])[0][0]
    assert format_reward([sample]) == [1.0] and plain_format([sample]) == [0.0]


def test_r1_distill_template_falls_back_to_the_exact_rendered_strings():
    """A template that drops past reasoning cannot train conversationally (the trace would vanish):
    the example becomes the sampling text + the completion after the pre-filled <think>."""
    builder = PromptBuilder("chat", system_prompt="S", tokenizer=tokenizer_with(R1_DISTILL))
    assert builder.think_opened and not builder.conversational
    example = builder.sft_example("1+2", RESPONSE)
    assert example["prompt"] == builder.sample_text("1+2") and example["prompt"].endswith("<|Assistant|><think>\n")
    assert example["completion"] == "2 plus 3 is 5 </think> <answer> 5 </answer>"
    assert (not example["prompt"].startswith(builder.tokenizer.bos_token)
            or builder.tokenizer("x")["input_ids"][0] != builder.tokenizer.bos_token_id)


def test_chat_without_a_chat_template_is_one_clear_error():
    with pytest.raises(ConfigError,
                       match="prompt_template: chat needs a chat template, but the tokenizer of m has none"):
        PromptBuilder("chat", tokenizer=build_char_tokenizer(), source="m")
    with pytest.raises(ConfigError, match="neither a known template"):
        PromptBuilder("nosuch")


def test_messages_rows_become_traces_and_bad_rows_are_named():
    row = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "1+2?"},
                        {"role": "assistant", "content": "<think>1+2=3</think> 3"}], "source": "x"}
    assert trace_row(row, "f:1") == {"source": "x", "problem": "1+2?", "response": "<think>1+2=3</think> 3"}
    assert trace_row({"problem": "p", "response": "r"}, "f:1") == {"problem": "p", "response": "r"}
    with pytest.raises(ConfigError, match=r"^f:2: 'messages' has no assistant turn"):
        trace_row({"messages": [{"role": "user", "content": "1+2?"}]}, "f:2")
    with pytest.raises(ConfigError, match=r"^f:3: column 'response' must be a string, got list"):
        trace_row({"problem": "p", "response": [{"role": "assistant", "content": "r"}]}, "f:3")
    with pytest.raises(ConfigError, match=r"^f:4: missing column 'response'"):
        trace_row({"problem": "p"}, "f:4")


def test_source_dataset_of_messages_rows_reads_with_file_and_line(tmp_path):
    path = tmp_path / "distill.jsonl"
    good = {"messages": [{"role": "user", "content": "1+2?"}, {"role": "assistant", "content": "<think>3</think> 3"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"messages": [{"role": "user", "content": "x"}]}) + "\n")
    with pytest.raises(ConfigError, match=rf"^source_dataset: {path}:2: 'messages' has no assistant turn"):
        read_trace_rows(str(path), "train")
    path.write_text(json.dumps(good) + "\n")
    assert read_trace_rows(str(path), "train") == [{"problem": "1+2?", "response": "<think>3</think> 3"}]


def test_check_reports_a_local_model_without_chat_template(tmp_path, monkeypatch):
    """`r1repro check` reads the model's tokenizer files (nothing downloaded) for prompt_template: chat."""
    monkeypatch.chdir(tmp_path)
    plain, chat = tmp_path / "plain_model", tmp_path / "chat_model"
    build_char_tokenizer().save_pretrained(plain)
    tokenizer_with(CHATML).save_pretrained(chat)
    (tmp_path / "train.jsonl").write_text(json.dumps({"problem": "1+2", "solution": "3"}) + "\n")
    for model, expected in ((plain, [f"field 'prompt_template': chat needs a chat template, "
                                     f"but model_name_or_path {plain} has none "
                                     "(use a plain template such as r1zero, or a model with a chat template)"]),
                            (chat, [])):
        recipe = tmp_path / "reasoning_rl.yaml"
        recipe.write_text(f"model_name_or_path: {model}\ndataset: {tmp_path / 'train.jsonl'}\nprompt_template: chat\n"
                          f"output_dir: {tmp_path / 'out'}\nrewards: [format]\nuse_cpu: true\nbf16: false\n")
        errors = [e for report in check.check_file(str(recipe), None) for e in report.errors]
        assert errors == expected


def test_trace_sampling_with_a_chat_template_continues_the_rendered_text(micro_chat_model, tmp_path):
    """Trace sampling (cold_start / rejection_sft run `r1repro sample` as a step of its own) with
    prompt_template chat hands the engine the chat template's text (system prompt included), not
    message lists."""
    builder = builder_for("chat", "Be brief.", micro_chat_model)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "problem": p, "solution": "0"}) + "\n"
                               for i, p in enumerate(["1+2", "3+4"])))
    out = tmp_path / "samples.jsonl"
    assert sample_main(["--model", micro_chat_model, "--dataset", str(prompts), "--template", "chat",
                        "--system-prompt", "Be brief.", "--n", "2", "--max-tokens", "4", "--backend", "hf",
                        "--no-progress", "--output", str(out)]) == 0
    records = read_jsonl(out)
    assert len(records) == 4 and all(isinstance(r["text"], str) for r in records)
    assert {r["prompt"] for r in records} == {builder.sample_text("1+2"), builder.sample_text("3+4")}
    assert builder.sample_text("1+2").startswith("<|im_start|>system\nBe brief.<|im_end|>")


def test_reward_model_scores_the_text_form_it_was_trained_on():
    """RM pairs train in TRL's conversational form (chat template, response as the assistant turn); the
    reward_model reward renders a conversational prompt the same way when it scores."""
    tokenizer = tokenizer_with(CHATML)
    builder = PromptBuilder("chat", "Be brief.", tokenizer)
    example = builder.preference_example("1+2", RESPONSE, " <think> </think> <answer> 4 </answer>")
    trained_on = tokenizer.apply_chat_template(example["prompt"] + example["chosen"], tokenize=False)
    assert scored_text(tokenizer, builder.train_prompt("1+2"), RESPONSE) == trained_on
    assert scored_text(tokenizer, "User: 1+2. Assistant:", RESPONSE) == "User: 1+2. Assistant:" + RESPONSE
    assert scored_text(tokenizer, None, RESPONSE) == RESPONSE
