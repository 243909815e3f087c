"""`reward_model`: a sequence-classification model's score, for what rules cannot check (R1's stage 4:
helpfulness on the answer part, harmlessness on the whole response).

The model is loaded on first use and cached per (path, device); scoring is batched, under
inference_mode, on the trainer's device (cuda if available unless `device` says otherwise).

Under DeepSpeed ZeRO-3, `from_pretrained` would partition the weights across ranks (zero.Init) for an
engine that never exists here, leaving each rank a module with empty parameters. The reward model
is therefore loaded as a full replica on each rank with ZeRO-3 init switched off (`without_zero3_init`),
in the checkpoint's dtype (bf16 for a reward model trained in bf16): the replica TRL itself
uses for reward models without ZeRO-3. A replica needs no collective, so routing rows by task (some
ranks scoring none) cannot hang the job. For a model too big to replicate, serve it separately.
"""

from __future__ import annotations

import contextlib
import os
import threading

from .registry import register
from .text import answer_part, completion_text

_MODELS: dict[tuple, tuple] = {}
_LOCK = threading.Lock()


def load(model: str, device: str | None = None):
    # torch, transformers and accelerate are imported on use in this module: the reward registry (and
    # with it `r1repro check`) imports it, and a recipe without a reward model never needs them.
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    key = (model, device)
    with _LOCK:
        if key not in _MODELS:
            tokenizer = AutoTokenizer.from_pretrained(model)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            with without_zero3_init():
                net = AutoModelForSequenceClassification.from_pretrained(model, dtype="auto").to(device).eval()
            if net.config.pad_token_id is None:
                net.config.pad_token_id = tokenizer.pad_token_id
            _MODELS[key] = (tokenizer, net, device)
        return _MODELS[key]


def without_zero3_init():
    """A context in which from_pretrained loads whole weights even when the running trainer uses DeepSpeed
    ZeRO-3; a no-op otherwise.

    transformers decides on zero.Init by its global DeepSpeed config (`is_deepspeed_zero3_enabled`), which
    every TrainingArguments made under an `accelerate launch` DeepSpeed config registers. accelerate's own
    switch (DeepSpeedPlugin.zero3_init_context_manager(enable=False)) registers the same stage-3 config
    again in accelerate 1.15, so it no longer switches anything off: under it the reward model came out
    partitioned on 2 ranks and every score failed ("'weight' must be 2-D"). So the config is unregistered for
    the load and registered again after it."""
    # On use, see load().
    from transformers.integrations import deepspeed_config, is_deepspeed_zero3_enabled

    return _unregistered(deepspeed_config()) if is_deepspeed_zero3_enabled() else contextlib.nullcontext()


# The DeepSpeed config registered again after a load: transformers holds it by a weak reference only.
_REREGISTERED: list = []


@contextlib.contextmanager
def _unregistered(config: dict):
    from transformers.integrations import HfDeepSpeedConfig, unset_hf_deepspeed_config  # on use, see load()

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        _REREGISTERED[:] = [HfDeepSpeedConfig(config)]  # registers itself


def scored_text(tokenizer, prompt, response: str) -> str:
    """The text the reward model reads, in the form it was trained on (TRL's RewardTrainer): a
    conversational prompt through the chat template with the response as the assistant turn; a string
    prompt (or none) followed by the response."""
    if isinstance(prompt, list) and getattr(tokenizer, "chat_template", None):
        messages = [m for m in prompt if isinstance(m, dict)] + [{"role": "assistant", "content": response}]
        return tokenizer.apply_chat_template(messages, tokenize=False)
    if isinstance(prompt, list):  # messages but no template to render them with: their contents
        return "\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict)) + response
    return (prompt or "") + response


@register("reward_model")
def reward_model(
    completions,
    model: str,
    scope: str = "answer",
    batch_size: int = 16,
    max_length: int = 1024,
    include_prompt: bool = True,
    device: str | None = None,
    prompts=None,
    **kwargs,
) -> list[float]:
    """The model's logit (label 0) for each completion. scope: "answer" (the part after the thinking,
    for helpfulness) or "response" (everything, for harmlessness). include_prompt: score prompt + text."""
    import torch  # on use, see load()

    tokenizer, net, dev = load(model, device)
    texts = []
    for i, c in enumerate(completions):
        text = completion_text(c)
        part = answer_part(text) if scope == "answer" else text
        texts.append(scored_text(tokenizer, prompts[i] if include_prompt and prompts is not None else None, part))
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True, truncation=True,
                          max_length=max_length)
        with torch.inference_mode():
            logits = net(**{k: v.to(dev) for k, v in batch.items()}).logits
        scores += logits[:, 0].float().cpu().tolist()
    return scores


def _validate(model: str = "", scope: str = "answer", batch_size: int = 16, **_):
    if scope not in ("answer", "response"):
        raise ValueError(f"scope must be 'answer' or 'response', got {scope!r}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not model:
        raise ValueError("model: expected the path or hub id of a sequence-classification model")
    # A hub id looks like `org/name`: only paths that are clearly local must exist here.
    looks_local = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local and not os.path.exists(os.path.expanduser(model)):
        raise ValueError(f"model path {model} not found")


reward_model.validate = _validate
