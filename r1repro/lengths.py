"""Length limits applied when a stage loads its data: rows that cannot fit are dropped and counted.

- GRPO: TRL 1.16 has no `max_prompt_length`. A prompt longer than the model's context minus
  `max_completion_length` makes a vLLM server answer 400 (the run stops) and HF generation run past
  the model's positions. Such rows are dropped at load.
- SFT: TRL truncates examples longer than `max_length`, which cuts the answer and the EOS off a
  reasoning trace and teaches the model to stop mid-thought. Such rows are dropped instead.

Token counts follow TRL's own tokenisation of each format: plain text is tokenised as is (with the
EOS TRL appends to a completion), conversational prompts through the chat template with the
generation prompt.
"""

from __future__ import annotations

import json
from pathlib import Path


def model_context(model_path: str) -> int | None:
    """`max_position_embeddings` from a local model directory's config.json (None when unknown)."""
    config = Path(model_path) / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text())
    data = data.get("text_config", data)  # multimodal configs nest the language model's
    value = data.get("max_position_embeddings") or data.get("n_positions")
    return int(value) if value else None


def prompt_token_limit(context: int | None, max_completion_length: int | None,
                       vllm_max_model_length: int | None = None) -> int | None:
    """The longest prompt that leaves room for a full completion (None: no limit known)."""
    limits = [n for n in (context, vllm_max_model_length) if n]
    if not limits or not max_completion_length:
        return None
    return min(limits) - max_completion_length


def prompt_tokens(prompt, tokenizer) -> int:
    """Tokens of a prompt as the policy sees it: a string, or messages through the chat template."""
    if isinstance(prompt, list):
        return len(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                                 return_dict=True)["input_ids"])
    return len(tokenizer(prompt)["input_ids"])


def sft_example_tokens(prompt, completion, tokenizer) -> int:
    """Tokens of one prompt-completion SFT example, as SFTTrainer builds it before truncating."""
    if isinstance(prompt, list):
        if isinstance(completion, str):
            completion = [{"role": "assistant", "content": completion}]
        return len(tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)["input_ids"])
    eos = tokenizer.eos_token or ""
    text = prompt + completion
    return len(tokenizer(text if text.endswith(eos) else text + eos)["input_ids"])


def drop_long_prompts(rows: list[dict], tokenizer, limit: int | None) -> tuple[list[dict], int]:
    """Rows (with a rendered `prompt`) whose prompt fits in `limit` tokens, and how many were dropped."""
    if limit is None:
        return rows, 0
    kept = [row for row in rows if prompt_tokens(row["prompt"], tokenizer) <= limit]
    return kept, len(rows) - len(kept)


def drop_long_sft_examples(examples: list[dict], tokenizer, max_length: int | None) -> tuple[list[dict], int]:
    """Examples (`prompt`, `completion`) that fit in `max_length` tokens, and how many were dropped."""
    if max_length is None:
        return examples, 0
    kept = [ex for ex in examples if sft_example_tokens(ex["prompt"], ex["completion"], tokenizer) <= max_length]
    return kept, len(examples) - len(kept)


def report_dropped(what: str, dropped: int, total: int, limit: int | None) -> None:
    if dropped:
        print(f"[lengths] dropped {dropped} of {total} {what} over {limit} tokens", flush=True)
