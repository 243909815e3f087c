"""The reward registry: names and plug-in specs -> safe, picklable reward callables.

A recipe lists rewards as `"accuracy"`, `"rewards/code_tests.py:code_tests"`, `"pkg.module:func"`,
`{"name": ..., "weight": ..., **params}` or `{"path": ..., **params}`. Everything is resolved and
validated when the stage starts (`build_rewards`), so a typo is one clear error before any model
loads, never a crash mid-training.

The callable we hand to TRL is a `Reward`: it binds the parameters, sets `__name__` (TRL logs
`rewards/<__name__>/mean`), and makes the reward safe: if the function raises on a batch it is re-run
sample by sample, and only the samples that raise score None and are counted in `STATS`.
"""

from __future__ import annotations

import contextvars
import hashlib
import importlib
import importlib.util
import inspect
import logging
import math
import sys
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

REWARDS: dict[str, Callable] = {}

# name -> {"errors": n, "timeouts": n}; read by RewardStatsCallback. Cumulative since the process started.
STATS: dict[str, dict[str, int]] = {}
_STATS_LOCK = threading.Lock()
_CURRENT = contextvars.ContextVar("r1repro_current_reward", default=None)

RESERVED_KEYS = ("name", "path", "weight")
# `tasks: [reasoning]` on any reward whose function has no `tasks` parameter of its own: the reward
# then applies only to rows whose `task` column is listed, and scores None (does not apply) elsewhere.
ROUTING_KEY = "tasks"


def register(name: str):
    """Decorator: make `func` available to recipes as `name`."""

    def decorator(func: Callable) -> Callable:
        existing = REWARDS.get(name)
        if existing is not None and existing is not func:
            raise ValueError(
                f"reward {name!r} is already registered (by {existing.__module__}.{existing.__qualname__})")
        REWARDS[name] = func
        return func

    return decorator


def _bump(name: str | None, key: str, n: int = 1) -> None:
    if name is None or n <= 0:
        return
    with _STATS_LOCK:
        STATS.setdefault(name, {"errors": 0, "timeouts": 0})[key] += n


def note_timeouts(n: int = 1) -> None:
    """Called by a reward (builtin or plug-in) when `n` samples hit their time limit and were scored as
    failures; counted under `rewards/<name>/timeouts` for the reward currently running."""
    _bump(_CURRENT.get(), "timeouts", n)


def current_reward_name() -> str | None:
    return _CURRENT.get()


# ---------------------------------------------------------------------------------------------------
# Loading plug-ins


_PLUGIN_MODULES: dict[str, object] = {}


def _load_file(path_text: str, label: str):
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ValueError(f"reward {label}: file {path_text} not found (relative paths are read from {Path.cwd()})")
    key = str(path.resolve())
    if key in _PLUGIN_MODULES:
        return _PLUGIN_MODULES[key]
    # A unique, stable module name per file: two plug-ins both called `rewards.py` must not collide.
    module_name = f"r1repro_plugin_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, key)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file failed to import: say which and why, in one line
        sys.modules.pop(module_name, None)
        raise ValueError(f"reward {label}: importing {path_text} failed: {type(e).__name__}: {e}") from e
    _PLUGIN_MODULES[key] = module
    return module


def _load_target(target: str, label: str) -> tuple[Callable, str]:
    """`file.py:func`, `dir/file.py:func` or `pkg.module:func` -> (function, its name)."""
    where, _, func_name = target.rpartition(":")
    if not where or not func_name:
        raise ValueError(
            f"reward {label}: expected a registered name ({', '.join(sorted(REWARDS))}), "
            "'path/to/file.py:function' or 'package.module:function'"
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        module = _load_file(where, label)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise ValueError(f"reward {label}: cannot import module {where!r}: {e}") from e
    func = getattr(module, func_name, None)
    if func is None or not callable(func):
        available = sorted(
            n for n, v in vars(module).items()
            if inspect.isfunction(v) and not n.startswith("_") and v.__module__ == module.__name__
        )
        raise ValueError(f"reward {label}: {where} has no function {func_name!r} "
                         f"(functions there: {', '.join(available) or 'none'})")
    return func, func_name


def _lookup(target: str, label: str) -> tuple[Callable, str]:
    if target in REWARDS:
        return REWARDS[target], target
    if ":" in target:
        return _load_target(target, label)
    raise ValueError(
        f"reward {label}: unknown reward {target!r}; registered rewards: {', '.join(sorted(REWARDS))} "
        "(or give a plug-in as 'path/to/file.py:function' or 'package.module:function')"
    )


def _accepted_params(func: Callable) -> list[str]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "completions"
    ]


