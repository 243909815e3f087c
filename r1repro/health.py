"""Waiting for an HTTP server to come up: the vLLM server a Slurm job starts (r1repro.slurm.launch) and the
OpenAI-compatible endpoint the `server` generation backend talks to (r1repro.generation.server). One poll
loop, standard library only: it runs in the sbatch scripts before anything heavy is imported."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence


class NotHealthy(RuntimeError):
    """The server did not answer 200 in time (`last` says what it answered), or its process exited first."""

    def __init__(self, last: str, exited: bool = False):
        super().__init__(last)
        self.last, self.exited = last, exited


def wait_healthy(base_url: str, paths: Sequence[str] = ("/health",), timeout_s: float = 900.0, every_s: float = 2.0,
                 alive: Callable[[], bool] | None = None, headers: dict[str, str] | None = None) -> None:
    """Poll base_url + each path in turn until one answers 200; raise NotHealthy once timeout_s has passed,
    or as soon as alive() says the server's process is gone."""
    deadline, last = time.monotonic() + timeout_s, "no answer"
    while True:
        for path in paths:
            request = urllib.request.Request(base_url + path, headers=headers or {})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        return
                    last = f"GET {path}: HTTP {response.status}"
            except urllib.error.HTTPError as err:
                last = f"GET {path}: HTTP {err.code}"
            except (urllib.error.URLError, OSError) as err:  # refused, reset, timed out: not up yet
                last = f"GET {path}: {type(err).__name__}: {err}"
        if alive is not None and not alive():
            raise NotHealthy(last, exited=True)
        if time.monotonic() >= deadline:
            raise NotHealthy(last)
        time.sleep(every_s)
