"""Model loading and saving shared by the training stages (SFT and GRPO alike)."""

from __future__ import annotations

import json

from r1repro.config import ConfigError
from r1repro.stages.common import require_stage_output


def load_policy(model_args, field_name: str = "model_name_or_path"):
    """Model + tokenizer from a stage directory or a hub id, and the PEFT config if the recipe
    enables LoRA (`use_peft: true`, TRL's ModelConfig fields)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import get_peft_config

    path = model_args.model_name_or_path
    if not path:
        raise ConfigError(f"{field_name}: required (a stage output directory or a model id)")
    require_stage_output(path, field_name)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=model_args.model_revision)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        path,
        revision=model_args.model_revision,
        dtype=model_args.dtype or "auto",
        attn_implementation=model_args.attn_implementation,
    )
    return model, tokenizer, get_peft_config(model_args)


def plain_chat_template(template_text: str) -> str:
    """A Jinja chat template that renders a user turn exactly as the plain prompt template does
    (r1repro.templates.render_prompt), and an assistant turn as the completion plus EOS. System
    turns are left out, as render_prompt leaves the system prompt out of plain templates."""
    prefix, _, suffix = template_text.partition("{problem}")
    return ("{%- for message in messages -%}"
            "{%- if message['role'] == 'user' -%}"
            f"{{{{ {json.dumps(prefix)} }}}}{{{{ message['content'].rstrip('. ') }}}}{{{{ {json.dumps(suffix)} }}}}"
            "{%- elif message['role'] == 'assistant' -%}{{ message['content'] }}{{ eos_token }}"
            "{%- endif -%}{%- endfor -%}")


def save_final_model(trainer, tokenizer, output_dir: str, prompt_template: str | None = None) -> None:
    """Save the trained model in save_pretrained layout. LoRA adapters are merged into the base
    weights first, so the next stage loads a plain model through the same path. A model trained on a
    plain prompt template is saved with a chat template that renders that same prompt, so chat-based
    serving and eval (vLLM's chat API, apply_chat_template) give it what it was trained on, not the
    base model's ChatML."""
    from r1repro.templates import get_template

    if prompt_template is not None and get_template(prompt_template) != "chat":
        tokenizer.chat_template = plain_chat_template(get_template(prompt_template))
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
        model.save_pretrained(output_dir)
    else:
        trainer.save_model(output_dir)
    tokenizer.save_pretrained(output_dir)
