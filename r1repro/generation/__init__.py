"""One sampling interface, several backends.

    engine = get_engine("hf", "path/to/model")            # or "vllm", or "server" (base_url=...)
    samples = engine.generate(prompts, SamplingParams(n=4, temperature=0.6))
    samples[i][j].text                                     # j-th sample for prompts[i]

Prompts are plain strings (a chat template, if any, is applied by the caller). Completions exclude
the prompt and any stop string, as in vLLM and the OpenAI API. temperature 0 means greedy.
Backends are imported lazily: `hf` needs torch/transformers, `vllm` needs vllm (its own venv on CPU),
`server` needs only httpx.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

BACKENDS = ("hf", "vllm", "server")


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    stop: list[str] | None = None

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def prompt_seeds(prompts: list[str], seed: int) -> list[int]:
    """One sampling seed per prompt, from the run's seed, the prompt's text and which repeat of that text it is.

    vLLM and the OpenAI API seed each request's random stream with the request's `seed`; one seed for every
    prompt gives every prompt the same stream, so samples move together across problems (a whole eval's
    format rate then swings with the seed: docs/architecture.md, measured facts).
    Keyed on the text, not the position, so chunking and order do not change a prompt's samples."""
    seen: Counter[str] = Counter()
    seeds = []
    for prompt in prompts:
        digest = hashlib.sha256(f"{seed}\0{seen[prompt]}\0{prompt}".encode()).digest()
        seeds.append(int.from_bytes(digest[:4], "little") >> 1)  # < 2**31: vLLM's and servers' seed range
        seen[prompt] += 1
    return seeds


@dataclass
class Sample:
    text: str
    num_tokens: int  # generated tokens (an EOS token counts; padding does not)
    finish_reason: str  # "stop" (EOS or a stop string) | "length" (hit max_tokens)
    prompt_tokens: int | None = None


class Engine(Protocol):
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Sample]]: ...


def get_engine(backend: str, model: str, **options) -> Engine:
    """An engine for `model` (a local path or hub id; for `server`, the served model name).

    Options: hf: batch_size, dtype, device, progress. vllm: any vllm.LLM keyword (dtype, max_model_len,
    gpu_memory_utilization, tensor_parallel_size, ...). server: base_url, api_key, concurrency,
    max_retries, timeout, wait_timeout.
    """
    # Each backend is imported when chosen: vllm is an optional dependency, hf loads torch and
    # transformers, and all three import Sample / SamplingParams from this package.
    if backend == "hf":
        from r1repro.generation.hf import HFEngine

        return HFEngine(model, **options)
    if backend == "vllm":
        from r1repro.generation.vllm_engine import VLLMEngine

        return VLLMEngine(model, **options)
    if backend == "server":
        from r1repro.generation.server import ServerEngine

        return ServerEngine(model, **options)
    raise ValueError(f"generation backend {backend!r}: expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Engine", "Sample", "SamplingParams", "get_engine"]
