"""GPU readiness: a few GRPO steps on a randomly initialised Qwen2.5-1.5B-shaped model (nothing is
downloaded), HF generation in bf16, against the memory-bandwidth bound of decoding.

    python bench/gpu.py                 # on a CUDA GPU: < 5 minutes, prints a table last
    python bench/gpu.py --smoke         # anywhere (CPU): a ~1M-parameter model, a few seconds of GRPO

What it measures:
  1. decode alone: `model.generate` on a batch, every sequence forced to full length; tokens/s and
     milliseconds per decode step;
  2. GRPO: TRL's GRPOTrainer steps (HF generation + reward + backward + AdamW), step time and generated
     tokens/s; the first step is a warm-up and is not counted;
  3. the bound: decoding is memory-bound, each step reads every weight and the KV cache once, so
     tokens/s <= batch x bandwidth / (weight bytes + KV bytes). Bandwidth is measured here with a large
     on-device copy (what this GPU actually sustains), and the ratio achieved/bound is printed.
Without a GPU and without --smoke it refuses (exit 2); --skip-without-gpu makes that a skip (exit 0).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time

# Qwen2.5-Math-1.5B's shape (its config.json): 28 layers, hidden 1536, 12 query / 2 KV heads,
# MLP 8960, vocab 151936, tied embeddings, 4096 positions.
QWEN25_15B = dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                  intermediate_size=8960, vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=4096,
                  rope_theta=10000.0, rms_norm_eps=1e-6)
SMOKE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=128, vocab_size=512, tie_word_embeddings=True, max_position_embeddings=256)

# Settings per mode: batch sizes and lengths small enough for < 5 minutes on one GPU.
FULL_RUN = dict(decode_batch=64, prompt_len=128, new_tokens=256, grpo_steps=4, per_device=32, generations=8)
SMOKE_RUN = dict(decode_batch=4, prompt_len=8, new_tokens=8, grpo_steps=2, per_device=8, generations=4)


def build_tokenizer(vocab_size: int):
    """A word-level tokenizer with exactly `vocab_size` tokens `t0 t1 ...`, so a random model's samples
    always decode (a real tokenizer would need a download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate(specials + [f"t{i}" for i in range(vocab_size - len(specials))])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins tokens with spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def build_model(shape: dict, device: str, dtype):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**shape, pad_token_id=0, eos_token_id=1, bos_token_id=1)
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: a 1.5B model is slow to initialise on the CPU
        model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = 0, 1
    return model


def copy_bandwidth(device: str) -> float:
    """Bytes/s of a large on-device copy (read + write), the bandwidth decoding can hope for."""
    import torch

    n = (1 << 30) if device == "cuda" else (1 << 26)
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    _sync(device)
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        dst.copy_(src)
    _sync(device)
    return 2 * n * reps / (time.perf_counter() - start)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def decode_bound(model, batch: int, context: float, bandwidth: float) -> float:
    """Upper bound on decode tokens/s: batch x bandwidth / bytes read per decode step."""
    c = model.config
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    head_dim = c.hidden_size // c.num_attention_heads
    kv_bytes = 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * next(model.parameters()).element_size()
    return batch * bandwidth / (weight_bytes + kv_bytes * batch * context)


def bench_decode(model, run: dict, device: str) -> dict:
    import torch

    b, p, n = run["decode_batch"], run["prompt_len"], run["new_tokens"]
    ids = torch.randint(3, model.config.vocab_size, (b, p), device=device)
    kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=True, temperature=1.0, top_k=0)
    model.generate(ids, attention_mask=torch.ones_like(ids), **{**kwargs, "max_new_tokens": 8, "min_new_tokens": 8})
    _sync(device)
    start = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
    _sync(device)
    wall = time.perf_counter() - start
    new = out.shape[1] - p
    return {"tokens_per_s": b * new / wall, "ms_per_step": 1000 * wall / new, "batch": b, "context": p + new / 2}