def _parse_spec(spec) -> tuple[str, dict, float, str]:
    """spec -> (target, params, weight, label used in error messages)."""
    if isinstance(spec, str):
        if not spec.strip():
            raise ValueError("reward '': expected a reward name or 'path/to/file.py:function'")
        return spec.strip(), {}, 1.0, repr(spec)
    if not isinstance(spec, dict):
        raise ValueError(
            f"reward {spec!r}: expected a string or a mapping with 'name' or 'path', got {type(spec).__name__}")
    label = repr(spec.get("name") or spec.get("path") or spec)
    has_name, has_path = "name" in spec, "path" in spec
    if has_name == has_path:
        raise ValueError(
            f"reward {spec!r}: give exactly one of 'name' (a registered reward) or 'path' (file.py:function)")
    target = spec["name"] if has_name else spec["path"]
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"reward {spec!r}: '{'name' if has_name else 'path'}' must be a non-empty string")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ValueError(f"reward {label}: weight must be a finite number, got {weight!r}")
    params = {k: v for k, v in spec.items() if k not in RESERVED_KEYS}
    return target.strip(), params, float(weight), label


class Reward:
    """A resolved reward: the function, its bound parameters and its log name. Safe and picklable."""

    def __init__(self, func: Callable, name: str, params: dict, spec, tasks: list[str] | None = None):
        self.func, self.params, self.spec, self.tasks = func, dict(params), spec, tasks
        self.__name__ = name
        self.__doc__ = getattr(func, "__doc__", None)
        with _STATS_LOCK:
            STATS.setdefault(name, {"errors": 0, "timeouts": 0})

    def __repr__(self) -> str:
        return f"Reward({self.__name__!r}, params={self.params!r})"

    # Rebuilt from its spec in another process (TRL's async rollout worker pickles reward funcs), since
    # a plug-in loaded from a file path cannot be pickled by reference.
    def __reduce__(self):
        return (_rebuild, (self.spec, self.__name__))

    def __call__(self, completions, **kwargs):
        token = _CURRENT.set(self.__name__)
        try:
            keep = self._routed(len(completions), kwargs)
            if keep is None:
                return self._safe_call(completions, kwargs)
            out: list[float | None] = [None] * len(completions)
            if keep:
                sub = self._safe_call([completions[i] for i in keep], _take(kwargs, keep, len(completions)))
                for i, value in zip(keep, sub):
                    out[i] = value
            return out
        finally:
            _CURRENT.reset(token)

    def _routed(self, n: int, kwargs: dict) -> list[int] | None:
        """Indices of the rows this reward applies to, or None for all of them."""
        if self.tasks is None:
            return None
        column = kwargs.get("task")
        if not isinstance(column, (list, tuple)) or len(column) != n:
            if not getattr(self, "_warned_no_task", False):
                logger.warning("reward %s is limited to tasks %s but the batch has no 'task' column: "
                               "applying it to every row", self.__name__, self.tasks)
                self._warned_no_task = True
            return None
        return [i for i, task in enumerate(column) if task in self.tasks]

    def _safe_call(self, completions, kwargs):
        n = len(completions)
        kwargs = {**kwargs, **self.params}  # the recipe's parameters win over same-named columns
        try:
            return _coerce(self.func(completions, **kwargs), n)
        except Exception as e:
            if n <= 1:
                logger.warning("reward %s failed on a sample: %s: %s", self.__name__, type(e).__name__, e)
                _bump(self.__name__, "errors", max(n, 1))
                return [None] * n
            logger.warning("reward %s failed on a batch (%s: %s); scoring sample by sample", self.__name__,
                           type(e).__name__, e)
        out = []
        for i in range(n):
            try:
                one = _coerce(self.func(completions[i : i + 1], **_slice(kwargs, i, n)), 1)[0]
            except Exception as e:
                logger.warning("reward %s failed on sample %d: %s: %s", self.__name__, i, type(e).__name__, e)
                _bump(self.__name__, "errors")
                one = None
            out.append(one)
        return out


