"""The `server` backend's client behaviour against a small local OpenAI-style HTTP server that
misbehaves on purpose: not ready at first, transient 503s, a client error. (The backend against a
real `vllm serve` is in test_vllm.py.)"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from r1repro.generation import SamplingParams, get_engine, prompt_seeds
from r1repro.generation.server import ServerError


class Flaky:
    def __init__(self, unhealthy_polls=2, fail_first=1, delay=0.05):
        self.lock = threading.Lock()
        self.unhealthy_polls, self.fail_first, self.delay = unhealthy_polls, fail_first, delay
        self.attempts, self.in_flight, self.max_in_flight, self.bodies = {}, 0, 0, []


def make_handler(state: Flaky):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, data):
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            with state.lock:
                state.unhealthy_polls -= 1
                ready = state.unhealthy_polls < 0
            self.reply(200 if ready else 503, {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["model"] != "tiny":
                return self.reply(404, {"error": f"model {body['model']} does not exist"})
            key = (body["prompt"], body["seed"])
            with state.lock:
                state.bodies.append(body)
                state.attempts[key] = state.attempts.get(key, 0) + 1
                attempt = state.attempts[key]
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            time.sleep(state.delay)
            with state.lock:
                state.in_flight -= 1
            if attempt <= state.fail_first:
                return self.reply(503, {"error": "overloaded"})
            text = f"{body['prompt'][::-1]}#{body['seed'] % 10}"[: body["max_tokens"]]  # short: "q#3" stops
            finish = "length" if len(text) == body["max_tokens"] else "stop"
            self.reply(200, {"choices": [{"text": text, "finish_reason": finish}],
                             "usage": {"prompt_tokens": len(body["prompt"]), "completion_tokens": len(text)}})

    return Handler


@pytest.fixture
def flaky_server():
    state = Flaky()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_waits_retries_and_bounds_concurrency(flaky_server, monkeypatch):
    import r1repro.generation.server as server_module

    real_sleep = time.sleep
    monkeypatch.setattr(server_module.time, "sleep", lambda s: real_sleep(min(s, 0.01)))  # keep the backoff short
    base_url, state = flaky_server
    engine = get_engine("server", "tiny", base_url=base_url + "/v1", concurrency=3, max_retries=2, wait_timeout=30,
                        progress=False)
    prompts = ["abc", "hello", "xyz", "q"]
    out = engine.generate(prompts, SamplingParams(n=2, max_tokens=5, seed=10, temperature=0.7, stop=["\n"]))
    seeds = prompt_seeds(prompts, 10)
    assert [[s.text for s in row] for row in out] == [[f"{p[::-1]}#{(seeds[i] + j) % 10}"[:5] for j in range(2)]
                                                      for i, p in enumerate(prompts)]
    assert out[1][0].finish_reason == "length" and out[3][0].finish_reason == "stop"
    assert out[0][0].num_tokens == 5 and out[0][0].prompt_tokens == 3
    assert all(count == 2 for count in state.attempts.values())  # each request: one 503, one retry
    assert 1 < state.max_in_flight <= 3
    assert {b["n"] for b in state.bodies} == {1}
    assert state.bodies[0]["stop"] == ["\n"] and state.bodies[0]["top_p"] == 0.95


def test_client_error_is_not_retried(flaky_server):
    base_url, state = flaky_server
    state.unhealthy_polls = 0
    engine = get_engine("server", "other", base_url=base_url, max_retries=5, wait_timeout=5, progress=False)
    with pytest.raises(ServerError, match=r"/v1/completions: HTTP 404: .*model other does not exist"):
        engine.generate(["a"], SamplingParams(max_tokens=3))


def test_gives_up_after_the_retries(flaky_server, monkeypatch):
    import r1repro.generation.server as server_module

    monkeypatch.setattr(server_module.time, "sleep", lambda s: None)
    base_url, state = flaky_server
    state.unhealthy_polls, state.fail_first = 0, 100
    engine = get_engine("server", "tiny", base_url=base_url, max_retries=2, wait_timeout=5, progress=False)
    with pytest.raises(ServerError, match=r"failed after 3 attempts \(HTTP 503"):
        engine.generate(["a"], SamplingParams(max_tokens=3))


def test_base_url_is_required():
    with pytest.raises(ValueError, match="base_url is required"):
        get_engine("server", "tiny")
