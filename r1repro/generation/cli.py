"""`r1repro sample`: sample completions for a dataset into JSONL with any backend.

    r1repro sample --model runs/tiny/r1zero --dataset tiny:addition --split train --template tiny \
        --n 8 --output runs/tiny/samples.jsonl [--backend hf|vllm|server] [--num-shards 8 --shard-index 3]

Inside a Slurm job array the shard comes from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, and each
shard writes <output stem>.shard-0000i-of-0000n.jsonl. Rerunning the same command resumes.
`--config recipe.yaml` reads the same options from YAML keys (dashes or underscores); flags win.
"""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from r1repro.data import load_rows
from r1repro.generation import SamplingParams, get_engine
from r1repro.generation.sampling import read_complete, sample_to_jsonl, shard_path, slurm_shard, take_shard
from r1repro.prompts import builder_for


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="r1repro sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file with any of the options below")
    p.add_argument("--model", help="model path or hub id (server: the served model name)")
    p.add_argument("--dataset", help="tiny:<task>, a .jsonl/.json/.parquet file, or a HF dataset id")
    p.add_argument("--split", default="train")
    p.add_argument("--limit", type=int, help="use the first N rows")
    p.add_argument("--problem-column", default="problem")
    p.add_argument("--prompt-column", default=None, help="use this column as the prompt verbatim (no template)")
    p.add_argument("--template", default="r1zero", help="r1zero | tiny | chat | file with {problem}")
    p.add_argument("--system-prompt", default=None)
    p.add_argument("--output", help="output JSONL (per-shard files when sharded)")
    p.add_argument("--backend", default="hf", choices=["hf", "vllm", "server"])
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    p.add_argument("--shard-index", type=int, default=None)
    p.add_argument("--num-shards", type=int, default=None)
    p.add_argument("--chunk-size", type=int, default=256, help="prompts generated between two fsynced appends")
    p.add_argument("--batch-size", type=int, default=64, help="hf: sequences per forward pass")
    p.add_argument("--dtype", default=None, help="hf / vllm dtype, e.g. float32, bfloat16")
    p.add_argument("--base-url", default=None, help="server: e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", default=None, help="server: bearer token (default: $OPENAI_API_KEY)")
    p.add_argument("--concurrency", type=int, default=8, help="server: requests in flight")
    p.add_argument("--tokenizer", default=None, help="chat template source when --model is not a local path")
    p.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra engine option, value parsed as YAML (e.g. enforce_eager=true, max_model_len=512)")
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Flags over YAML over defaults; unknown YAML keys are one clear error."""
    parser = build_parser()
    first = parser.parse_args(argv)
    if first.config:
        with open(first.config) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{first.config}: expected a mapping of options")
        known = {a.dest for a in parser._actions}
        unknown = sorted(k for k in data if k.replace("-", "_") not in known)
        if unknown:
            raise ValueError(f"{first.config}: unknown option(s) {', '.join(unknown)} for r1repro sample")
        parser.set_defaults(**{k.replace("-", "_"): v for k, v in data.items()})
    args = parser.parse_args(argv)
    for required in ("model", "dataset", "output"):
        if getattr(args, required) is None:
            raise ValueError(f"r1repro sample: --{required} is required (flag or config key)")
    return args


def engine_options(args) -> dict:
    options: dict = {}
    if args.backend == "hf":
        options.update(batch_size=args.batch_size, progress=not args.no_progress)
    elif args.backend == "vllm":
        options.update(seed=args.seed, progress=not args.no_progress)
    else:
        options.update(base_url=args.base_url, api_key=args.api_key, concurrency=args.concurrency)
    if args.dtype and args.backend != "server":
        options["dtype"] = args.dtype
    for item in args.engine_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--engine-option {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    return options


def build_records(args) -> list[dict]:
    required = (args.prompt_column,) if args.prompt_column else ("problem",)
    rows = load_rows(args.dataset, args.split, args.limit, args.seed, problem_column=args.problem_column,
                     required=required)
    if args.limit is not None:
        rows = rows[: args.limit]
    builder = None if args.prompt_column else builder_for(args.template, args.system_prompt,
                                                          args.tokenizer or args.model)
    records = []
    for row in rows:
        if args.prompt_column:
            prompt = row[args.prompt_column]
            if not isinstance(prompt, str):
                raise ValueError(f"{args.dataset}: column {args.prompt_column!r} must hold strings, "
                                 f"got {type(prompt).__name__} in row {row['id']}")
        else:
            prompt = builder.sample_text(row["problem"])
        records.append({**row, "prompt": prompt})
    return records


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
        params = SamplingParams(n=args.n, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                                seed=args.seed, stop=args.stop)
        shard_index, num_shards = slurm_shard()
        shard_index = args.shard_index if args.shard_index is not None else shard_index
        num_shards = args.num_shards if args.num_shards is not None else num_shards
        records = take_shard(build_records(args), shard_index, num_shards)
        output = shard_path(args.output, shard_index, num_shards)
        options = engine_options(args)
    except (ValueError, OSError) as e:
        print(f"r1repro sample: {e}", file=sys.stderr)
        return 2
    # Nothing to do (a finished shard rerun by a requeued job): skip loading the model at all.
    if output.exists() and {str(r["id"]) for r in records} <= read_complete(output, params.n)[1]:
        stats = {"prompts": len(records), "skipped": len(records), "generated": 0, "output": str(output)}
    else:
        engine = get_engine(args.backend, args.model, **options)
        stats = sample_to_jsonl(engine, records, params, output, chunk_size=args.chunk_size,
                                progress=not args.no_progress)
    print(json.dumps({**stats, "shard": shard_index, "num_shards": num_shards}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
