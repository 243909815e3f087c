"""`server` backend: any OpenAI-compatible completions endpoint (`vllm serve`, SGLang, TGI, ...).

Plain prompts go to `/v1/completions`. Each sample is its own request with n=1 and seed = the prompt's
seed (`prompt_seeds`) + sample index: the OpenAI API reports token usage per request, not per choice,
and per-sample seeds make a sample reproducible whatever else is in flight. Requests run on a bounded thread pool
(`concurrency`), transient failures (connection errors, 408/429/5xx) are retried with exponential
backoff, and the engine first waits for the server's health endpoint.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from tqdm.auto import tqdm

from r1repro.generation import Sample, SamplingParams, prompt_seeds
from r1repro.health import NotHealthy, wait_healthy

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class ServerError(RuntimeError):
    pass


class ServerEngine:
    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, concurrency: int = 8,
                 max_retries: int = 5, timeout: float = 600.0, wait_timeout: float = 600.0, progress: bool = True):
        if not base_url:
            raise ValueError("generation backend 'server': base_url is required (e.g. http://127.0.0.1:8000)")
        if concurrency < 1:
            raise ValueError(f"generation backend 'server': concurrency must be >= 1, got {concurrency}")
        self.model = model
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.concurrency, self.max_retries, self.progress = concurrency, max_retries, progress
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, limits=limits)
        self.wait_until_ready(wait_timeout, headers)

    def wait_until_ready(self, timeout: float, headers: dict[str, str] | None = None) -> None:
        """Poll /health (vLLM, SGLang), falling back to /v1/models, until it answers 200."""
        try:
            wait_healthy(self.base_url, ("/health", "/v1/models"), timeout, every_s=1.0, headers=headers)
        except NotHealthy as err:
            raise ServerError(f"server at {self.base_url} not ready after {timeout:.0f} s ({err.last})") from None

    def close(self) -> None:
        self.client.close()

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Sample]]:
        jobs = [(i, j) for i in range(len(prompts)) for j in range(params.n)]
        seeds = prompt_seeds(prompts, params.seed)  # a stream per prompt; + j: one per sample
        results: list[list[Sample | None]] = [[None] * params.n for _ in prompts]
        bar = tqdm(total=len(jobs), unit="seq", desc="server generate", disable=not self.progress or len(jobs) < 64,
                   leave=False)

        def run(job):
            i, j = job
            return job, self._complete(prompts[i], params, (seeds[i] + j) % 2**31)

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for (i, j), sample in pool.map(run, jobs):
                results[i][j] = sample
                bar.update()
        bar.close()
        return results

    def _complete(self, prompt: str, params: SamplingParams, seed: int) -> Sample:
        body = {"model": self.model, "prompt": prompt, "n": 1, "max_tokens": params.max_tokens,
                "temperature": params.temperature, "top_p": 1.0 if params.greedy else params.top_p, "seed": seed}
        if params.stop:
            body["stop"] = list(params.stop)
        data = self._post("/v1/completions", body)
        try:
            choice, usage = data["choices"][0], data.get("usage") or {}
            return Sample(text=choice["text"], num_tokens=int(usage.get("completion_tokens", 0)),
                          finish_reason="stop" if choice.get("finish_reason") == "stop" else "length",
                          prompt_tokens=usage.get("prompt_tokens"))
        except (KeyError, IndexError, TypeError) as e:
            raise ServerError(f"{self.base_url}/v1/completions: unexpected response {str(data)[:200]!r}") from e

    def _post(self, path: str, body: dict) -> dict:
        delay = 1.0
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.post(path, json=body)
                if response.status_code == 200:
                    return response.json()
                error = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code not in RETRY_STATUS:
                    raise ServerError(f"{self.base_url}{path}: {error}")
            except httpx.TransportError as e:  # connection refused/reset, timeouts
                error = f"{type(e).__name__}: {e}"
            if attempt < self.max_retries:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise ServerError(f"{self.base_url}{path}: failed after {self.max_retries + 1} attempts ({error})")
