"""Pulling the parts out of a completion: its text, the chain of thought, the answer.

Completions reach a reward either as strings (plain-text templates such as R1-Zero's) or as lists of
chat messages (`[{"role": "assistant", "content": ...}]`). Every builtin goes through these helpers so
that both shapes, stray whitespace around the tags, and a `<think>` already opened by the prompt are
handled in one place.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.S)
_FENCE_RE = re.compile(r"```[^\n`]*\n(.*?)```", re.S)


def completion_text(completion) -> str:
    """The text of one completion: the string itself, or the content of the assistant messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, (list, tuple)):
        parts = []
        for message in completion:
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                content = message.get("content") or ""
                # Multimodal-style content: a list of {"type": "text", "text": ...} parts.
                if isinstance(content, list):
                    content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                parts.append(str(content))
        return "".join(parts)
    raise TypeError(f"a completion must be a string or a list of chat messages, got {type(completion).__name__}")


def with_think_opened(text: str, think_opened: bool) -> str:
    """When the prompt template already opened `<think>` (e.g. a chat template ending in `<think>\\n`), the
    completion starts inside the think block. We put the tag back so that every check sees the full
    protocol; a completion that re-opens the block itself is left as it is (tolerated, not doubled)."""
    if think_opened and not text.lstrip().startswith(THINK_OPEN):
        return THINK_OPEN + text
    return text


def extract_answer(text: str) -> str | None:
    """The content of the last complete `<answer>...</answer>` block, stripped; None when there is none."""
    matches = _ANSWER_RE.findall(text)
    return matches[-1].strip() if matches else None


def extract_think(text: str, think_opened: bool = False) -> str:
    """The chain of thought: the text between `<think>` and `</think>` (or up to `<answer>`/the end when the
    block was never closed). Without any think tag, everything before the answer block."""
    text = with_think_opened(text, think_opened)
    start = text.find(THINK_OPEN)
    if start < 0:
        end = text.find(ANSWER_OPEN)
        return (text if end < 0 else text[:end]).strip()
    start += len(THINK_OPEN)
    end = text.find(THINK_CLOSE, start)
    if end < 0:
        end = text.find(ANSWER_OPEN, start)
    return (text[start:] if end < 0 else text[start:end]).strip()


def last_boxed(text: str, max_chars: int = 100_000) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), braces matched; None if absent or unbalanced.
    Scans from the last occurrence, so the cost is bounded by the length of the box, not the text."""
    for command in ("\\boxed", "\\fbox"):
        start = text.rfind(command)
        if start >= 0:
            break
    else:
        return None
    i = start + len(command)
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        # `\boxed 5` (no braces): the token after the space.
        m = re.match(r"\s*([^\s$]+)", text[i:])
        return m.group(1) if m else None
    depth, begin = 0, i + 1
    for j in range(i, min(len(text), i + max_chars)):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[begin:j]
    return None


def last_code_block(text: str) -> str | None:
    """The last fenced code block of the text (```lang ... ```), without the fences."""
    blocks = _FENCE_RE.findall(text)
    return blocks[-1] if blocks else None


def answer_part(text: str) -> str:
    """The part of a response a user sees: the last answer block, else what follows `</think>`, else all."""
    answer = extract_answer(text)
    if answer is not None:
        return answer
    end = text.rfind(THINK_CLOSE)
    return (text[end + len(THINK_CLOSE) :] if end >= 0 else text).strip()
