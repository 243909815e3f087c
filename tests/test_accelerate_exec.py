"""r1repro.slurm.accelerate_exec, the node's launcher wrapper: across nodes it bounds torch's static rendezvous
(600 s by default) with R1REPRO_RENDEZVOUS_TIMEOUT, so a node that never arrives fails the others with one line.

The missing-peer tests start one node of two on this machine (torchrun --nnodes 2, static rendezvous at
127.0.0.1); the peer never starts. Marked dist and slow (torch's import and the wait: ~10 s each)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dist_helpers import free_port

from r1repro.slurm.accelerate_exec import (
    RENDEZVOUS_TIMEOUT_S,
    main,
    rendezvous_timeout,
    with_rendezvous_timeout,
)

REPO = Path(__file__).resolve().parents[1]


def test_rendezvous_conf_gets_the_timeout_unless_the_command_sets_one():
    assert with_rendezvous_timeout("", 30) == "timeout=30"
    assert with_rendezvous_timeout("read_timeout=60", 30) == "read_timeout=60,timeout=30"
    assert with_rendezvous_timeout("timeout=900", 30) == "timeout=900"
    assert with_rendezvous_timeout("read_timeout=60, timeout=900", 30) == "read_timeout=60, timeout=900"


def test_rendezvous_timeout_setting():
    assert rendezvous_timeout({}) == RENDEZVOUS_TIMEOUT_S < 600  # below torch's own default, or it is no bound
    assert rendezvous_timeout({"R1REPRO_RENDEZVOUS_TIMEOUT": "45"}) == 45


@pytest.mark.parametrize("value", ["soon", "0", "-5", "1.5"])
def test_a_bad_rendezvous_timeout_is_one_line_naming_it(value, monkeypatch, capsys):
    monkeypatch.setenv("R1REPRO_RENDEZVOUS_TIMEOUT", value)
    code = main(["torchrun", "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", "0", "--master_addr",
                 "127.0.0.1", "--master_port", "1", "--rdzv_backend", "static", "-m", "r1repro.cli", "--help"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "R1REPRO_RENDEZVOUS_TIMEOUT" in err[0] and repr(value) in err[0], err


def one_node_of_two(node_rank: int, timeout_s: int) -> tuple[subprocess.CompletedProcess, float]:
    port = free_port()
    cmd = [sys.executable, "-m", "r1repro.slurm.accelerate_exec", "torchrun", "--nnodes", "2", "--nproc_per_node",
           "1", "--node_rank", str(node_rank), "--master_addr", "127.0.0.1", "--master_port", str(port),
           "--rdzv_backend", "static", "--max_restarts", "0", "-m", "r1repro.cli", "--help"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "R1REPRO_RENDEZVOUS_TIMEOUT": str(timeout_s)}
    start = time.time()
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return result, time.time() - start


@pytest.mark.dist
@pytest.mark.slow
def test_a_peer_that_never_arrives_fails_the_first_node_with_one_line():
    """Node rank 0 (it hosts the rendezvous) alone: it exits 1 after the timeout, not torch's 600 s, and its
    whole output is the one line naming the rendezvous and how many nodes joined."""
    result, took = one_node_of_two(0, 4)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 1 and took < 60, (took, lines)
    assert len(lines) == 1 and "(node rank 0 of 2): rendezvous at 127.0.0.1:" in lines[0], lines
    assert "1/2 clients joined" in lines[0], lines


@pytest.mark.dist
@pytest.mark.slow
def test_a_first_node_that_never_arrives_fails_the_others_with_one_last_line():
    """Node rank 1 alone (the rendezvous host never comes): it exits 1 after the timeout; torch's C++ store
    logs its connect retries first, the last line is ours."""
    result, took = one_node_of_two(1, 4)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and took < 60, (took, result.stderr[-2000:])
    assert "(node rank 1 of 2): rendezvous at 127.0.0.1:" in last and "timed out" in last, last