class AsyncReward(Reward):
    """The same for `async def` rewards (e.g. an LLM judge); TRL gathers these concurrently."""

    async def __call__(self, completions, **kwargs):
        token = _CURRENT.set(self.__name__)
        try:
            kwargs = {**kwargs, **self.params}
            try:
                return _coerce(await self.func(completions, **kwargs), len(completions))
            except Exception as e:
                logger.warning("reward %s failed on a batch: %s: %s", self.__name__, type(e).__name__, e)
                _bump(self.__name__, "errors", len(completions))
                return [None] * len(completions)
        finally:
            _CURRENT.reset(token)


def _take(kwargs: dict, keep: list[int], n: int) -> dict:
    return {k: ([v[i] for i in keep] if isinstance(v, (list, tuple)) and len(v) == n else v)
            for k, v in kwargs.items()}


def _slice(kwargs: dict, i: int, n: int) -> dict:
    # Per-sample columns are lists as long as the batch; everything else (trainer_state, log_extra, the
    # recipe's parameters) is passed through unchanged.
    return {k: (v[i : i + 1] if isinstance(v, (list, tuple)) and len(v) == n else v) for k, v in kwargs.items()}


def _coerce(values, n: int) -> list[float | None]:
    if values is None or isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"a reward must return a list of floats or None, got {type(values).__name__}")
    if len(values) != n:
        raise ValueError(f"returned {len(values)} rewards for {n} completions")
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        f = float(v)  # bools, ints, numpy and torch scalars
        out.append(f if math.isfinite(f) else None)
    return out


def resolve_reward(spec) -> Reward:
    """One reward spec -> a safe callable named after the reward; ValueError naming the spec if it is wrong."""
    target, params, _weight, label = _parse_spec(spec)
    func, name = _lookup(target, label)
    accepted = _accepted_params(func)
    tasks = None
    if ROUTING_KEY in params and ROUTING_KEY not in accepted:
        tasks = params.pop(ROUTING_KEY)
        if isinstance(tasks, str):
            tasks = [tasks]
        if not isinstance(tasks, (list, tuple)) or not tasks or not all(isinstance(t, str) for t in tasks):
            raise ValueError(
                f"reward {label}: tasks must be a task name or a non-empty list of task names, got {tasks!r}")
        tasks = list(tasks)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(
            f"reward {label}: unknown parameter(s) {', '.join(unknown)}; {name} accepts: "
            f"{', '.join([*accepted, ROUTING_KEY] if ROUTING_KEY not in accepted else accepted)}"
        )
    validate = getattr(func, "validate", None)  # builtins check their parameters (and the machine) up front
    if validate is not None:
        try:
            validate(**params)
        except (ValueError, TypeError) as e:
            raise ValueError(f"reward {label}: {e}") from e
    cls = AsyncReward if inspect.iscoroutinefunction(func) else Reward
    return cls(func, name, params, spec, tasks)


def _rebuild(spec, name: str) -> Reward:
    reward = resolve_reward(spec)
    reward.__name__ = name
    return reward


def build_rewards(specs) -> tuple[list[Reward], list[float]]:
    """A recipe's `rewards:` list -> (callables, weights), all validated before training starts. Two
    entries with the same name (say, two reward models) get distinct log names: `name`, `name_2`, ..."""
    if isinstance(specs, (str, dict)):
        specs = [specs]
    if not specs:
        raise ValueError("rewards: expected a non-empty list of reward specs (e.g. [format, accuracy])")
    funcs, weights, seen = [], [], {}
    for spec in specs:
        reward = resolve_reward(spec)
        weights.append(_parse_spec(spec)[2])
        base = reward.__name__
        seen[base] = seen.get(base, 0) + 1
        if seen[base] > 1:
            reward.__name__ = f"{base}_{seen[base]}"
            with _STATS_LOCK:
                STATS.setdefault(reward.__name__, {"errors": 0, "timeouts": 0})
        funcs.append(reward)
    return funcs, weights


def make_stats_callback_class():
    """RewardStatsCallback, built on first use so importing the registry does not import transformers."""
    from transformers import TrainerCallback

    class RewardStatsCallback(TrainerCallback):
        """Adds `rewards/<name>/errors` and `rewards/<name>/timeouts` (cumulative counts) to every log."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs is None:
                return
            with _STATS_LOCK:
                snapshot = {name: dict(counts) for name, counts in STATS.items()}
            for name, counts in snapshot.items():
                logs[f"rewards/{name}/errors"] = counts["errors"]
                logs[f"rewards/{name}/timeouts"] = counts["timeouts"]

    return RewardStatsCallback
