"""`hf` backend: transformers `generate`, batched with left padding.

Fast enough to evaluate the tiny recipe's models after every stage on CPU: prompts are sorted
by length so a batch carries little padding, each batch stops as soon as every row hit EOS or a stop
string, and greedy requests with n > 1 are generated once (they would all be identical).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteriaList

from r1repro.generation import Sample, SamplingParams


class HFEngine:
    def __init__(self, model, batch_size: int = 256, dtype: str = "float32", device: str | None = None,
                 progress: bool = True, tokenizer=None, num_threads: int | None = None):
        """`model`: a path / hub id, or an already loaded PreTrainedModel (then pass its `tokenizer`).
        `batch_size`: sequences per generate() call. Tiny models on CPU are overhead-bound, so large
        batches pay (docs/architecture.md, measured facts). Lower it for big models on small GPUs.
        `num_threads`: torch CPU threads while generating (restored after); default torch's setting.
        On a machine shared with other busy processes, 1 can be several times faster (OpenMP threads
        spin against the other load)."""
        if isinstance(model, str):
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype))
        elif tokenizer is None:
            raise ValueError("HFEngine: pass the tokenizer when giving a loaded model")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        if batch_size < 1:
            raise ValueError(f"HFEngine: batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.progress = progress
        self.eos_ids = set(_as_list(self.model.generation_config.eos_token_id)) | set(_as_list(tokenizer.eos_token_id))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.eos_ids)
        self.num_threads = num_threads

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Sample]]:
        if not prompts:
            return []
        # vLLM and the OpenAI API tokenize prompts with the tokenizer's default special tokens: do the same.
        ids = [self.tokenizer(p)["input_ids"] for p in prompts]
        copies = 1 if params.greedy else params.n
        # (prompt index, sample index) for every sequence to generate, longest prompts first.
        jobs = [(i, j) for i in sorted(range(len(prompts)), key=lambda i: -len(ids[i])) for j in range(copies)]
        results: list[list[Sample | None]] = [[None] * copies for _ in prompts]
        torch.manual_seed(params.seed)  # same prompts + params -> same samples
        bar = tqdm(total=len(jobs), unit="seq", desc="hf generate",
                   disable=not self.progress or len(jobs) <= self.batch_size, leave=False)
        saved_threads = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            for start in range(0, len(jobs), self.batch_size):
                batch = jobs[start : start + self.batch_size]
                samples = self._generate_batch([ids[i] for i, _ in batch], params)
                for (i, j), sample in zip(batch, samples):
                    results[i][j] = sample
                bar.update(len(batch))
        finally:
            torch.set_num_threads(saved_threads)
            bar.close()
        if copies < params.n:  # greedy: every sample is the same
            results = [row * params.n for row in results]
        return results

    @torch.inference_mode()
    def _generate_batch(self, batch_ids: list[list[int]], params: SamplingParams) -> list[Sample]:
        enc = self.tokenizer.pad({"input_ids": batch_ids}, padding=True, padding_side="left",
                                 return_tensors="pt").to(self.device)
        kwargs = dict(max_new_tokens=params.max_tokens, pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids))
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            # top_k=0 disables HF's default top-k of 50, which vLLM and the R1 protocol do not apply.
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
        prompt_len = enc["input_ids"].shape[1]
        if params.stop:
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopStrings(self.tokenizer, params.stop, prompt_len)])
        out = self.model.generate(**enc, **kwargs)
        return [self._to_sample(row.tolist(), params, len(p)) for row, p in zip(out[:, prompt_len:], batch_ids)]

    def _to_sample(self, tokens: list[int], params: SamplingParams, prompt_tokens: int) -> Sample:
        # generate() pads rows that finished early: the row ends at its first EOS (counted as a token).
        n, finish = len(tokens), "length"
        for k, t in enumerate(tokens):
            if t in self.eos_ids:
                n, finish = k + 1, "stop"
                break
        text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
        if params.stop:
            cut = min((pos for pos in (text.find(s) for s in params.stop) if pos >= 0), default=-1)
            if cut >= 0:  # vLLM / OpenAI semantics: the stop string is not part of the completion
                text, finish = text[:cut], "stop"
                while n and tokens[n - 1] == self.pad_id and self.pad_id not in self.eos_ids:
                    n -= 1  # the padding generate() appended after the stop string
        return Sample(text=text, num_tokens=n, finish_reason=finish, prompt_tokens=prompt_tokens)


class _StopStrings:
    """Stop a row once its *completion* contains a stop string. transformers' own `stop_strings` also
    matches across the prompt's tail (a prompt ending in ':' plus a generated ':' hits '::'), which
    vLLM and OpenAI servers never do; this keeps the backends in agreement."""

    def __init__(self, tokenizer, stops: list[str], prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, list(stops), prompt_len
        # Any token decodes to at least one character, so this many tokens cover the longest stop.
        self.window = max(len(s) for s in self.stops) + 1

    def __call__(self, input_ids, scores, **kwargs):
        tail = input_ids[:, self.prompt_len :][:, -self.window :].tolist()
        texts = self.tokenizer.batch_decode(tail, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


def _as_list(x) -> list[int]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]