def bench_grpo(model, tokenizer, run: dict, device: str) -> dict:
    """TRL's GRPOTrainer for a few steps; a cheap length reward so the step is all model work."""
    import datasets
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1repro.config import installed_field_name

    def length_reward(completions, **_):
        return [-abs(len(c.split()) - 8) / 8 for c in completions]

    times: list[float] = []
    lengths: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            _sync(device)
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            _sync(device)
            times.append(time.perf_counter() - self.t)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    prompts = [" ".join(f"t{(i * 7919 + j) % 1000}" for j in range(run["prompt_len"])) for i in range(64)]
    on_gpu = device == "cuda"
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(
            output_dir=out, max_steps=run["grpo_steps"], per_device_train_batch_size=run["per_device"],
            gradient_accumulation_steps=1, steps_per_generation=1, num_generations=run["generations"],
            max_completion_length=run["new_tokens"], temperature=1.0, top_k=0, learning_rate=1e-6, beta=0.0,
            loss_type="dapo", use_vllm=False, bf16=on_gpu, use_cpu=not on_gpu, logging_steps=1, save_strategy="no",
            report_to="none", disable_tqdm=True, seed=0,
            **{installed_field_name("activation_checkpointing"): False}, dataloader_num_workers=0,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=[length_reward], args=args,
                              train_dataset=datasets.Dataset.from_dict({"prompt": prompts}),
                              processing_class=tokenizer, callbacks=[Clock()])
        trainer.train()
    steady = times[1:] or times  # the first step compiles kernels and warms the allocator
    step = sum(steady) / len(steady)
    mean_len = sum(lengths[1:] or lengths) / max(1, len(lengths[1:] or lengths))
    return {"step_s": step, "tokens_per_s": run["per_device"] * mean_len / step, "mean_len": mean_len,
            "batch": run["per_device"], "steps": len(times)}


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model on whatever device is there (CPU tests)")
    parser.add_argument("--skip-without-gpu", action="store_true", help="exit 0 with a note when there is no GPU")
    args = parser.parse_args(argv)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.smoke:
        print("bench/gpu.py: no CUDA GPU here; nothing measured. Run it on a GPU node, or --smoke for the "
              "CPU smoke mode (a tiny model, no meaningful numbers).", file=sys.stderr)
        return 0 if args.skip_without_gpu else 2
    shape, run = (SMOKE, SMOKE_RUN) if args.smoke else (QWEN25_15B, FULL_RUN)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32  # bf16 on CPU is ~10x slower (docs/architecture.md)
    if device == "cpu":
        torch.set_num_threads(1)  # a 0.1M-param model gains nothing from threads; on shared cores they only contend
    started = time.perf_counter()
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    tokenizer = build_tokenizer(shape["vocab_size"])
    model = build_model(shape, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    bandwidth = copy_bandwidth(device)
    decode = bench_decode(model, run, device)
    bound = decode_bound(model, decode["batch"], decode["context"], bandwidth)
    grpo = bench_grpo(model, tokenizer, run, device)
    grpo_bound = decode_bound(model, grpo["batch"], run["prompt_len"] + grpo["mean_len"] / 2, bandwidth)
    wall = time.perf_counter() - started
    print(table([
        ("device", f"{name} ({'bf16' if dtype == torch.bfloat16 else 'fp32'})"
                   + ("  [SMOKE: not a benchmark]" if args.smoke else "")),
        ("model", f"random Qwen2.5-1.5B-shaped, {params / 1e9:.2f}B params" if not args.smoke
                  else f"smoke, {params / 1e6:.2f}M params"),
        ("copy bandwidth", f"{bandwidth / 1e9:.0f} GB/s (measured)"),
        ("decode",
         f"batch {decode['batch']}: {decode['tokens_per_s']:.0f} tok/s, {decode['ms_per_step']:.1f} ms/step"),
        ("decode bound", f"{bound:.0f} tok/s -> {decode['tokens_per_s'] / bound:.0%} of the bandwidth bound"),
        ("GRPO step", f"{grpo['step_s']:.2f} s ({grpo['batch']} completions x {grpo['mean_len']:.0f} tokens, "
                      f"{grpo['steps'] - 1} timed steps)"),
        ("GRPO generated",
         f"{grpo['tokens_per_s']:.0f} tok/s -> {grpo['tokens_per_s'] / grpo_bound:.0%} of the decode bound"),
        ("wall", f"{wall:.0f} s"),
    ]))
    return 0 if math.isfinite(grpo["step_s"]) else 1


if __name__ == "__main__":
    sys.exit(main())
