"""Tiny models built locally and saved with save_pretrained, so every later stage loads them through
the same `from_pretrained` path a real model takes.

Sizes, measured (sum of p.numel() over the built model; the embedding is tied, counted once; 117-token
vocabulary): `small`, the tiny policy, has 802,560 parameters (~0.8M); `micro` has 408,832 (~0.4M).
Other files say "the tiny policy" and point here.

The tokenizer is character-level: `<think>` and friends are plain character sequences, never special
tokens (GRPOTrainer decodes with skip_special_tokens=True, which would erase special tags and make
every format reward read 0).
"""

from __future__ import annotations

import string
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
# Korean words appear in the tiny corpus so that language mixing (and its reward) is observable.
KOREAN = "올림따라서답그러므로더하기합은"


def build_char_tokenizer(extra_chars: str = KOREAN):
    chars = sorted(set(string.printable.replace("\x0b", "").replace("\x0c", "")) | set(extra_chars))
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS.values())}
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    core.decoder = decoders.Fuse()  # join characters back without spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL_TOKENS)
    return tokenizer


def tiny_llama_config(vocab_size: int, size: str = "small", **overrides):
    """Llama-shaped configs (Llama, not Qwen2: transformers 5 forces Qwen2Tokenizer on any qwen2 model
    directory, which would replace our character tokenizer). `small` (4 layers) is the tiny recipe's
    policy: small enough that CPU training learns 2-digit addition with a trace in a few hundred
    steps (a wider model costs far more per step; docs/architecture.md, measured facts). `micro`
    (2 layers) is the distillation student and the unit tests' model."""
    shapes = {
        "small": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2),
        "micro": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2),
    }
    if size not in shapes:
        raise ValueError(f"tiny model size {size!r}: expected one of {sorted(shapes)}")
    params = dict(
        vocab_size=vocab_size,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        **shapes[size],
    )
    params.update(overrides)
    return LlamaConfig(**params)


def build_tiny_model(output_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Create a randomly initialised tiny model + tokenizer at output_dir (save_pretrained layout)."""
    torch.manual_seed(seed)
    tokenizer = build_char_tokenizer()
    config = tiny_llama_config(len(tokenizer), size)
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
