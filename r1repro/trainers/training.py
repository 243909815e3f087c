"""What the trainers share: model loading and saving, tracking, resume and preemption."""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import timedelta
from pathlib import Path

import torch.distributed as dist
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
from trl import get_peft_config

from r1repro.config import ConfigError
from r1repro.rundir import PREEMPTED_EXIT_CODE, last_checkpoint, require_stage_output
from r1repro.templates import get_template
from r1repro.trainers.callbacks import MetricsJsonlCallback, PreemptionCallback


def setup_tracking(training_args, run_args, stage: str) -> None:
    """wandb when the recipe asks for it; offline (no network needed) when no API key is set."""
    report_to = training_args.report_to or []
    if "wandb" in report_to:
        os.environ.setdefault("WANDB_PROJECT", run_args.wandb_project or "r1repro")
        os.environ.setdefault("WANDB_DIR", str(Path(run_args.run_dir)))
        if not os.environ.get("WANDB_API_KEY"):
            os.environ.setdefault("WANDB_MODE", "offline")
        training_args.run_name = training_args.run_name or f"{Path(run_args.run_dir).name}-{stage}"


def sync_ranks(args: TrainingArguments) -> None:
    """In a multi-process launch: give the process group the recipe's `ddp_timeout` (seconds), then wait
    until every rank is past rundir.start_stage, so that no rank looks for checkpoints while the main
    process still removes those of another config.

    transformers passes ddp_timeout on only off CPU (TrainingArguments._setup_devices drops it when
    use_cpu), so a CPU run with a hung peer would wait torch's gloo default of 30 minutes in a collective
    (docs/architecture.md, measured facts)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    args.device  # sets up the process group (accelerate's PartialState) if the parse has not
    if dist.is_initialized():
        dist.distributed_c10d._set_pg_timeout(timedelta(seconds=args.ddp_timeout))
    args.distributed_state.wait_for_everyone()


def release_ranks() -> None:
    """In a multi-process launch whose stage has finished (or was skipped as done): wait for every rank, then
    tear the process group down before the interpreter exits. Left to the exit-time destructors, a rank that is
    done while its peer still writes can abort the launch after the work is saved (CI, ZeRO-3 cpt on 2 CPU
    ranks: rank 1 died with "terminate called without an active exception", SIGABRT, once in many runs); torch
    asks every program to call destroy_process_group on a normal exit."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
        dist.destroy_process_group()


# How a lost peer reads in a RuntimeError: gloo's and NCCL's own names; "Application timeout caused pair
# closure" is all gloo says when ddp_timeout ends DDP's gradient all-reduce (measured: a SIGSTOPped rank on
# the second Slurm node, the other rank in backward).
LOST_PEER_MARKERS = ("gloo", "NCCL", "pair closure")


def _waiting_in(err: BaseException) -> str:
    """The innermost frame outside torch: where the rank was waiting (`accelerate/accelerator.py:2861 backward`)."""
    frames = traceback.extract_tb(err.__traceback__)
    outside = [f for f in frames if "/torch/" not in f.filename] or frames
    if not outside:
        return ""
    frame = outside[-1]
    path = Path(frame.filename)
    return f" in {path.parent.name}/{path.name}:{frame.lineno} {frame.name}"


def collective_failure(err: BaseException) -> str | None:
    """One line for an error of a multi-process run's collectives (a peer died: gloo's 'Connection closed
    by peer'; a peer hung: 'Timed out waiting ...ms' or 'Application timeout caused pair closure'; NCCL's
    DistBackendError), naming where the rank waited, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    text = str(err).strip()
    if not (isinstance(err, dist.DistError) or
            (isinstance(err, RuntimeError) and any(marker in text for marker in LOST_PEER_MARKERS))):
        return None
    first = text.splitlines()[0] if text else type(err).__name__
    return (f"rank {os.environ.get('RANK', '?')} of {os.environ['WORLD_SIZE']}: lost a peer in a collective"
            f"{_waiting_in(err)} (ddp_timeout bounds the wait): {first}")


def train_with_resume(trainer, output_dir: str | Path, preemption: PreemptionCallback) -> None:
    """Train, resuming from the last complete checkpoint; exit PREEMPTED_EXIT_CODE if preempted."""
    resume = last_checkpoint(output_dir)
    if resume:
        print(f"resuming from {resume}")
    trainer.train(resume_from_checkpoint=resume)
    if preemption.requested:
        print(f"preempted: checkpoint saved in {output_dir}; rerun the same command to resume", file=sys.stderr)
        sys.exit(PREEMPTED_EXIT_CODE)


def train_and_save(build_trainer, training_args, run_args, stage: str, tokenizer,
                   prompt_template: str | None = None, callbacks=()):
    """The lifecycle of every training stage: tracking, the preemption and metrics callbacks, the trainer that
    build_trainer(callbacks=[...]) returns, training resumed from the last checkpoint (exit
    PREEMPTED_EXIT_CODE if preempted), the final model saved into output_dir. Returns the trainer.

    The trainer is built after PreemptionCallback has taken SIGUSR1/SIGTERM: a signal while a slow trainer
    (vLLM colocate) starts up then checkpoints at the first step instead of killing the stage."""
    output_dir = training_args.output_dir
    setup_tracking(training_args, run_args, stage)
    preemption = PreemptionCallback()
    # The stage's callbacks first: one that adds to the logs (RewardStatsCallback's reward error counts) must run
    # before the one that writes them, or metrics.jsonl never has what it adds.
    trainer = build_trainer(callbacks=[*callbacks, MetricsJsonlCallback(output_dir), preemption])
    train_with_resume(trainer, output_dir, preemption)
    save_final_model(trainer, tokenizer, output_dir, prompt_template)
    return trainer


def load_policy(model_args, field_name: str = "model_name_or_path"):
    """Model + tokenizer from a stage directory or a hub id, and the PEFT config if the recipe
    enables LoRA (`use_peft: true`, TRL's ModelConfig fields)."""
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
    if prompt_template is not None and get_template(prompt_template) != "chat":
        tokenizer.chat_template = plain_chat_template(get_template(prompt_template))
    model = trainer.model
    # One writer: on N ranks every rank gets here, and trainer.save_model writes on the main process only,
    # but save_pretrained does not ask; N ranks writing the same files at once can leave a torn one.
    writer = trainer.args.should_save
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
        if writer:
            model.save_pretrained(output_dir)
    else:
        trainer.save_model(output_dir)
    if writer:
        tokenizer.save_pretrained(output_dir)
