"""The end-of-stage eval child of a stage started on its own (r1repro.stages.evaluate.run_eval_child)."""

import socket

from r1repro.stages.evaluate import run_eval_child


def test_the_eval_child_does_not_rejoin_the_trainers_rendezvous(tmp_path, monkeypatch, capfd):
    """TRL's vLLM colocate mode sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT in the trainer's process,
    whose torch.distributed store keeps listening on MASTER_PORT until it exits. The eval child, one process of
    its own, must not inherit them: accelerate would start a process group on that port (EADDRINUSE, seen on the
    SmolLM2 r1zero stage run alone). Here a socket stands in for the trainer's store; the child then gets as far
    as the missing stage (exit 2, its own one-line error) instead of failing in init_process_group (exit 1)."""
    with socket.socket() as store:
        store.bind(("127.0.0.1", 0))
        store.listen()
        env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(store.getsockname()[1])}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        code = run_eval_child("r1zero", ["--config", "recipes/tiny/r1zero.yaml", "--run_dir", str(tmp_path),
                                         "--output_dir", str(tmp_path / "r1zero")])
    err = capfd.readouterr().err
    assert "EADDRINUSE" not in err and "address already in use" not in err, err[-2000:]
    assert code == 2 and "has no DONE.json" in err, err[-2000:]
