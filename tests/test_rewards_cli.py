"""`r1repro rewards list|score` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys

from r1repro.rewards.cli import main


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("format", "accuracy", "exact_match", "code_tests", "language_consistency", "countdown"):
        assert name in out


def test_score_keeps_fields_and_order(tmp_path):
    rows = [
        {"id": "a", "completion": " <think> x </think> <answer> 636 </answer>", "solution": "636",
         "task": "reasoning"},
        {"id": "b", "completion": [{"role": "assistant", "content": "<answer>1/2</answer>"}], "solution": "0.5"},
        {"id": "c", "completion": "no answer", "solution": ""},
    ]
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = subprocess.run(
        [sys.executable, "-m", "r1repro.cli", "rewards", "score", "--reward", "accuracy",
         "--input", str(src), "--output", str(dst)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["reward"] for r in out] == [1.0, 1.0, None]
    assert [list(r) for r in out] == [list(r) + ["reward"] for r in rows]
    assert "mean" in done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_score_with_params_and_plugin(tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"completion": "<answer>APPLE</answer>", "solution": "apple"}) + "\n")
    assert main(["score", "--reward", "exact_match", "--param", "ignore_case=true",
                 "--input", str(src), "--output", str(dst)]) == 0
    assert json.loads(dst.read_text())["reward"] == 1.0
    assert main(["score", "--reward", "rewards/regex_answer.py:regex_answer",
                 "--input", str(src), "--output", str(dst)]) == 0
    assert json.loads(dst.read_text())["reward"] == 0.0  # case-sensitive by default


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"completion": "x"}\n{"solution": "1"}\n')
    assert main(["score", "--reward", "format", "--input", str(src), "--output", str(dst)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"r1repro rewards: {src}:2: expected a JSON object with a 'completion' field"
    assert not dst.exists()
    assert main(["score", "--reward", "format", "--input", str(tmp_path / "missing.jsonl"), "--output", str(dst)]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["score", "--reward", "format", "--param", "bogus=1", "--input", str(src), "--output", str(dst)]) == 2
    assert "unknown parameter(s) bogus" in capsys.readouterr().err
