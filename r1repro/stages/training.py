"""Model loading and saving shared by the training stages (SFT and GRPO alike)."""

from __future__ import annotations

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


def save_final_model(trainer, tokenizer, output_dir: str) -> None:
    """Save the trained model in save_pretrained layout. LoRA adapters are merged into the base
    weights first, so the next stage loads a plain model through the same path."""
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
        model.save_pretrained(output_dir)
    else:
        trainer.save_model(output_dir)
    tokenizer.save_pretrained(output_dir)
