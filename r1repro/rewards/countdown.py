"""`countdown`: does the equation reach the target using exactly the given numbers? (TinyZero's task)

The equation is parsed with `ast` and evaluated by walking the tree: only numbers, + - * /, unary
minus and parentheses are accepted, so nothing a model writes is ever executed. Exponents are not
allowed (9**9**9 would be a denial of service), and intermediate values are bounded.
"""

from __future__ import annotations

import ast
import operator
from collections import Counter
from fractions import Fraction

from .registry import register
from .text import completion_text, extract_answer

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_CHARS = 200
MAX_MAGNITUDE = 10**12


def evaluate_equation(expr: str) -> tuple[Fraction, list[int]]:
    """(value, integers used) of an arithmetic expression; ValueError if it is anything else."""
    expr = expr.split("=")[0].strip()  # "25 + 5 * 3 = 40": judge the left-hand side
    if not expr or len(expr) > MAX_CHARS:
        raise ValueError("empty or too long")
    tree = ast.parse(expr.replace("×", "*").replace("÷", "/"), mode="eval")
    used: list[int] = []

    def walk(node) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            used.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError("division by zero")
            value = _OPS[type(node.op)](left, right)
            if abs(value) > MAX_MAGNITUDE:
                raise ValueError("value out of range")
            return value
        raise ValueError(f"not allowed: {type(node).__name__}")

    return walk(tree.body), used


@register("countdown")
def countdown(completions, target, nums, format_score: float = 0.0, **kwargs) -> list[float | None]:
    """1.0 if the `<answer>` equation uses each of `nums` exactly once and equals `target`;
    `format_score` for an answer that parses but is wrong; 0.0 otherwise; None for rows without a target."""
    out = []
    for c, goal, numbers in zip(completions, target, nums, strict=True):
        if goal is None or numbers is None:
            out.append(None)
            continue
        answer = extract_answer(completion_text(c))
        try:
            value, used = evaluate_equation(answer or "")
        except (ValueError, SyntaxError, RecursionError, MemoryError):
            out.append(0.0)
            continue
        ok = Counter(used) == Counter(int(n) for n in numbers) and value == Fraction(str(goal))
        out.append(1.0 if ok else format_score)
    return out
