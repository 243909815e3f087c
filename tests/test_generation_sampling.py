"""Sampling to JSONL with the hf backend: resume after a crash, shards, lock, the CLI."""

import fcntl
import json

import pytest

from r1repro.generation import SamplingParams, get_engine, prompt_seeds
from r1repro.generation.cli import main as sample_main
from r1repro.generation.sampling import read_complete, sample_to_jsonl, shard_path, slurm_shard, take_shard


class Recording:
    """Passes every call to the real engine and remembers which prompts it was asked for."""

    def __init__(self, engine):
        self.engine, self.prompts = engine, []

    def generate(self, prompts, params):
        self.prompts += prompts
        return self.engine.generate(prompts, params)


def records(k):
    return [{"id": f"p{i}", "prompt": f"User: Compute {i} + {i}. Assistant:", "solution": str(2 * i)}
            for i in range(k)]


def test_resume_after_a_partial_file(micro_model, tmp_path):
    engine = get_engine("hf", micro_model, progress=False)
    params = SamplingParams(n=2, max_tokens=8, seed=0)
    out = tmp_path / "samples.jsonl"
    stats = sample_to_jsonl(engine, records(6), params, out, chunk_size=4, progress=False)
    assert stats == {"prompts": 6, "skipped": 0, "generated": 6, "output": str(out)}
    full = out.read_text().splitlines(keepends=True)
    assert len(full) == 12
    first = json.loads(full[0])
    assert {"prompt_id", "sample_index", "text", "prompt_tokens", "completion_tokens", "finish_reason", "solution",
            "prompt"} <= set(first)

    # A crash in the middle of prompt p2's second line: p0 and p1 are complete, p2 is not.
    out.write_text("".join(full[:5]) + full[5][: len(full[5]) // 2])
    spy = Recording(engine)
    stats = sample_to_jsonl(spy, records(6), params, out, chunk_size=4, progress=False)
    assert stats["skipped"] == 2 and stats["generated"] == 4
    assert spy.prompts == [r["prompt"] for r in records(6)[2:]]
    lines = out.read_text().splitlines(keepends=True)
    assert lines[:4] == full[:4]  # finished prompts are kept byte for byte
    keys = sorted((json.loads(line)["prompt_id"], json.loads(line)["sample_index"]) for line in lines)
    assert keys == sorted((f"p{i}", j) for i in range(6) for j in range(2))

    # Nothing left to do: no generation at all.
    spy = Recording(engine)
    assert sample_to_jsonl(spy, records(6), params, out, progress=False)["generated"] == 0 and spy.prompts == []


def test_read_complete_ignores_torn_and_foreign_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    good = [json.dumps({"prompt_id": "a", "sample_index": j}) + "\n" for j in range(2)]
    path.write_text("".join(good) + "not json\n" + json.dumps({"prompt_id": "b", "sample_index": 0}) + "\n"
                    + '{"prompt_id": "b", "sam')
    lines, done = read_complete(path, 2)
    assert lines == good and done == {"a"}


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "s.jsonl"
    with open(tmp_path / ".s.jsonl.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match="another process is writing"):
            sample_to_jsonl(None, records(1), SamplingParams(), out, progress=False)


def test_duplicate_ids_are_an_error(tmp_path):
    with pytest.raises(ValueError, match="prompt id 'p0' appears more than once"):
        sample_to_jsonl(None, records(1) * 2, SamplingParams(), tmp_path / "s.jsonl", progress=False)


def test_shards_are_disjoint_and_cover_everything(monkeypatch):
    rows = records(10)
    shards = [take_shard(rows, i, 3) for i in range(3)]
    assert sorted(r["id"] for s in shards for r in s) == sorted(r["id"] for r in rows)
    assert [len(s) for s in shards] == [4, 3, 3]
    with pytest.raises(ValueError, match="shard index 3 out of range for 3 shards"):
        take_shard(rows, 3, 3)
    assert shard_path("out/s.jsonl", 2, 8).name == "s.shard-00002-of-00008.jsonl"
    assert shard_path("out/s.jsonl", 0, 1).name == "s.jsonl"
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    assert slurm_shard() == (1, 3)


def test_cli_samples_resumes_and_shards(micro_model, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    argv = ["--model", micro_model, "--dataset", "tiny:addition", "--limit", "5", "--template", "tiny", "--n", "2",
            "--max-tokens", "6", "--output", str(out), "--no-progress", "--num-shards", "2", "--shard-index", "1"]
    assert sample_main(argv) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    shard = tmp_path / "cli.shard-00001-of-00002.jsonl"
    assert stats["output"] == str(shard) and stats["generated"] == 2  # rows 1 and 3 of 5
    lines = [json.loads(line) for line in shard.read_text().splitlines()]
    assert [line["prompt_id"] for line in lines] == ["addition-train-1"] * 2 + ["addition-train-3"] * 2
    assert lines[0]["prompt"].startswith("User: ") and "+" in lines[0]["prompt"] and lines[0]["task"] == "reasoning"
    assert sample_main(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 2


def test_cli_errors_are_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("model: m\nsampels: 3\n")
    assert sample_main(["--config", str(config)]) == 2
    assert "unknown option(s) sampels" in capsys.readouterr().err
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "1+1"}) + "\n")
    assert sample_main(["--model", "m", "--dataset", str(data), "--output", str(tmp_path / "o.jsonl")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # (datasets may print its progress bar before)
    assert last.startswith("r1repro sample: dataset ")
    assert last.endswith("missing column 'problem'; columns are ['question']")


def test_prompt_seeds_give_each_prompt_its_own_stream_whatever_the_batching():
    prompts = ["What is 2 + 3?", "What is 7 times 5?", "What is 2 + 3?", "Hi"]
    seeds = prompt_seeds(prompts, 0)
    assert len(set(seeds)) == 4  # a repeated prompt gets a stream of its own too
    assert all(0 <= s < 2**31 for s in seeds)
    assert prompt_seeds(prompts[1:2], 0) == seeds[1:2]  # chunking does not change a prompt's seed
    assert prompt_seeds(prompts[::-1], 0)[::-1][1] == seeds[1]  # nor does the order of distinct prompts
    assert set(prompt_seeds(prompts, 1)).isdisjoint(seeds)  # another run seed: other streams
