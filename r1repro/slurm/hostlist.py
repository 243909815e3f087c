"""Expand Slurm hostlist expressions ("gpu[01-03,07],cpu1") without calling scontrol.

Pure Python so that dry runs work on a laptop; inside a job the result matches
`scontrol show hostnames $SLURM_JOB_NODELIST` (checked by the slurm tests).
"""

from __future__ import annotations

import re

_BRACKET = re.compile(r"\[([^\]]*)\]")


def _split_top(expr: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in expr:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in (s.strip() for s in parts) if p]


def _expand_one(expr: str) -> list[str]:
    m = _BRACKET.search(expr)
    if not m:
        return [expr]
    head, tail = expr[: m.start()], expr[m.end():]
    names = []
    for rng in m.group(1).split(","):
        lo, _, hi = rng.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ValueError(f"bad hostlist range {rng!r} in {expr!r}")
        width = len(lo)  # zero padding comes from the lower bound, as in Slurm
        for i in range(int(lo), int(hi or lo) + 1):
            names += _expand_one(f"{head}{i:0{width}d}{tail}")
    return names


def expand(expr: str) -> list[str]:
    """All host names of a Slurm hostlist expression, in order."""
    if expr.count("[") != expr.count("]"):
        raise ValueError(f"unbalanced brackets in hostlist {expr!r}")
    hosts: list[str] = []
    for part in _split_top(expr):
        hosts += _expand_one(part)
    return hosts
