"""bench/gpu.py: it refuses to measure without a GPU, its smoke mode runs a real GRPO step on CPU and prints
the table last, and its decode bound is bandwidth over the bytes a step reads."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _gpu_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_bench_refuses_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the bench would run for real")
    bench = _gpu_bench()
    assert bench.main([]) == 2
    assert "no CUDA GPU here; nothing measured" in capsys.readouterr().err
    assert bench.main(["--skip-without-gpu"]) == 0


def test_gpu_bench_smoke_mode_runs_grpo_and_prints_the_table_last(capsys):
    threads = torch.get_num_threads()
    try:
        assert _gpu_bench().main(["--smoke"]) == 0
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.strip().splitlines()
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[-8:])  # "key<padding>  value"
    assert list(rows)[0] == "device" and list(rows)[-1] == "wall"  # the table is the last thing printed
    assert float(re.search(r"([\d.]+) s \(8 completions", rows["GRPO step"]).group(1)) > 0
    assert float(re.search(r"(\d+) tok/s", rows["GRPO generated"]).group(1)) > 0
    assert float(re.search(r"(\d+) tok/s", rows["decode bound"]).group(1)) > 0


def test_decode_bound_is_bandwidth_over_bytes_per_step():
    bench = _gpu_bench()
    model = bench.build_model(bench.SMOKE, "cpu", torch.float32)
    weights = sum(p.numel() for p in model.parameters()) * 4
    kv_per_token = 2 * 2 * 2 * (64 // 4) * 4  # K and V x layers x KV heads x head_dim x fp32
    assert bench.decode_bound(model, 1, 0, 1e9) == pytest.approx(1e9 / weights)
    assert bench.decode_bound(model, 4, 100, 1e9) == pytest.approx(4e9 / (weights + kv_per_token * 4 * 100))
