"""Verifiable rewards: one registry of builtins, plug-ins by path, safe wrappers for TRL.

    from r1repro.rewards import build_rewards, RewardStatsCallback
    funcs, weights = build_rewards(["format", {"name": "accuracy", "weight": 2.0},
                                    {"path": "rewards/code_tests.py:code_tests"}])
    GRPOTrainer(..., reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...),
                callbacks=[RewardStatsCallback()])

A reward has TRL's signature, `f(completions, **columns) -> list[float | None]` (None: does not apply).
Importing this package is cheap (no torch, no transformers, no math-verify): heavy parts load on use.
"""

from __future__ import annotations

# Builtins register themselves on import.
from . import accuracy as _accuracy  # noqa: E402,F401
from . import choice as _choice  # noqa: E402,F401
from . import code as _code  # noqa: E402,F401
from . import countdown as _countdown  # noqa: E402,F401
from . import format as _format  # noqa: E402,F401
from . import gym_reward as _gym_reward  # noqa: E402,F401
from . import language as _language  # noqa: E402,F401
from . import match as _match  # noqa: E402,F401
from . import reward_model as _reward_model  # noqa: E402,F401
from . import shaping as _shaping  # noqa: E402,F401
from .registry import (
    REWARDS,
    STATS,
    Reward,
    build_rewards,
    make_stats_callback_class,
    note_timeouts,
    register,
    resolve_reward,
)

__all__ = [
    "REWARDS",
    "STATS",
    "Reward",
    "RewardStatsCallback",
    "build_rewards",
    "note_timeouts",
    "register",
    "resolve_reward",
]

_LAZY: dict[str, object] = {}


def __getattr__(name: str):
    # RewardStatsCallback subclasses transformers.TrainerCallback: build it only when asked for.
    if name == "RewardStatsCallback":
        if name not in _LAZY:
            _LAZY[name] = make_stats_callback_class()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
