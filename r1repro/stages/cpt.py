"""Stage `cpt`: continued pre-training on plain text (no chat template, loss on every token).

On a cluster this continues a base model on a domain corpus (`corpus: path/to/text.jsonl` with a
`text` column). In the tiny recipe it builds the base model itself: a fresh tiny model trained
from scratch on a synthetic corpus (r1repro.tiny.corpus), so R1-Zero has a base to start from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import datasets
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import ModelConfig, SFTConfig, SFTTrainer

from r1repro.config import ConfigError, DataArgs, RunArgs
from r1repro.data import load_rows
from r1repro.evaluation.settings import EvalArgs
from r1repro.rewards.reward_model import without_zero3_init
from r1repro.rundir import require_stage_output
from r1repro.tiny.corpus import build_corpus
from r1repro.tiny.model import build_tiny_model
from r1repro.trainers.inputs import StageInputs
from r1repro.trainers.training import train_and_save


@dataclass
class CptArgs:
    init_tiny_model: str | None = field(default=None, metadata={
        "help": "Build a fresh tiny model of this size (small | micro) instead of loading model_name_or_path."})
    corpus: str = field(default="tiny", metadata={
        "help": "`tiny` (synthetic, built locally) or a .jsonl/.parquet file with a `text` column."})
    corpus_num_docs: int = 20000
    corpus_format_mix: dict | None = field(default=None, metadata={
        "help": "Answer-format weights of the tiny corpus (r1repro.tiny.corpus)."})
    corpus_korean_rate: float = field(default=0.3, metadata={
        "help": "Share of trace words written in Korean (language mixing)."})
    corpus_general_fraction: float = 0.05


@dataclass
class CptStageArgs:
    run: RunArgs
    data: DataArgs
    eval: EvalArgs
    cpt: CptArgs
    train: SFTConfig
    model: ModelConfig


ARGS = CptStageArgs


def inputs(args: CptStageArgs) -> StageInputs:
    """A corpus file's `text` column (the tiny corpus is built here)."""
    return StageInputs(columns={} if args.cpt.corpus == "tiny" else {"corpus": ["text"]})


def corpus_dataset(cpt_args, data_args, seed: int):
    if cpt_args.corpus == "tiny":
        docs = build_corpus(cpt_args.corpus_num_docs, data_args.prompt_template, seed,
                            cpt_args.corpus_format_mix, cpt_args.corpus_korean_rate, cpt_args.corpus_general_fraction)
        return datasets.Dataset.from_dict({"text": docs})
    rows = load_rows(cpt_args.corpus, data_args.train_split, cpt_args.corpus_num_docs, required=("text",))
    return datasets.Dataset.from_list([{"text": r["text"]} for r in rows])


def run(stage: str, args: CptStageArgs) -> dict:
    init_dir = None
    if args.cpt.init_tiny_model:
        init_dir = f"{args.train.output_dir}/init"
        # One writer, the other ranks load after it: they would read a half-written model (measured on 2 ranks:
        # "no file named model.safetensors"). The writer builds a whole model even under ZeRO-3: zero.Init would
        # partition it with a broadcast per parameter that the other ranks, waiting here, never join (measured:
        # both ranks hung until the launch's timeout, rank 0 in deepspeed's broadcast, rank 1 in the barrier).
        with args.train.main_process_first(local=False, desc="building the tiny model"):
            if args.train.process_index == 0:
                with without_zero3_init():
                    build_tiny_model(init_dir, args.cpt.init_tiny_model, args.train.seed)
    else:
        if not args.model.model_name_or_path:
            raise ConfigError("model_name_or_path: required unless init_tiny_model is set")
        require_stage_output(args.model.model_name_or_path, "model_name_or_path")
    model_path = str(init_dir or args.model.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=args.model.dtype or "auto")
    build_trainer = partial(build_cpt_trainer, model, tokenizer, args.train, args.cpt, args.data)
    # No prompt_template: plain text, no chat template to write.
    train_and_save(build_trainer, args.train, args.run, stage, tokenizer)
    return {}


def build_cpt_trainer(model, tokenizer, sft_args, cpt_args, data_args, callbacks):
    """SFTTrainer on the corpus, built here, after the preemption callback has taken the signals: a large tiny
    corpus takes a while to build, and a signal meanwhile must end the stage with a checkpoint, not kill it."""
    dataset = corpus_dataset(cpt_args, data_args, sft_args.seed)
    return SFTTrainer(model=model, args=sft_args, train_dataset=dataset, processing_class=tokenizer,
                      callbacks=callbacks)

