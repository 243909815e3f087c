"""The one recipe loader (r1repro/stages/args.py) and the stages' own inputs (inputs(args)), without training."""

import pytest
from trl import DistillationConfig, DPOConfig, GRPOConfig, ModelConfig, SFTConfig

from r1repro.config import ConfigError, DataArgs, RewardArgs, RunArgs, parse_config
from r1repro.evaluation.settings import EvalArgs
from r1repro.pipeline import load_pipeline, stage_argv, state_of
from r1repro.rundir import fingerprint, resolved_config
from r1repro.stages import STAGES, all_scenario_rl
from r1repro.stages.all_scenario_rl import AllScenarioArgs
from r1repro.stages.args import load_stage_args
from r1repro.stages.cpt import CptArgs
from r1repro.stages.dpo import DpoArgs
from r1repro.trainers import grpo
from r1repro.trainers.dynamic_sampling import DynamicSamplingArgs
from r1repro.trainers.traces import TraceArgs

GRPO_TYPES = (RunArgs, DataArgs, RewardArgs, EvalArgs, GRPOConfig, ModelConfig, DynamicSamplingArgs)
TRACE_SFT_TYPES = (RunArgs, DataArgs, EvalArgs, TraceArgs, SFTConfig, ModelConfig)
# The dataclass tuples every stage parsed into before it had typed args: a finished run's DONE.json
# fingerprint is the resolved config of these, so the loader must resolve the same config.
TYPES_BEFORE_TYPED_ARGS = {
    "cpt": (RunArgs, DataArgs, EvalArgs, CptArgs, SFTConfig, ModelConfig),
    "r1zero": GRPO_TYPES, "reasoning_rl": GRPO_TYPES, "all_scenario_rl": (*GRPO_TYPES, AllScenarioArgs),
    "cold_start": TRACE_SFT_TYPES, "rejection_sft": TRACE_SFT_TYPES, "distill": TRACE_SFT_TYPES,
    "dpo": (RunArgs, DataArgs, EvalArgs, DpoArgs, DPOConfig, ModelConfig),
    "distill_on_policy": (RunArgs, DataArgs, EvalArgs, DistillationConfig, ModelConfig),
}


def test_every_stage_has_typed_args_and_inputs():
    for stage in STAGES.values():
        module = stage.load()
        assert callable(module.inputs) and callable(module.run)
        names = [t.__name__ for t in stage.dataclass_types()]
        assert names == [t.__name__ for t in TYPES_BEFORE_TYPED_ARGS[stage.name]]


def test_the_loader_keeps_every_tiny_stage_fingerprint(tmp_path):
    """Existing runs must not re-train: the loaded args resolve to the config the tuples resolved to."""
    run_dir, stages = load_pipeline("recipes/tiny/pipeline.yaml", str(tmp_path / "run"))
    for entry in stages:
        argv = stage_argv(entry, run_dir, [])
        args = load_stage_args(entry["stage"], argv)
        output_dir, config = state_of(args)
        instances, _ = parse_config(TYPES_BEFORE_TYPED_ARGS[entry["stage"]], argv, stage=entry["stage"])
        assert config == resolved_config(*instances)
        assert fingerprint(config) == fingerprint(resolved_config(*instances))
        assert output_dir == args.train.output_dir == config["output_dir"]


def test_args_are_named_by_role(tmp_path):
    args = load_stage_args("all_scenario_rl", ["--config", "recipes/tiny/all_scenario_rl.yaml",
                                               "--run_dir", str(tmp_path)])
    assert isinstance(args, grpo.GRPOStageArgs)  # the GRPO trainer trains it as it is
    assert isinstance(args.train, GRPOConfig) and isinstance(args.scenario, AllScenarioArgs)
    assert args.train.output_dir == f"{tmp_path}/all_scenario_rl"
    assert args.eval.eval_num_problems > 0 and args.data.dataset == "tiny:addition"


def load_all_scenario(tmp_path, *cli):
    return load_stage_args("all_scenario_rl", ["--config", "recipes/tiny/all_scenario_rl.yaml",
                                               "--run_dir", str(tmp_path), *cli])


def test_all_scenario_rl_routes_reward_model_rewards_to_its_model(tmp_path):
    def reward_model(*cli):
        rewards = all_scenario_rl.inputs(load_all_scenario(tmp_path, *cli)).rewards
        return next(r for r in rewards if r["name"] == "reward_model")["model"]

    assert reward_model() == f"{tmp_path}/all_scenario_rl/reward_model"
    assert reward_model("--reward_model_path", "org/rm") == "org/rm"


@pytest.mark.parametrize("cli, general, rm_pairs", [
    ([], ["problem", "response"], None),  # the tiny world: reference answers against corrupted ones
    (["--reward_model_path", "org/rm"], ["problem"], None),  # no reward model to train: prompts only
    (["--rm_score_column", "helpfulness", "--general_problem_column", "prompt"],
     ["prompt", "response", "helpfulness"], None),
    (["--rm_pairs", "pairs.jsonl"], ["problem"], ["problem", "chosen", "rejected"]),
])
def test_all_scenario_rl_reads_what_its_reward_model_needs(tmp_path, cli, general, rm_pairs):
    columns = all_scenario_rl.inputs(load_all_scenario(tmp_path, *cli)).columns
    assert columns["general_dataset"] == general
    assert columns.get("rm_pairs") == rm_pairs
    assert "task" not in columns["dataset"]  # mixed_rows tags rows by their source


def test_trace_sft_reads_traces_or_the_prompts_it_samples(tmp_path):
    module = STAGES["distill"].load()
    args = load_stage_args("distill", ["--config", "recipes/tiny/distill.yaml", "--run_dir", str(tmp_path)])
    ready = module.inputs(args)
    assert "source_dataset" in ready.columns and ready.answer_reward is None  # nothing sampled, nothing verified
    assert ready.template_models == ["model_name_or_path"]
    args.traces.source_model, args.traces.answer_reward = "some/model", "exact_match"
    with pytest.raises(ConfigError, match="'source_model' and 'source_dataset' are both set"):
        module.inputs(args)  # neither wins: r1repro/trainers/traces.py:trace_source
    args.traces.source_dataset = None
    sampled = module.inputs(args)
    assert sampled.columns["dataset"] == [args.data.problem_column, args.data.solution_column]
    assert sampled.answer_reward == "exact_match"  # the reward score_samples resolves
    assert sampled.template_models == ["model_name_or_path", "source_model"]  # its tokenizer renders the prompts
