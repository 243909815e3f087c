"""Length limits at load (issue 12): over-long GRPO prompts and SFT examples are dropped and counted.
The token counts are checked against what TRL's SFTTrainer itself builds from the same examples."""

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1repro.check import cli as check
from r1repro.lengths import (
    drop_long_prompts,
    drop_long_sft_examples,
    model_context,
    prompt_token_limit,
    prompt_tokens,
    sft_example_tokens,
)

CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{{ eos_token }}{% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}")


def _trl_lengths(model_dir, tokenizer, examples, tmp_path):
    import datasets
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_length=None, use_cpu=True, bf16=False, report_to=[],
                     per_device_train_batch_size=1)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, processing_class=tokenizer,
                         train_dataset=datasets.Dataset.from_list(examples))
    return [len(ids) for ids in trainer.train_dataset["input_ids"]]


def test_sft_token_counts_are_trls_plain_text(micro_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    examples = [{"prompt": "User: 12+7. Assistant:", "completion": " <think> 12+7=19 </think> <answer> 19 </answer>"},
                {"prompt": "User: 1+1. Assistant:", "completion": " <answer> 2 </answer>" + tokenizer.eos_token}]
    ours = [sft_example_tokens(e["prompt"], e["completion"], tokenizer) for e in examples]
    assert ours == _trl_lengths(micro_model, tokenizer, examples, tmp_path)


def test_sft_token_counts_are_trls_conversational(micro_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    tokenizer.chat_template = CHAT_TEMPLATE
    examples = [{"prompt": [{"role": "user", "content": "12+7"}],
                 "completion": [{"role": "assistant", "content": "<think> 12+7=19 </think> <answer> 19 </answer>"}]}]
    ours = [sft_example_tokens(e["prompt"], e["completion"], tokenizer) for e in examples]
    assert ours == _trl_lengths(micro_model, tokenizer, examples, tmp_path)
    # A string completion after a message prompt counts as the assistant turn.
    assert sft_example_tokens(examples[0]["prompt"], examples[0]["completion"][0]["content"], tokenizer) == ours[0]


def test_over_long_sft_examples_are_dropped_not_truncated(micro_model):
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    examples = [{"prompt": "Q:", "completion": "x" * n} for n in (5, 50, 500)]
    lengths = [sft_example_tokens(e["prompt"], e["completion"], tokenizer) for e in examples]
    assert lengths == [2 + 5 + 1, 2 + 50 + 1, 2 + 500 + 1]  # one token per character, plus EOS
    kept, dropped = drop_long_sft_examples(examples, tokenizer, max_length=53)
    assert kept == examples[:2] and dropped == 1  # kept whole: nothing is cut
    assert drop_long_sft_examples(examples, tokenizer, None) == (examples, 0)


def test_prompt_limit_is_context_minus_completion(micro_model):
    assert model_context(micro_model) == 512
    assert model_context(f"{micro_model}/missing") is None
    assert prompt_token_limit(512, 400) == 112
    assert prompt_token_limit(4096, 3000, vllm_max_model_length=3500) == 500  # the smaller context wins
    assert prompt_token_limit(None, 3000) is None and prompt_token_limit(512, None) is None
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    rows = [{"prompt": "p" * n, "id": n} for n in (10, 112, 113, 400)]
    kept, dropped = drop_long_prompts(rows, tokenizer, 112)
    assert [r["id"] for r in kept] == [10, 112] and dropped == 2
    tokenizer.chat_template = CHAT_TEMPLATE
    messages = [{"role": "user", "content": "abc"}]
    assert prompt_tokens(messages, tokenizer) == len("<user>abc") + 1 + len("<assistant>")


def test_grpo_stage_drops_prompts_that_leave_no_room(micro_model):
    import datasets
    from trl import GRPOConfig

    from r1repro.config import ConfigError
    from r1repro.trainers.grpo import drop_long_grpo_prompts

    model = AutoModelForCausalLM.from_pretrained(micro_model)
    tokenizer = AutoTokenizer.from_pretrained(micro_model)
    dataset = datasets.Dataset.from_list([{"prompt": "q" * n, "solution": str(n)} for n in (20, 100, 300)])
    args = GRPOConfig(output_dir="unused", max_completion_length=400, use_cpu=True, bf16=False, num_generations=2,
                      per_device_train_batch_size=2, report_to=[])
    kept, dropped = drop_long_grpo_prompts(dataset, model, tokenizer, args)  # 512 - 400 = 112 tokens
    assert kept["solution"] == ["20", "100"] and dropped == 1
    args.max_completion_length = 500
    with pytest.raises(ConfigError, match="max_completion_length: every training prompt"):
        drop_long_grpo_prompts(dataset, model, tokenizer, args)


def test_check_counts_what_the_stages_will_drop(micro_model, tmp_path):
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps({"problem": "1" * n, "solution": "1"}) + "\n" for n in (10, 50, 100, 300)))
    grpo = tmp_path / "r1zero.yaml"
    grpo.write_text(f"run_dir: {tmp_path}/run\noutput_dir: {tmp_path}/run/r1zero\nmodel_name_or_path: {micro_model}\n"
                    f"dataset: {data}\nprompt_template: tiny\nmax_completion_length: 400\nnum_generations: 2\n"
                    "per_device_train_batch_size: 2\nuse_cpu: true\nbf16: false\neval_num_problems: 0\n")
    [report] = check.check_file(str(grpo))
    assert not report.errors, report.errors
    # "User: {problem}. Assistant:" adds 19 characters; 512 - 400 = 112 tokens are left for the prompt.
    assert ("lengths: 2 of 4 training prompts over 112 tokens (context - max_completion_length) "
            "will be dropped at load") in report.summary

    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps({"problem": "1+1", "response": "x" * n}) + "\n" for n in (10, 60, 90)))
    sft = tmp_path / "distill.yaml"
    sft.write_text(f"run_dir: {tmp_path}/run\noutput_dir: {tmp_path}/run/distill\nmodel_name_or_path: {micro_model}\n"
                   f"source_dataset: {traces}\nprompt_template: tiny\nmax_length: 100\nuse_cpu: true\nbf16: false\n"
                   "eval_num_problems: 0\n")
    [report] = check.check_file(str(sft))
    assert not report.errors, report.errors
    assert "lengths: 1 of 3 SFT examples over max_length 100 tokens will be dropped at load" in report.summary
