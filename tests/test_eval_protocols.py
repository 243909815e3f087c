"""`r1repro eval --protocol`: the published protocols' settings, prompt, forced `<think>\\n`, samples per
benchmark, pass@1 with its standard error, and the protocol block written into the results (a tiny
untrained model with a ChatML template: the plumbing, not the score)."""

import json

import pytest

from r1repro.evaluation.benchmarks import load_benchmark
from r1repro.evaluation.cli import main as eval_main
from r1repro.evaluation.protocols import R1_MATH_INSTRUCTION, ForcedStart, pass1_stderr
from r1repro.generation import SamplingParams, get_engine

GPQA_ROW = {"Question": "Which is a noble gas?", "Correct Answer": "Neon", "Incorrect Answer 1": "Iron",
            "Incorrect Answer 2": "Oxygen", "Incorrect Answer 3": "Sodium"}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_open_r1_protocol_sets_everything_and_says_so(micro_chat_model, tmp_path):
    math = write_jsonl(tmp_path / "math500.jsonl", [{"problem": "What is 2+3?", "answer": "5"},
                                                    {"problem": "What is 4+4?", "answer": "8"}])
    gpqa = write_jsonl(tmp_path / "gpqa.jsonl", [GPQA_ROW, {**GPQA_ROW, "Question": "Which is a metal?"}])
    out = tmp_path / "out"
    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps({"protocol": "open-r1", "checkpoints": {"base": micro_chat_model},
                                  "benchmarks": [{"name": "math500", "path": math},
                                                 {"name": "gpqa_diamond", "path": gpqa}]}))
    # max_new_tokens overridden for a CPU run: recorded as an override, everything else is the protocol's
    assert eval_main(["--config", str(config), "--output-dir", str(out), "--max-new-tokens", "4"]) == 0
    results = json.loads((out / "results.json").read_text())
    block = results["protocol"]
    assert {k: block[k] for k in ("name", "temperature", "top_p", "template", "system_prompt", "response_prefix",
                                  "samples_per_task", "overrides")} == {
        "name": "open-r1", "temperature": 0.6, "top_p": 0.95, "template": "chat", "system_prompt": None,
        "response_prefix": "<think>\n", "samples_per_task": {"math500": 4, "gpqa_diamond": 8},
        "overrides": {"max_new_tokens": 4}}
    assert results["settings"]["max_new_tokens"] == 4 and results["settings"]["temperature"] == 0.6
    evals = results["evals"]["base"]
    assert evals["math500"]["num_samples"] == 4 and "cons@4" in evals["math500"]
    assert evals["gpqa_diamond"]["num_samples"] == 8 and "cons@8" in evals["gpqa_diamond"]
    assert evals["math500"]["pass@1_stderr"] is not None
    records = [json.loads(line) for line in (out / "samples" / "base.jsonl").read_text().splitlines()]
    math_records = [r for r in records if r["task"] == "math500"]
    gpqa_records = [r for r in records if r["task"] == "gpqa_diamond"]
    assert len(math_records) == 2 * (1 + 4) and len(gpqa_records) == 2 * (1 + 8)
    # the user turn carries the instruction (math only), no system turn, the response starts with <think>\n
    assert all(r["prompt"].startswith("<|im_start|>user\n") for r in records)
    assert all(r["prompt"].endswith(f"\n{R1_MATH_INSTRUCTION}<|im_end|>\n<|im_start|>assistant\n")
               for r in math_records)
    assert not any(R1_MATH_INSTRUCTION in r["prompt"] for r in gpqa_records)
    assert all(r["text"].startswith("<think>\n") for r in records)
    # the same run again is cached under the same protocol, redone under another
    assert eval_main(["--config", str(config), "--output-dir", str(out), "--max-new-tokens", "4"]) == 0
    cached = json.loads((out / "evals" / "base.json").read_text())
    assert cached["fingerprint"]["protocol"]["name"] == "open-r1"


def test_deepseek_r1_protocol_defaults(micro_chat_model, tmp_path):
    math = write_jsonl(tmp_path / "aime.jsonl", [{"problem": "What is 2+3?", "answer": "5"}])
    out = tmp_path / "out"
    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps({"protocol": "deepseek-r1", "checkpoints": {"base": micro_chat_model},
                                  "benchmarks": [{"name": "aime24", "path": math}], "max_new_tokens": 2}))
    assert eval_main(["--config", str(config), "--output-dir", str(out)]) == 0
    block = json.loads((out / "results.json").read_text())["protocol"]
    assert block["samples_per_task"] == {"aime24": 64} and block["max_new_tokens"] == 2
    assert block["overrides"] == {"max_new_tokens": 2} and block["source"].startswith("https://github.com/deepseek-ai")
    metrics = json.loads((out / "results.json").read_text())["evals"]["base"]["aime24"]
    assert "cons@64" in metrics and metrics["num_samples"] == 64
    assert metrics["pass@1_stderr"] is None  # one problem: no spread to estimate


def test_unknown_protocol_is_one_line(capsys, tmp_path):
    assert eval_main(["--checkpoint", "base=x", "--benchmark", "aime24", "--protocol", "deepseek-v3"]) == 2
    expected = "r1repro eval: protocol 'deepseek-v3': expected one of deepseek-r1, open-r1"
    assert capsys.readouterr().err.strip() == expected


def test_forced_start_continues_after_the_prefix(micro_chat_model):
    """The real HF engine: greedy continuation of prompt + "<think>\\n" equals what ForcedStart returns
    after its prefix; a prompt that already opens <think> is not given a second one."""
    engine = get_engine("hf", micro_chat_model)
    greedy = SamplingParams(n=1, temperature=0.0, max_tokens=6, seed=0)
    forced = ForcedStart(engine, "<think>\n")
    prompt = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    [[got]], [[direct]] = forced.generate([prompt], greedy), engine.generate([prompt + "<think>\n"], greedy)
    assert got.text == "<think>\n" + direct.text
    [[opened]] = forced.generate([prompt + "<think>\n"], greedy)
    assert opened.text == direct.text


def test_pass1_stderr_over_problems():
    def rec(pid, ok):
        return {"mode": "sampled", "prompt_id": pid, "correct": ok}
    records = [rec(0, True), rec(0, True), rec(1, False), rec(1, True), {"mode": "greedy", "prompt_id": 0}]
    # per-problem pass@1 1.0 and 0.5: sample sd 0.3536, over sqrt(2) problems
    assert pass1_stderr(records) == pytest.approx(0.25)
    assert pass1_stderr(records[:2]) is None


@pytest.mark.parametrize("name,row,column", [
    ("math500", {"problem": "x?", "gold": "1"}, "'answer' or 'solution'"),
    ("aime25", {"question": "x?", "answer": "1"}, "'problem'"),
    ("gpqa_diamond", {k: v for k, v in GPQA_ROW.items() if k != "Incorrect Answer 3"}, "'Incorrect Answer 3'"),
    ("livecodebench", {"question_content": "Print 1."}, "'tests'"),
])
def test_local_benchmark_files_name_the_missing_column(tmp_path, name, row, column):
    path = write_jsonl(tmp_path / f"{name}.jsonl", [row])
    with pytest.raises(ValueError, match=rf"^benchmark {name} \(.*{name}.jsonl\): missing column {column} \(row 0; "):
        load_benchmark({"name": name, "path": path})
