"""Benchmark registry (local files only, never a download) and the `r1repro eval` CLI."""

import json

import pytest

from r1repro.evaluation.benchmarks import BENCHMARKS, load_benchmark
from r1repro.evaluation.cli import main as eval_main
from r1repro.tiny.model import build_tiny_model


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_registry_has_the_r1_benchmarks():
    expected = {"aime24", "aime25", "math500", "gpqa_diamond", "livecodebench", "humaneval", "tiny_addition",
                "tiny_general"}
    assert expected <= set(BENCHMARKS)


def test_humaneval_reads_the_wheel_offline():
    task = load_benchmark({"name": "humaneval", "limit": 3})
    assert [r["id"] for r in task.rows] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    row = task.rows[0]
    assert row["entry_point"] == "has_close_elements" and "def check(candidate)" in row["test"]
    assert row["problem"].startswith(row["code_prompt"].rstrip()) and "```python" in row["problem"]
    assert task.answer_reward == {"name": "code_tests", "binary": True}
    assert len(load_benchmark("humaneval").rows) == 164


@pytest.mark.sandbox
def test_eval_cli_on_humaneval(micro_model, tmp_path, capsys):
    """`r1repro eval` on the real code benchmark (a tiny untrained model: the plumbing, not the score;
    tests/test_rewards_code_calls.py checks pass@k on known-good and known-bad answers)."""
    out = tmp_path / "out"
    assert eval_main(["--checkpoint", f"base={micro_model}", "--benchmark", "humaneval", "--limit", "2",
                      "--output-dir", str(out), "--template", "tiny", "--num-samples", "2", "--max-new-tokens", "8",
                      "--pass-k", "1,2"]) == 0
    metrics = json.loads((out / "results.json").read_text())["evals"]["base"]["humaneval"]
    assert metrics["n"] == 2 and {"pass@1", "pass@2", "accuracy_greedy"} <= set(metrics)
    assert metrics["pass@1"] == 0.0  # 8 tokens of an untrained model are no program


def test_unknown_benchmark_is_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown benchmark 'aime23': expected one of aime24, aime25, math500"):
        load_benchmark("aime23")
    with pytest.raises(ValueError, match=r"benchmark 'aime24': unknown key\(s\) limt"):
        load_benchmark({"name": "aime24", "limt": 3})


def test_missing_column_names_file_and_column(tmp_path):
    path = write_jsonl(tmp_path / "aime.jsonl", [{"problem": "Find x.", "gold": "3"}])
    with pytest.raises(ValueError, match=r"benchmark aime24 \(.*aime.jsonl\): missing column 'answer' or 'solution' "
                                         r"\(row 0; columns: gold, id, problem\)"):
        load_benchmark({"name": "aime24", "path": path})
    with pytest.raises(ValueError, match=r"benchmark aime24 \(.*nope.jsonl\): file not found"):
        load_benchmark({"name": "aime24", "path": str(tmp_path / "nope.jsonl")})


def test_aime_from_local_jsonl_takes_the_answer_column(tmp_path):
    rows = [{"id": f"a{i}", "problem": f"p{i}", "solution": "a long worked solution", "answer": str(i)}
            for i in range(5)]
    task = load_benchmark({"name": "aime24", "path": write_jsonl(tmp_path / "a.jsonl", rows), "limit": 3})
    assert task.name == "aime24" and task.answer_reward == "accuracy"
    assert [(r["id"], r["problem"], r["solution"]) for r in task.rows] == [
        ("a0", "p0", "0"), ("a1", "p1", "1"), ("a2", "p2", "2")]


def test_gpqa_becomes_multiple_choice_with_a_stable_letter(tmp_path):
    row = {"Question": "Which is a noble gas?", "Correct Answer": "Neon", "Incorrect Answer 1": "Iron",
           "Incorrect Answer 2": "Sodium", "Incorrect Answer 3": "Carbon"}
    path = write_jsonl(tmp_path / "g.jsonl", [row])
    first = load_benchmark({"name": "gpqa_diamond", "path": path}).rows[0]
    assert load_benchmark({"name": "gpqa_diamond", "path": path}).rows[0]["problem"] == first["problem"]
    letter = first["solution"]
    assert f"{letter}) Neon" in first["problem"] and all(f"{x}) " in first["problem"] for x in "ABCD")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"Question": "q", "Correct Answer": "x"}])
    with pytest.raises(ValueError, match="missing column 'Incorrect Answer 1'"):
        load_benchmark({"name": "gpqa_diamond", "path": bad})


