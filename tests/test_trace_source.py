"""Where a trace-SFT stage's traces come from (source_model sampled, or source_dataset read) is one rule,
r1repro/trainers/traces.py:trace_source. Every reader must agree with it: the trainer, `r1repro traces`,
the pipeline's steps, the Slurm plan and `r1repro check`, for each of only source_model, only
source_dataset, both and neither. No training: the trainer is run up to where its branch shows."""

import json
from pathlib import Path

import pytest

from r1repro.check import cli as check
from r1repro.config import ConfigError
from r1repro.pipeline import stage_steps
from r1repro.slurm import main as slurm_main
from r1repro.slurm.plan import PlanError, Shape, make_plan
from r1repro.stages import STAGES, TRACE_SFT_STAGES
from r1repro.stages import traces as traces_command
from r1repro.stages.args import load_stage_args
from r1repro.trainers.sft import collect_traces
from r1repro.trainers.traces import TraceArgs, samples_traces, trace_source

REPO = Path(__file__).resolve().parents[1]
BOTH = "fields 'source_model' and 'source_dataset' are both set"
NEITHER = "fields 'source_model' and 'source_dataset' are both unset"
# case -> (source_model set, source_dataset set, trace_source's answer or the error it raises)
CASES = {"only_model": (True, False, "source_model"), "only_dataset": (False, True, "source_dataset"),
         "both": (True, True, BOTH), "neither": (False, False, NEITHER)}


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # recipes name their files relative to the repository root


def test_one_source_exactly_and_an_empty_string_is_unset():
    assert trace_source(TraceArgs(source_model="m")) == "source_model"
    assert trace_source(TraceArgs(source_dataset="d.jsonl")) == "source_dataset"
    assert trace_source(TraceArgs(source_model="m", source_dataset="")) == "source_model"  # `--source_dataset ''`
    with pytest.raises(ConfigError, match=BOTH) as both:
        trace_source(TraceArgs(source_model="m", source_dataset="d.jsonl"))
    with pytest.raises(ConfigError, match=NEITHER):
        trace_source(TraceArgs(source_model="", source_dataset=None))
    assert "\n" not in str(both.value) and "keep one" in str(both.value)  # says what to change
    assert TraceArgs().keep_per_prompt == 1  # the filter settings alone still build (score_samples' tests)


def test_every_trace_sft_stage_has_the_traces_command_and_no_other_does():
    """`r1repro traces STAGE` takes exactly the stages whose args hold TraceArgs, distill included: its trainer
    samples from source_model as cold_start's does, so its plan must run the steps too."""
    holding = {name for name, stage in STAGES.items() if TraceArgs in stage.dataclass_types()}
    assert set(TRACE_SFT_STAGES) == holding == {"cold_start", "rejection_sft", "distill"}
    assert not samples_traces(load_stage_args("r1zero", ["--config", "recipes/tiny/r1zero.yaml"]))


def _argv(case: str, stage: str, run_dir: Path, traces: Path) -> list[str]:
    """The tiny cold_start recipe (source_model set) as `stage`, with the case's sources."""
    model, dataset, _ = CASES[case]
    return ["--config", "recipes/tiny/cold_start.yaml", "--run_dir", str(run_dir),
            "--output_dir", str(run_dir / stage), "--source_model", str(run_dir / "r1zero") if model else "",
            "--source_dataset", str(traces) if dataset else "", "--num_prompts", "4"]


@pytest.fixture
def traces(tmp_path) -> Path:
    path = tmp_path / "traces.jsonl"
    rows = [{"problem": "1+2", "response": " <think> 1+2=3 </think> <answer> 3 </answer>"}] * 3
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("stage", ["cold_start", "distill"])
@pytest.mark.parametrize("case", list(CASES))
def test_trainer_traces_command_pipeline_slurm_and_check_agree(case, stage, tmp_path, traces, capsys):
    run_dir = tmp_path / "run"
    argv = _argv(case, stage, run_dir, traces)
    source = CASES[case][2]
    sampled = source == "source_model"
    out = run_dir / stage
    if source not in ("source_model", "source_dataset"):
        # Refused by every loader with the same one line, before anything runs.
        with pytest.raises(ConfigError, match=source):
            load_stage_args(stage, argv)  # the trainer's, the pipeline's and `r1repro traces`' loader
        with pytest.raises(PlanError, match=source):
            make_plan(stage, argv[1], argv[2:], Shape(["n1"], 0))
        assert traces_command.main([stage, "--prepare", *argv]) == 2
        assert source in capsys.readouterr().err
        report, = check.check_file(argv[1], stage, overrides=argv[2:])
        assert len(report.errors) == 1 and source in report.errors[0], report.errors
        return
    args = load_stage_args(stage, argv)
    assert trace_source(args.traces) == source
    # the pipeline: the traces step first exactly when the stage samples
    assert stage_steps(stage, args) == ([["traces", stage], [stage]] if sampled else [[stage]])
    # the Slurm plan and its dry run: trace steps (prepare, srun shards, select) exactly then
    assert make_plan(stage, argv[1], argv[2:], Shape(["n1"], 0)).samples_traces is sampled
    assert slurm_main(["dry-run", stage, *argv, "--nodes", "1", "--gpus-per-node", "0"]) == 0
    assert (f"r1repro.cli traces {stage} --prepare" in capsys.readouterr().out) is sampled
    # `r1repro traces --prepare`: writes the prompts to sample, or has nothing to sample
    assert traces_command.main([stage, "--prepare", *argv]) == 0
    assert (out / "samples" / "prompts.jsonl").is_file() is sampled
    assert ("nothing to sample" in capsys.readouterr().out) is not sampled
    # `r1repro check`: the inputs it checks, and no error either way
    inputs = STAGES[stage].load().inputs(args)
    assert ("source_dataset" in inputs.columns, "dataset" in inputs.columns) == (not sampled, sampled)
    assert ("source_model" in inputs.template_models) is sampled and (inputs.answer_reward is not None) is sampled
    report, = check.check_file(argv[1], stage, overrides=argv[2:])
    assert not report.errors, report.errors
    # the trainer: reads the ready traces, or goes for source_model's samples (not a finished stage here)
    if sampled:
        with pytest.raises(ConfigError, match=r"^source_model: .*r1zero does not exist"):
            collect_traces(args.traces, args.data, str(out), args.train.seed)
    else:
        rows, summary = collect_traces(args.traces, args.data, str(out), args.train.seed)
        assert summary == {"source": str(traces), "kept": 3} and len(rows) == 3
