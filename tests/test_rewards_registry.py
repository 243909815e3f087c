"""The reward registry: specs, plug-ins, validation, safety and the stats callback."""

from __future__ import annotations

import asyncio
import pickle
import textwrap

import pytest

from r1repro.rewards import REWARDS, STATS, RewardStatsCallback, build_rewards, register, resolve_reward

GOOD = " <think> 7+5=12 carry 1 </think> <answer> 636 </answer>"


def test_builtins_registered():
    for name in ("format", "tag_count", "accuracy", "exact_match"):
        assert name in REWARDS


def test_build_rewards_weights_and_names():
    funcs, weights = build_rewards(["format", {"name": "accuracy", "weight": 2.5},
                                    {"name": "exact_match", "ignore_case": True}])
    assert [f.__name__ for f in funcs] == ["format", "accuracy", "exact_match"]
    assert weights == [1.0, 2.5, 1.0]
    # bound parameters are really passed
    assert funcs[2]([" <think></think><answer>APPLE</answer>"], solution=["apple"]) == [1.0]


def test_duplicate_names_get_distinct_log_names():
    funcs, _ = build_rewards(["format", {"name": "format", "think_opened": True}])
    assert [f.__name__ for f in funcs] == ["format", "format_2"]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("nope", "unknown reward 'nope'"),
        ({"name": "accuracy", "max_len": 3}, "unknown parameter(s) max_len"),
        ({"name": "format", "weight": "x"}, "weight must be a finite number"),
        ({"name": "format", "path": "a.py:f"}, "exactly one of 'name'"),
        ("does/not/exist.py:f", "file does/not/exist.py not found"),
        ("json:nothing_here", "has no function 'nothing_here'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ({"name": "accuracy", "timeout": -1}, "timeout must be a positive number"),
        ({"name": "format", "tasks": 3}, "tasks must be a task name"),
        (42, "expected a string or a mapping"),
    ],
)
def test_bad_specs_are_one_clear_line(spec, fragment):
    with pytest.raises(ValueError) as info:
        resolve_reward(spec)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert message.startswith("reward ")


def test_empty_list_is_an_error():
    with pytest.raises(ValueError, match="non-empty list"):
        build_rewards([])


def _write_plugin(tmp_path, body: str):
    path = tmp_path / "my_reward.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_plugin_by_path_with_params_and_pickle(tmp_path):
    path = _write_plugin(
        tmp_path,
        """
        def contains(completions, word="x", **kwargs):
            return [float(word in c) for c in completions]
        """,
    )
    reward = resolve_reward({"path": f"{path}:contains", "word": "636"})
    assert reward.__name__ == "contains"
    assert reward([GOOD, "no"]) == [1.0, 0.0]
    # TRL's async rollout worker pickles reward functions; a file plug-in survives the round trip.
    clone = pickle.loads(pickle.dumps(reward))
    assert clone([GOOD, "no"]) == [1.0, 0.0] and clone.__name__ == "contains"
    with pytest.raises(ValueError, match="has no function 'missing'.*functions there: contains"):
        resolve_reward(f"{path}:missing")


def test_plugin_that_fails_to_import(tmp_path):
    path = _write_plugin(tmp_path, "import definitely_not_a_module_abc\n")
    with pytest.raises(ValueError, match="importing .* failed: ModuleNotFoundError"):
        resolve_reward(f"{path}:f")


def test_failing_sample_scores_none_and_is_counted(tmp_path):
    path = _write_plugin(
        tmp_path,
        """
        def fragile(completions, solution, **kwargs):
            return [1.0 / float(s) for s in solution]   # ZeroDivisionError on "0"
        """,
    )
    reward = resolve_reward(f"{path}:fragile")
    before = STATS["fragile"]["errors"]
    assert reward(["a", "b", "c"], solution=["2", "0", "4"], trainer_state=object()) == [0.5, None, 0.25]
    assert STATS["fragile"]["errors"] == before + 1


def test_wrong_length_and_bad_values(tmp_path):
    path = _write_plugin(
        tmp_path,
        """
        def short(completions, **kwargs):
            return [1.0]
        def weird(completions, **kwargs):
            return [float("nan"), True, None]
        """,
    )
    assert resolve_reward(f"{path}:short")(["a", "b"]) == [1.0, 1.0]  # re-run per sample: 1 per sample is right
    assert resolve_reward(f"{path}:weird")(["a", "b", "c"]) == [None, 1.0, None]


def test_async_reward(tmp_path):
    path = _write_plugin(
        tmp_path,
        """
        async def judge(completions, **kwargs):
            return [float(len(c)) for c in completions]
        """,
    )
    reward = resolve_reward(f"{path}:judge")
    from trl.trainer.utils import is_async_callable

    assert is_async_callable(reward)
    assert asyncio.run(reward(["ab", "c"])) == [2.0, 1.0]


def test_task_routing():
    reward = resolve_reward({"name": "exact_match", "tasks": ["general"]})
    out = reward(
        [" <think></think><answer>APPLE</answer>", " <think></think><answer>5</answer>"],
        solution=["APPLE", "5"],
        task=["general", "reasoning"],
    )
    assert out == [1.0, None]


def test_register_and_module_spec():
    @register("test_only_constant")
    def constant(completions, value: float = 1.0, **kwargs):
        return [value] * len(completions)

    assert resolve_reward({"name": "test_only_constant", "value": 0.5})(["a"]) == [0.5]
    with pytest.raises(ValueError, match="already registered"):
        register("test_only_constant")(lambda completions, **kw: [])
    # module:function form, on a real importable module
    assert resolve_reward("r1repro.rewards.match:exact_match")([" <answer>a</answer>"], solution=["a"]) == [1.0]


def test_stats_callback_adds_counters():
    build_rewards(["format"])
    logs = {"loss": 1.0}
    RewardStatsCallback().on_log(None, None, None, logs=logs)
    assert logs["rewards/format/errors"] == STATS["format"]["errors"]
    assert "rewards/format/timeouts" in logs and logs["loss"] == 1.0