def test_code_benchmark_keeps_stdin_tests(tmp_path):
    cases = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
             {"input": "f(1)", "output": "2", "testtype": "functional"}]
    row = {"question_id": "q1", "question_content": "Add two numbers.", "public_test_cases": json.dumps(cases)}
    path = write_jsonl(tmp_path / "lcb.jsonl", [row])
    task = load_benchmark({"name": "livecodebench", "path": path})
    assert task.rows[0]["tests"] == [{"input": "1 2\n", "output": "3\n"}]
    assert task.rows[0]["problem"].startswith("Add two numbers.") and "```python" in task.rows[0]["problem"]
    assert task.answer_reward == {"name": "code_tests", "binary": True}


def test_custom_benchmark_and_tiny_tasks(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"problem": "Say hi", "solution": "hi"}])
    task = load_benchmark({"name": "greet", "path": path, "answer_reward": "exact_match"})
    assert task.answer_reward == "exact_match" and task.rows[0]["id"] == "c-test-0"  # ids from r1repro.data.load_rows
    tiny = load_benchmark({"name": "tiny_addition", "label": "reasoning", "limit": 7})
    assert tiny.name == "reasoning" and len(tiny.rows) == 7 and tiny.rows[0]["task"] == "reasoning"


def test_eval_cli_compares_checkpoints_and_resumes(micro_model, tmp_path, capsys):
    base = micro_model
    other = build_tiny_model(tmp_path / "other", size="micro", seed=1)
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"checkpoints:\n  base: {base}\n  r1zero: {other}\n"
        "benchmarks:\n  - {name: tiny_addition, label: reasoning, limit: 4}\n"
        "  - {name: tiny_general, label: general, limit: 3}\n"
        f"output_dir: {tmp_path / 'out'}\ntemplate: tiny\nnum_samples: 2\nmax_new_tokens: 12\npass_k: [1, 2]\n"
    )
    assert eval_main(["--config", str(config)]) == 0
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[-1] == str(tmp_path / "out" / "results.json")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(results["evals"]) == ["base", "r1zero"]
    assert set(results["evals"]["base"]) == {"reasoning", "general"}
    assert results["evals"]["base"]["reasoning"]["n"] == 4
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| general | r1zero |" in md and "pass_at_k.png" in md
    assert (tmp_path / "out" / "pass_at_k.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "out" / "samples" / "base.jsonl").read_text().splitlines()) == (4 + 3) * 3

    # Same settings again: nothing is re-evaluated, the results are the same.
    assert eval_main(["--config", str(config)]) == 0
    assert capsys.readouterr().err.count("already evaluated") == 2
    assert json.loads((tmp_path / "out" / "results.json").read_text())["evals"] == results["evals"]


def test_eval_cli_errors(tmp_path, capsys):
    config = tmp_path / "e.yaml"
    config.write_text("checkpoints: {base: x}\nbenchmarks: [tiny_addition]\nnum_sample: 3\n")
    assert eval_main(["--config", str(config)]) == 2
    assert "unknown key(s) num_sample" in capsys.readouterr().err
    config.write_text("checkpoints: {base: x}\nbenchmarks: [tiny_addition]\ntop_p: 1.5\n")
    assert eval_main(["--config", str(config)]) == 2
    assert capsys.readouterr().err.strip() == "r1repro eval: top_p must be a number in (0, 1], got 1.5"
    assert eval_main(["--checkpoint", "base=x", "--benchmark", "tiny_addition", "--num-samples", "0"]) == 2
    assert capsys.readouterr().err.strip() == "r1repro eval: num_samples must be an integer >= 1, got 0"
    assert eval_main(["--checkpoint", "base=x", "--benchmark", "aime2024"]) == 2
    assert "unknown benchmark 'aime2024'" in capsys.readouterr().err
