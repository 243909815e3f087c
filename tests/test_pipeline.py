"""Pipeline recipes: validation errors and the skip logic (fingerprints), without training."""

import json
from pathlib import Path

import pytest

from r1repro.config import ConfigError
from r1repro.pipeline import load_pipeline, stage_argv, stage_state
from r1repro.rundir import fingerprint, finish_stage, is_done, start_stage


def write(tmp_path, text):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("stages: []\n", "field 'stages' must be a non-empty list"),
        ("stage: [a]\n", "unknown field 'stage'"),
        ("stages: [{name: r2zero, recipe: recipes/tiny/r1zero.yaml}]\n", "stages[0].stage 'r2zero' is not a stage"),
        ("stages: [{name: cpt, recipe: nope.yaml}]\n", "stages[0].recipe nope.yaml not found"),
        ("stages: [{name: cpt}]\n", "stages[0] must be a mapping with 'name' and 'recipe'"),
    ],
)
def test_pipeline_errors_are_one_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        load_pipeline(write(tmp_path, text), None)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_named_entries_run_a_stage_module(tmp_path):
    path = write(tmp_path,
                 "run_dir: r\nstages: [{name: student_base, stage: cpt, recipe: recipes/tiny/student_base.yaml}]\n")
    run_dir, stages = load_pipeline(path, str(tmp_path / "run"))
    output_dir, config = stage_state(stages[0], stage_argv(stages[0], run_dir, []))
    assert output_dir == f"{tmp_path}/run/student_base" and config["init_tiny_model"] == "micro"


def test_an_entry_whose_recipe_names_no_output_dir_gets_its_own_folder(tmp_path):
    """student_base runs the cpt stage: without a folder of its own it would overwrite the run's cpt."""
    recipe = tmp_path / "student.yaml"
    recipe.write_text(Path("recipes/tiny/student_base.yaml").read_text().replace("output_dir: ${run_dir}/student_base",
                                                                                  ""))
    path = write(tmp_path, f"stages: [{{name: student_base, stage: cpt, recipe: {recipe}}}]\n")
    run_dir, stages = load_pipeline(path, str(tmp_path / "run"))
    argv = stage_argv(stages[0], run_dir, [])
    assert stage_state(stages[0], argv)[0] == f"{tmp_path}/run/student_base"
    # the entry's own args still win
    argv = stage_argv({**stages[0], "args": ["--output_dir", str(tmp_path / "mine")]}, run_dir, [])
    assert stage_state(stages[0], argv)[0] == str(tmp_path / "mine")


def test_done_marker_tracks_config_and_upstream(tmp_path):
    upstream, downstream = tmp_path / "cpt", tmp_path / "r1zero"
    up_config = {"output_dir": str(upstream), "learning_rate": 1e-3}
    down_config = {"output_dir": str(downstream), "model_name_or_path": str(upstream)}
    for out, config in ((upstream, up_config), (downstream, down_config)):
        assert start_stage("x", out, config)
        finish_stage(out, config, started=0.0)
        assert is_done(out, config)
    assert not start_stage("x", downstream, down_config)  # a rerun does nothing
    assert not is_done(upstream, {**up_config, "learning_rate": 2e-3})  # a changed field redoes
    # where/how it logs does not
    assert is_done(upstream, {**up_config, "output_dir": "elsewhere", "logging_steps": 7})
    # Redoing the upstream stage with another config invalidates the downstream one
    new_up = {**up_config, "learning_rate": 2e-3}
    assert start_stage("x", upstream, new_up)
    finish_stage(upstream, new_up, started=0.0)
    assert not is_done(downstream, down_config)
    done = json.loads((upstream / "DONE.json").read_text())
    assert done["fingerprint"] == fingerprint(new_up)


def test_done_marker_tracks_a_file_read_from_an_upstream_stage(tmp_path):
    """distill reads `${run_dir}/rejection_sft/traces.jsonl`: redoing rejection_sft must redo distill."""
    upstream, downstream = tmp_path / "rejection_sft", tmp_path / "distill"
    up_config = {"output_dir": str(upstream), "learning_rate": 1e-3}
    down_config = {"output_dir": str(downstream), "source_dataset": str(upstream / "traces.jsonl")}
    for out, config in ((upstream, up_config), (downstream, down_config)):
        start_stage("x", out, config)
        finish_stage(out, config, started=0.0)
    assert is_done(downstream, down_config)
    new_up = {**up_config, "num_train_epochs": 4}
    start_stage("x", upstream, new_up)
    finish_stage(upstream, new_up, started=0.0)
    assert not is_done(downstream, down_config)
