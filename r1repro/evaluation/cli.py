"""`r1repro eval --config eval.yaml`: several checkpoints on several benchmarks, one report.

    checkpoints:                 # compared in this order (base first)
      base: runs/tiny/cpt
      r1zero: runs/tiny/r1zero
    benchmarks:                  # registry names or {name, path, limit, label, ...}
      - {name: tiny_addition, label: reasoning}
      - {name: tiny_general, label: general}
      - {name: aime24, path: data/aime24.jsonl}
    output_dir: runs/tiny/eval
    limit: 100                   # problems per benchmark unless the benchmark says otherwise
    template: tiny               # any EvalSettings field: num_samples, temperature, top_p, max_new_tokens,
                                 # backend, ...
    protocol: deepseek-r1        # optional: a published protocol's settings (r1repro/evaluation/protocols.py);
                                 # fields set here or on the command line override it and are recorded

Writes <output_dir>/results.json ({"evals": {checkpoint: {task: metrics}}, "settings": ...}),
results.md (markdown table), pass_at_k.png, and samples/<checkpoint>.jsonl. A checkpoint already
evaluated with the same settings (evals/<checkpoint>.json) is not evaluated again; --overwrite redoes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml

from r1repro.evaluation.benchmarks import BENCHMARKS, load_benchmark
from r1repro.evaluation.core import evaluate_model
from r1repro.evaluation.protocols import PROTOCOLS, ProtocolRun
from r1repro.evaluation.report import markdown_table, plot_pass_at_k
from r1repro.evaluation.settings import EvalSettings
from r1repro.evaluation.stats import bands, consistent, units_from_records
from r1repro.files import write_json_atomic, write_text_atomic
from r1repro.jsonl import read_jsonl

SETTINGS_FIELDS = {f.name: f for f in dataclasses.fields(EvalSettings)}
TOP_KEYS = {"checkpoints", "benchmarks", "output_dir", "limit", "overwrite", "protocol"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="r1repro eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML file (see above)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="add or replace a checkpoint")
    p.add_argument("--benchmark", action="append", default=[], metavar="NAME",
                   help="evaluate these instead of the config's")
    p.add_argument("--output-dir", default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--list-benchmarks", action="store_true")
    p.add_argument("--protocol", default=None, help=f"a published protocol's settings: {', '.join(PROTOCOLS)}")
    for name, f in SETTINGS_FIELDS.items():
        if name in ("engine_options", "pass_k"):
            continue
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                       type=type(f.default) if f.default is not None else str)
    p.add_argument("--pass-k", default=None, help="comma-separated k values, e.g. 1,2,4,8")
    p.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE", help="value parsed as YAML")
    return p


def load_config(args) -> dict:
    config: dict = {}
    if args.config:
        with open(args.config) as f:
            config = yaml.safe_load(f) or {}
        if not isinstance(config, dict):
            raise ValueError(f"{args.config}: expected a mapping")
        unknown = sorted(set(config) - TOP_KEYS - set(SETTINGS_FIELDS))
        if unknown:
            raise ValueError(f"{args.config}: unknown key(s) {', '.join(unknown)}; "
                             f"expected {', '.join(sorted(TOP_KEYS | set(SETTINGS_FIELDS)))}")
    checkpoints = dict(config.get("checkpoints") or {})
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--checkpoint {item!r}: expected NAME=PATH")
        checkpoints[name] = path
    if not checkpoints:
        raise ValueError("r1repro eval: no checkpoints (config `checkpoints:` or --checkpoint NAME=PATH)")
    benchmarks = args.benchmark or config.get("benchmarks") or []
    if not benchmarks:
        raise ValueError("r1repro eval: no benchmarks (config `benchmarks:` or --benchmark NAME)")
    settings = {k: v for k, v in config.items() if k in SETTINGS_FIELDS}
    settings.update({k: getattr(args, k) for k in SETTINGS_FIELDS if getattr(args, k, None) is not None})
    if args.pass_k:
        settings["pass_k"] = args.pass_k
    if isinstance(settings.get("pass_k"), str):  # "1,2,4" (EvalSettings checks the values)
        settings["pass_k"] = [int(k) for k in settings["pass_k"].split(",") if k.strip()]
    options = dict(settings.get("engine_options") or {})
    for item in args.engine_option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--engine-option {item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    settings["engine_options"] = options
    protocol = None
    if args.protocol or config.get("protocol"):
        protocol, settings = ProtocolRun.start(args.protocol or config["protocol"], settings)
    return {
        "checkpoints": checkpoints,
        "benchmarks": benchmarks,
        "output_dir": args.output_dir or config.get("output_dir") or "runs/eval",
        "limit": args.limit if args.limit is not None else config.get("limit"),
        "overwrite": args.overwrite or bool(config.get("overwrite")),
        "settings": EvalSettings(**settings),
        "protocol": protocol,
    }


def run(config: dict) -> dict:
    settings, out = config["settings"], Path(config["output_dir"])
    tasks = [load_benchmark(b, limit=config["limit"], seed=settings.seed) for b in config["benchmarks"]]
    protocol = config.get("protocol")
    if protocol is not None:
        tasks = protocol.prepare(config["benchmarks"], tasks, settings)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        shared = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"r1repro eval: two benchmarks share the name {shared!r}; give one a `label`")
    fingerprint = {"settings": dataclasses.asdict(settings), "tasks": {t.name: len(t.rows) for t in tasks}}
    if protocol is not None:
        fingerprint["protocol"] = protocol.block(settings)
    evaluate = protocol.evaluate if protocol is not None else evaluate_model
    evals = {}
    for checkpoint, model in config["checkpoints"].items():
        cached = out / "evals" / f"{checkpoint}.json"
        if cached.is_file() and not config["overwrite"]:
            previous = json.loads(cached.read_text())
            same_fingerprint = previous.get("fingerprint") == json.loads(json.dumps(fingerprint, default=str))
            if same_fingerprint and previous.get("model") == model:
                print(f"[eval] {checkpoint}: already evaluated ({cached})", file=sys.stderr)
                evals[checkpoint] = previous["results"]
                continue
        print(f"[eval] {checkpoint}: {model} on {', '.join(names)}", file=sys.stderr)
        results = evaluate(model, tasks, settings, samples_path=str(out / "samples" / f"{checkpoint}.jsonl"))
        write_json_atomic(cached, {"model": model, "fingerprint": fingerprint, "results": results})
        evals[checkpoint] = results
    write_json_atomic(out / "results.json", {"evals": evals, "checkpoints": config["checkpoints"], **fingerprint})
    table = markdown_table(evals)
    try:  # matplotlib is optional where eval runs in a lean venv (.venv-vllm has none)
        plot_pass_at_k(evals, str(out / "pass_at_k.png"), pass_at_k_bands(out, evals, settings.pass_k))
        plot = "\n\n![pass@k](pass_at_k.png)"
    except ImportError as err:
        print(f"[eval] pass@k plot skipped: {err}", file=sys.stderr)
        plot = ""
    md = f"# Evaluation: {', '.join(evals)}\n\n{table}{plot}\n"
    write_text_atomic(out / "results.md", md)
    print(table)
    return evals


def pass_at_k_bands(out: Path, evals: dict, ks: tuple[int, ...]) -> dict:
    """Bootstrap bands of each checkpoint's pass@k curve from its samples/<checkpoint>.jsonl (skipped where
    the records do not match the results, e.g. left from an eval with other settings)."""
    out_bands = {}
    for checkpoint, results in evals.items():
        samples = out / "samples" / f"{checkpoint}.jsonl"
        if samples.is_file():
            units = units_from_records(read_jsonl(samples, required=("task", "mode")), ks)
            if consistent(units, results):
                out_bands[checkpoint] = bands(units)
    return out_bands


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.list_benchmarks:
        for b in BENCHMARKS.values():
            print(f"{b.name:<15} {b.hf_id or '-':<38} {b.description}")
        return 0
    try:
        config = load_config(args)
        run(config)
    except (ValueError, OSError) as e:
        print(f"r1repro eval: {e}", file=sys.stderr)
        return 2
    print(str(Path(config["output_dir"]) / "results.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
